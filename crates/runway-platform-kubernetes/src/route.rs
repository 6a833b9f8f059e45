//! A canary's share by Gateway API weights: the HTTPRoute's backends are the stable Service
//! (`{service}-stable`, the service's own Deployment's pods) and the canary Service
//! (`{service}-canary`), and the Gateway sends each request to one of them by their weights,
//! exactly as runway's own proxy would. runway owns the backends of the route's rules; the rest
//! of the route (its parents, hostnames, matches, filters) stays the team's.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use runway_spec::KubernetesSpec;
use serde_json::{json, Value};

use crate::services::Services;
use crate::template::MAIN_SLOT;
use crate::Error;

/// The slot of a canary's Deployment (`{deployment}-canary`).
pub const CANARY_SLOT: &str = "canary";

/// The backends every rule of the route gets: stable with `100 - canary`, canary with
/// `canary` (both on `port`).
pub fn backends(stable: &str, canary_service: &str, port: u16, canary: u32) -> Value {
    let canary = canary.min(100);
    json!([
        {"group": "", "kind": "Service", "name": stable, "port": port, "weight": 100 - canary},
        {"group": "", "kind": "Service", "name": canary_service, "port": port, "weight": canary},
    ])
}

/// Sets the canary's share of the HTTPRoute `[kubernetes] route` to `canary` percent (creating
/// the stable and canary Services when they do not exist).
pub async fn set_weights(
    client: Client,
    k8s: &KubernetesSpec,
    service: &str,
    canary: u32,
) -> Result<(), Error> {
    let route = k8s.route.as_deref().ok_or_else(|| {
        Error::Template("traffic = \"gateway-api\" needs [kubernetes] route".into())
    })?;
    let port = k8s.port.ok_or_else(|| {
        Error::Template(
            "traffic = \"gateway-api\" needs [kubernetes] port: the port of the backends".into(),
        )
    })?;
    let services = Services::new(client.clone(), k8s, service);
    let (stable, canary_service) = services.canary_names();
    services.ensure(&stable, MAIN_SLOT).await?;
    services.ensure(&canary_service, CANARY_SLOT).await?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(client, &k8s.namespace, &resource);
    let what = || format!("setting the weights of HTTPRoute {}/{route}", k8s.namespace);
    for _ in 0..5 {
        let mut current = routes
            .get_opt(route)
            .await
            .map_err(|e| Error::api(what(), e))?
            .ok_or_else(|| {
                Error::Template(format!(
                    "HTTPRoute {}/{route} does not exist: create the route the Gateway serves \
                     the service by (runway sets its backends' weights)",
                    k8s.namespace
                ))
            })?;
        let wanted = backends(&stable, &canary_service, port, canary);
        let rules = current.data["spec"]["rules"].as_array_mut();
        let Some(rules) = rules.filter(|r| !r.is_empty()) else {
            return Err(Error::Template(format!(
                "HTTPRoute {}/{route} has no rules to set the backends of",
                k8s.namespace
            )));
        };
        if rules.iter().all(|r| r["backendRefs"] == wanted) {
            return Ok(());
        }
        for rule in rules.iter_mut() {
            rule["backendRefs"] = wanted.clone();
        }
        match routes
            .replace(route, &PostParams::default(), &current)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(Error::api(what(), e)),
        }
    }
    Err(Error::Rollout(format!("{}: 5 conflicts in a row", what())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_always_add_up_to_a_hundred() {
        let b = backends("api-stable", "api-canary", 8000, 20);
        assert_eq!(b[0]["weight"], 80);
        assert_eq!(b[1]["weight"], 20);
        assert_eq!(b[1]["name"], "api-canary");
        assert_eq!(b[0]["port"], 8000);
        let b = backends("s", "c", 1, 250);
        assert_eq!(
            (b[0]["weight"].as_u64(), b[1]["weight"].as_u64()),
            (Some(0), Some(100))
        );
    }
}
