//! `[kubernetes]` (issue 13): a release as a Deployment on a cluster. Read into the same `run`
//! every platform shares (replicas, env, stop timeout) and a `KubernetesSpec`; the names of
//! the cluster's objects default to the service's; every mistake located.

mod common;

use common::{assert_error, parse};
use runway_spec::{ClusterTraffic, KubernetesSpec, ServiceSpec};

/// The issue's example, whole.
const KUBERNETES: &str = r#"[service]
name = "api-server"

[kubernetes]
namespace = "production"
context = "prod"
image = "registry.example.com/api-server:{version}"
container = "api-server"
replicas = 10
deployment = "api-server"
traffic = "gateway-api"
route = "api-server"
prometheus = "http://prometheus.monitoring:9090"
env = { APP_ENV = "production" }
progress_deadline = "5m"
stop_timeout = "20s"
"#;

#[test]
fn a_kubernetes_service_reads_into_run_and_kubernetes() {
    let spec = parse(KUBERNETES);
    assert_eq!(spec.service.listen, ServiceSpec::NO_LISTEN);
    assert_eq!(spec.run.replicas, 10);
    assert!(spec.run.command.is_empty(), "the image's command");
    assert_eq!(spec.run.env["APP_ENV"], "production");
    assert_eq!(spec.run.stop_timeout.0.as_secs(), 20);
    let k8s: KubernetesSpec = spec.kubernetes.clone().expect("[kubernetes]");
    assert_eq!(k8s.namespace, "production");
    assert_eq!(k8s.context.as_deref(), Some("prod"));
    assert_eq!(k8s.image, "registry.example.com/api-server:{version}");
    assert_eq!(k8s.container, "api-server");
    assert_eq!(k8s.deployment, "api-server");
    assert_eq!(k8s.traffic, ClusterTraffic::GatewayApi);
    assert_eq!(k8s.route.as_deref(), Some("api-server"));
    assert_eq!(
        k8s.prometheus.as_deref(),
        Some("http://prometheus.monitoring:9090")
    );
    assert_eq!(k8s.progress_deadline.0.as_secs(), 300);
    spec.validate().expect("valid without a command");
    let json = serde_json::to_string(&spec).unwrap();
    let back: runway_spec::Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec, "stored with the release and read back whole");
}

#[test]
fn only_the_image_is_required_and_names_default_to_the_service() {
    let spec = parse("[service]\nname = \"web\"\n[kubernetes]\nimage = \"web:{version}\"\n");
    let k8s = spec.kubernetes.expect("[kubernetes]");
    assert_eq!(k8s.namespace, "default");
    assert_eq!(
        (
            k8s.deployment.as_str(),
            k8s.container.as_str(),
            k8s.service.as_str()
        ),
        ("web", "web", "web")
    );
    assert_eq!(k8s.traffic, ClusterTraffic::ReplicaRatio);
    assert_eq!(
        k8s.progress_deadline,
        KubernetesSpec::DEFAULT_PROGRESS_DEADLINE
    );
    assert_eq!(k8s.port, None);
    assert_eq!(spec.run.replicas, 1);
}

#[test]
fn kubernetes_mistakes_are_located_with_what_to_write() {
    let head = "[service]\nname = \"web\"\n[kubernetes]\n";
    assert_error(
        &format!("{head}namespace = \"prod\"\n"),
        (3, 1),
        "missing `image` in [kubernetes]",
        "image = \"registry.example.com/web:{version}\"",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nnamespace = \"Prod_1\"\n"),
        (5, 13),
        "`Prod_1` is not a valid Kubernetes namespace name",
        "namespace = \"prod-1\"",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\ntraffic = \"istio\"\n"),
        (5, 11),
        "unknown traffic mode `istio`",
        "\"gateway-api\"",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\ntraffic = \"gateway-api\"\n"),
        (5, 11),
        "needs the HTTPRoute",
        "route = \"web\"",
    );
    // The server's environment would be written in the clear (a secret of the service goes
    // through a Secret object of the release).
    assert_error(
        &format!("{head}image = \"web:1\"\nenv = {{ DB = \"env:DB\" }}\n"),
        (5, 14),
        "cannot be a reference to the server's environment",
        "runway secrets set",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nprogress_deadline = \"0s\"\n"),
        (5, 21),
        "`progress_deadline` must be greater than 0",
        "600s",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nport = 0\n"),
        (5, 8),
        "port must be",
        "port = 8000",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\ndeploymnet = \"web\"\n"),
        (5, 1),
        "deploymnet",
        "deployment",
    );
    // The default names come from the service's, which may not suit the cluster.
    assert_error(
        "[service]\nname = \"web_api\"\n[kubernetes]\nimage = \"web:1\"\n",
        (3, 1),
        "the container is named after the service by default, and `web_api` is not a valid",
        "container = \"web-api\"",
    );
    // runway's proxy is not in front of a cluster's service.
    assert_error(
        "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[kubernetes]\nimage = \"web:1\"\n",
        (3, 10),
        "no listen address",
        "remove listen",
    );
}

#[test]
fn a_spec_from_json_is_checked_as_a_file_is() {
    let mut spec = parse(KUBERNETES);
    spec.kubernetes.as_mut().unwrap().route = None;
    let err = spec.validate().unwrap_err();
    assert!(err.starts_with("kubernetes.route:"), "{err}");
    let mut spec = parse(KUBERNETES);
    spec.kubernetes.as_mut().unwrap().deployment = "API".into();
    let err = spec.validate().unwrap_err();
    assert!(err.starts_with("kubernetes.deployment:"), "{err}");
}

#[test]
fn a_backup_on_a_cluster_is_kept_on_the_claim_it_names() {
    let spec = parse(
        "[service]\nname = \"api\"\n[kubernetes]\nimage = \"api:{version}\"\nbackup_claim = \
         \"api-backups\"\n[hooks.backup]\nimage = \"postgres:16\"\ncommand = [\"pg_dump\"]\n",
    );
    let k8s = spec.kubernetes.as_ref().unwrap();
    assert_eq!(k8s.backup_claim.as_deref(), Some("api-backups"));
    let backup = spec.hooks.backup.as_ref().unwrap();
    assert_eq!(
        backup.image.as_deref(),
        Some("postgres:16"),
        "a Job may run its own image"
    );
    spec.validate().unwrap();
    let mut without = spec.clone();
    without.kubernetes.as_mut().unwrap().backup_claim = None;
    let err = without.validate().unwrap_err();
    assert!(err.starts_with("kubernetes.backup_claim:"), "{err}");
}

#[test]
fn a_backup_on_a_cluster_without_a_claim_is_located() {
    assert_error(
        "[service]\nname = \"api\"\n[kubernetes]\nimage = \"api:1\"\n[hooks.backup]\ncommand = \
         [\"pg_dump\"]\n",
        (5, 1),
        "a backup on Kubernetes is written by a Job, whose own disk is gone when it ends",
        "set backup_claim = \"<claim>\" in [kubernetes]",
    );
    assert_error(
        "[service]\nname = \"api\"\n[kubernetes]\nimage = \"api:1\"\nbackup_claim = \
         \"API backups\"\n",
        (5, 16),
        "not a valid Kubernetes backup_claim name",
        "backup_claim = \"api-backups\"",
    );
}
