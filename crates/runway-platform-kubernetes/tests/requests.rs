//! The exact requests runway makes of the API server, each operation and each failure: a
//! scripted API server (tower-test's mock service under a real kube `Client`) answers each
//! request the test expects, in order, and fails the test on any other.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use runway_engine::Release;
use runway_platform_kubernetes::deployment::Target;
use runway_platform_kubernetes::Error;
use runway_wire::id::DeploymentId;
use serde_json::{json, Value};

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/production/deployments/api";

/// One request the script expects, and its answer.
struct Step {
    method: &'static str,
    uri: String,
    status: u16,
    /// The answer's body: a JSON document, or for a watch, its events one per line.
    body: String,
}

fn step(method: &'static str, uri: &str, status: u16, body: Value) -> Step {
    Step {
        method,
        uri: uri.into(),
        status,
        body: body.to_string(),
    }
}

fn watch(uri: &str, events: &[Value]) -> Step {
    Step {
        method: "GET",
        uri: uri.into(),
        status: 200,
        body: events.iter().map(|e| format!("{e}\n")).collect::<String>(),
    }
}

/// A client whose API server answers `steps` in order; the bodies runway sent, by step.
fn scripted(steps: Vec<Step>) -> (Client, Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = sent.clone();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let mut steps: VecDeque<Step> = steps.into();
        while let Some(expected) = steps.pop_front() {
            let (request, respond) = handle.next_request().await.unwrap_or_else(|| {
                panic!("runway stopped before {} {}", expected.method, expected.uri)
            });
            assert_eq!(
                (request.method().as_str(), request.uri().to_string()),
                (expected.method, expected.uri.clone()),
                "the request runway made"
            );
            let body = request.into_body().collect_bytes().await.unwrap();
            let body = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body).unwrap()
            };
            record.lock().unwrap().push(body);
            let mut response = Response::new(Body::from(expected.body.into_bytes()));
            *response.status_mut() = StatusCode::from_u16(expected.status).unwrap();
            respond.send_response(response);
        }
    });
    (Client::new(service, "default"), sent, server)
}

fn release(id: i64, version: &str) -> Release {
    let toml = "[service]\nname = \"api\"\n[kubernetes]\nnamespace = \"production\"\nimage = \
                \"reg/api:{version}\"\nreplicas = 2\nprogress_deadline = \"60s\"\nenv = { \
                APP_ENV = \"production\" }\n";
    Release {
        id: DeploymentId(id),
        version: version.into(),
        spec: runway_spec::parse_str(toml, "runway.toml").unwrap(),
        base_dir: "/srv/api".into(),
        secret_versions: Default::default(),
        secrets: Default::default(),
    }
}

fn target(client: Client) -> Target {
    Target::new(client, release(1, "v1").spec.kubernetes.as_ref().unwrap())
}

/// A Deployment as the server has it, at `resource_version`, running `image`.
fn deployment(resource_version: &str, generation: i64, image: &str, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "production", "uid": "d-1",
                     "resourceVersion": resource_version, "generation": generation,
                     "annotations": {"deployment.kubernetes.io/revision": "3"}},
        "spec": {"replicas": 2, "progressDeadlineSeconds": 60,
                 "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "api", "image": image}]}}},
        "status": status,
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": reason, "message": message})
}

#[tokio::test]
async fn apply_reads_then_replaces_with_the_version_it_read() {
    let current = deployment("41", 3, "reg/api:v1", json!({"observedGeneration": 3}));
    let stored = deployment("42", 4, "reg/api:v2", json!({"observedGeneration": 3}));
    let (client, sent, server) = scripted(vec![
        step("GET", DEPLOYMENT, 200, current),
        step("PUT", &format!("{DEPLOYMENT}?"), 200, stored),
    ]);
    let applied = target(client).apply(&release(7, "v2")).await.unwrap();
    server.await.unwrap();
    assert_eq!(applied.metadata.resource_version.as_deref(), Some("42"));
    let put = &sent.lock().unwrap()[1];
    assert_eq!(
        put["metadata"]["resourceVersion"], "41",
        "a replace of what was read"
    );
    let template = &put["spec"]["template"];
    assert_eq!(template["spec"]["containers"][0]["image"], "reg/api:v2");
    assert_eq!(
        template["spec"]["containers"][0]["env"],
        json!([{"name": "APP_ENV", "value": "production"}])
    );
    assert_eq!(
        template["metadata"]["annotations"]["runway.dev/deployment"],
        "7"
    );
    assert_eq!(
        template["metadata"]["labels"],
        json!({"app": "api", "runway.dev/slot": "main"}),
        "labels kept, the slot added"
    );
}

#[tokio::test]
async fn a_conflict_is_read_again_and_written_over_the_newer_version() {
    let (client, sent, server) = scripted(vec![
        step("GET", DEPLOYMENT, 200, deployment("41", 3, "reg/api:v1", json!({}))),
        step(
            "PUT",
            &format!("{DEPLOYMENT}?"),
            409,
            status(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again"),
        ),
        step("GET", DEPLOYMENT, 200, deployment("43", 4, "reg/api:v1", json!({}))),
        step("PUT", &format!("{DEPLOYMENT}?"), 200, deployment("44", 5, "reg/api:v2", json!({}))),
    ]);
    target(client).apply(&release(7, "v2")).await.unwrap();
    server.await.unwrap();
    let sent = sent.lock().unwrap();
    assert_eq!(sent[1]["metadata"]["resourceVersion"], "41");
    assert_eq!(sent[3]["metadata"]["resourceVersion"], "43");
}

#[tokio::test]
async fn a_missing_deployment_is_created() {
    let (client, sent, server) = scripted(vec![
        step(
            "GET",
            DEPLOYMENT,
            404,
            status(404, "NotFound", "deployments.apps \"api\" not found"),
        ),
        step(
            "POST",
            "/apis/apps/v1/namespaces/production/deployments?",
            201,
            deployment("1", 1, "reg/api:v1", json!({})),
        ),
    ]);
    target(client).apply(&release(1, "v1")).await.unwrap();
    server.await.unwrap();
    let created = &sent.lock().unwrap()[1];
    assert_eq!(created["metadata"]["name"], "api");
    assert_eq!(
        created["spec"]["selector"],
        json!({"matchLabels": {"app.kubernetes.io/name": "api"}})
    );
}

#[tokio::test]
async fn a_release_the_deployment_runs_already_is_not_written_again() {
    let first = release(7, "v2");
    let runs = runway_platform_kubernetes::template::desired(
        Some(&serde_json::from_value(deployment("41", 3, "reg/api:v1", json!({}))).unwrap()),
        &first,
    )
    .unwrap();
    let (client, _, server) = scripted(vec![step(
        "GET",
        DEPLOYMENT,
        200,
        serde_json::to_value(&runs).unwrap(),
    )]);
    target(client).apply(&first).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_refusal_names_the_request_and_what_the_server_said() {
    let (client, _, server) = scripted(vec![step(
        "GET",
        DEPLOYMENT,
        403,
        status(
            403,
            "Forbidden",
            "deployments.apps \"api\" is forbidden: User \"system:serviceaccount:ops:runway\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"production\"",
        ),
    )]);
    let err = target(client).apply(&release(1, "v1")).await.unwrap_err();
    server.await.unwrap();
    assert!(matches!(err, Error::Api { .. }));
    assert_eq!(
        err.to_string(),
        "reading Deployment production/api: 403 Forbidden: deployments.apps \"api\" is forbidden: \
         User \"system:serviceaccount:ops:runway\" cannot get resource \"deployments\" in API \
         group \"apps\" in the namespace \"production\""
    );
}

const WATCH: &str = "/apis/apps/v1/namespaces/production/deployments?&watch=true&timeoutSeconds=90&fieldSelector=metadata.name%3Dapi&allowWatchBookmarks=true&resourceVersion=";

// On a paused clock: the watch's timeout is what is left of the deadline, to the second.
#[tokio::test(start_paused = true)]
async fn follow_watches_from_the_written_version_and_relists_after_410() {
    let applied = deployment("42", 4, "reg/api:v2", json!({"observedGeneration": 3}));
    let halfway = deployment(
        "43",
        4,
        "reg/api:v2",
        json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}),
    );
    let done = deployment(
        "50",
        4,
        "reg/api:v2",
        json!({"observedGeneration": 4, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}),
    );
    let (client, _, server) = scripted(vec![
        watch(
            &format!("{WATCH}42"),
            &[json!({"type": "MODIFIED", "object": halfway})],
        ),
        watch(
            &format!("{WATCH}43"),
            &[
                json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version: 43 (47)")}),
            ],
        ),
        step("GET", DEPLOYMENT, 200, done),
    ]);
    let said = Mutex::new(Vec::new());
    let progress = |line: String| said.lock().unwrap().push(line);
    let (finished, message) = target(client)
        .follow(serde_json::from_value(applied).unwrap(), &progress)
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(finished.metadata.resource_version.as_deref(), Some("50"));
    assert_eq!(message, "deployment \"api\" successfully rolled out");
    assert_eq!(
        said.into_inner().unwrap(),
        [
            "Waiting for deployment spec update to be observed...",
            "Waiting for deployment \"api\" rollout to finish: 1 out of 2 new replicas have been updated...",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_passed_progress_deadline_fails_the_rollout() {
    let applied = deployment("42", 4, "reg/api:v2", json!({"observedGeneration": 3}));
    let stuck = deployment(
        "48",
        4,
        "reg/api:v2",
        json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
               "conditions": [{"type": "Progressing", "status": "False",
                               "reason": "ProgressDeadlineExceeded",
                               "message": "ReplicaSet \"api-7d\" has timed out progressing."}]}),
    );
    let (client, _, server) = scripted(vec![watch(
        &format!("{WATCH}42"),
        &[json!({"type": "MODIFIED", "object": stuck})],
    )]);
    let err = target(client)
        .follow(serde_json::from_value(applied).unwrap(), &|_| {})
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "deployment \"api\" exceeded its progress deadline"
    );
}

#[tokio::test]
async fn history_lists_the_replica_sets_the_deployment_selects() {
    let replica_set = |name: &str, revision: &str, id: &str| {
        json!({"metadata": {"name": name,
                            "annotations": {"deployment.kubernetes.io/revision": revision},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": "api", "uid": "d-1", "controller": true}]},
               "spec": {"selector": {}, "template": {"metadata": {"annotations": {
                   "runway.dev/deployment": id}}}}})
    };
    let (client, _, server) = scripted(vec![
        step(
            "GET",
            DEPLOYMENT,
            200,
            deployment("41", 3, "reg/api:v1", json!({})),
        ),
        step(
            "GET",
            "/apis/apps/v1/namespaces/production/replicasets?&labelSelector=app%3Dapi",
            200,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
                   "items": [replica_set("api-b", "3", "5"), replica_set("api-a", "2", "4")]}),
        ),
    ]);
    let history = target(client).history().await.unwrap();
    server.await.unwrap();
    let got: Vec<_> = history
        .iter()
        .map(|r| (r.number, r.deployment_id))
        .collect();
    assert_eq!(got, [(2, Some(4)), (3, Some(5))]);
}

/// `kubectl set image` during runway's rollout: another rollout, whose success is not the
/// release's.
#[tokio::test(start_paused = true)]
async fn a_rollout_changed_by_someone_else_is_not_counted_as_the_release() {
    let applied = deployment("42", 4, "reg/api:v2", json!({"observedGeneration": 3}));
    let mut theirs = deployment(
        "45",
        5,
        "reg/api:hotfix",
        json!({"observedGeneration": 5, "replicas": 2, "updatedReplicas": 2,
               "readyReplicas": 2, "availableReplicas": 2}),
    );
    theirs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("5");
    let (client, _, server) = scripted(vec![watch(
        &format!("{WATCH}42"),
        &[json!({"type": "MODIFIED", "object": theirs})],
    )]);
    let err = target(client)
        .follow(serde_json::from_value(applied).unwrap(), &|_| {})
        .await
        .unwrap_err();
    server.await.unwrap();
    assert!(
        err.to_string().contains(
            "was changed by someone else during the rollout (it now runs reg/api:hotfix)"
        ),
        "{err}"
    );
}

const CLAIM: &str = "/api/v1/namespaces/production/persistentvolumeclaims/api-backups";
const JOBS: &str = "/apis/batch/v1/namespaces/production/jobs";

fn with_backups(id: i64) -> Release {
    let toml = "[service]\nname = \"api\"\n[kubernetes]\nnamespace = \"production\"\nimage = \
                \"reg/api:{version}\"\nbackup_claim = \"api-backups\"\n[hooks.backup]\ncommand \
                = [\"pg_dump\"]\nimage = \"postgres:16\"\ntimeout = \"2m\"\n";
    Release {
        id: DeploymentId(id),
        version: "v1".into(),
        spec: runway_spec::parse_str(toml, "runway.toml").unwrap(),
        base_dir: "/srv/api".into(),
        secret_versions: Default::default(),
        secrets: Default::default(),
    }
}

/// The Job that runs `argv` with `env` in phase `phase`, as runway names it.
fn job_name_of(release: &Release, phase: &str, argv: &[&str]) -> String {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env = std::collections::BTreeMap::from([
        ("RUNWAY_DEPLOYMENT_ID".to_string(), "7".to_string()),
        ("RUNWAY_PHASE".to_string(), phase.to_string()),
    ]);
    runway_platform_kubernetes::job::job_name(&runway_engine::tasks::Task {
        argv: &argv,
        env: &env,
        dir: std::path::Path::new("/"),
        timeout: std::time::Duration::from_secs(1),
        release,
        image: None,
    })
}

/// A Job's whole life as runway drives it: read the template, create, poll, read its pod's
/// exit and log, delete.
fn job_steps(name: &str, succeeded: bool, log: &str) -> Vec<Step> {
    let pods = format!("/api/v1/namespaces/production/pods?&labelSelector=job-name%3D{name}");
    let pod = json!({"metadata": {"name": format!("{name}-x")},
        "status": {"containerStatuses": [{"name": "api", "ready": false, "restartCount": 0,
            "image": "postgres:16", "imageID": "",
            "state": {"terminated": {"exitCode": if succeeded { 0 } else { 1 }}}}]}});
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod]});
    vec![
        step("GET", DEPLOYMENT, 404, status(404, "NotFound", "not found")),
        step(
            "POST",
            &format!("{JOBS}?"),
            201,
            json!({"metadata": {"name": name}}),
        ),
        step(
            "GET",
            &format!("{JOBS}/{name}"),
            200,
            json!({"metadata": {"name": name},
                   "status": if succeeded { json!({"succeeded": 1}) } else { json!({"failed": 1}) }}),
        ),
        step("GET", &pods, 200, list.clone()),
        step("GET", &pods, 200, list),
        Step {
            method: "GET",
            uri: format!("/api/v1/namespaces/production/pods/{name}-x/log?&limitBytes=1048576"),
            status: 200,
            body: log.to_string(),
        },
        step(
            "DELETE",
            &format!("{JOBS}/{name}?"),
            200,
            json!({"metadata": {"name": name}}),
        ),
    ]
}

#[tokio::test]
async fn a_backup_is_prepared_by_checking_its_claim_then_clearing_its_directory_in_a_job() {
    use runway_platform_kubernetes::backups::{prepare, ClaimPath};
    let release = with_backups(7);
    let name = job_name_of(
        &release,
        "backup-remove",
        &["rm", "-rf", "/runway-backup/deployment-7"],
    );
    let mut steps = vec![step(
        "GET",
        CLAIM,
        200,
        json!({"metadata": {"name": "api-backups"}}),
    )];
    steps.extend(job_steps(&name, true, ""));
    let (client, sent, server) = scripted(steps);
    let at = ClaimPath::parse("pvc://api-backups/api/deployment-7").unwrap();
    prepare(client, &release, &at).await.unwrap();
    server.await.unwrap();
    let job = &sent.lock().unwrap()[2];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["rm", "-rf", "/runway-backup/deployment-7"]),
        "argv, no shell"
    );
    assert_eq!(
        pod["containers"][0]["image"], "postgres:16",
        "the backup hook's image"
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"],
        json!([{"name": "runway-backup", "mountPath": "/runway-backup", "subPath": "api"}]),
        "the service's directory of the claim"
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "runway-backup", "persistentVolumeClaim": {"claimName": "api-backups"}}])
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(
        env.contains(&json!({"name": "RUNWAY_BACKUP_DIR", "value": "/runway-backup"})),
        "{env:?}"
    );
    assert_eq!(
        job["spec"]["activeDeadlineSeconds"], 120,
        "the backup's timeout"
    );
}

#[tokio::test]
async fn a_missing_claim_is_named_and_nothing_runs() {
    let release = with_backups(7);
    let (client, _, server) = scripted(vec![step(
        "GET",
        CLAIM,
        404,
        status(
            404,
            "NotFound",
            "persistentvolumeclaims \"api-backups\" not found",
        ),
    )]);
    let at =
        runway_platform_kubernetes::backups::ClaimPath::parse("pvc://api-backups/api/deployment-7")
            .unwrap();
    let err = runway_platform_kubernetes::backups::prepare(client, &release, &at)
        .await
        .unwrap_err();
    server.await.unwrap();
    assert!(
        err.contains("PersistentVolumeClaim production/api-backups (backup_claim) does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn a_backup_is_measured_by_du_in_a_job_and_a_failed_measure_says_why() {
    use runway_platform_kubernetes::backups::{size, ClaimPath};
    let release = with_backups(7);
    let at = ClaimPath::parse("pvc://api-backups/api/deployment-7").unwrap();
    let name = job_name_of(
        &release,
        "backup-size",
        &["du", "-sk", "/runway-backup/deployment-7"],
    );
    let (client, _, server) = scripted(job_steps(
        &name,
        true,
        "2100\t/runway-backup/deployment-7\n",
    ));
    assert_eq!(size(client, &release, &at).await.unwrap(), 2100 * 1024);
    server.await.unwrap();

    let (client, _, server) = scripted(job_steps(
        &name,
        false,
        "du: /runway-backup/deployment-7: No such file or directory\n",
    ));
    let err = size(client, &release, &at).await.unwrap_err();
    server.await.unwrap();
    assert!(
        err.contains("du -sk /runway-backup/deployment-7")
            && err.contains("exited with status 1")
            && err.contains("No such file"),
        "{err}"
    );
}

/// A release whose env refers to a secret: its value goes into an immutable Secret object of
/// the release, created before the Deployment is written, and the Deployment refers to it
/// (`secretKeyRef`) without ever holding the value.
#[tokio::test]
async fn a_secret_reaches_the_pods_through_a_secret_object_of_the_release() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("DATABASE_URL"),
        "postgres://app:hunter2-xyz@db/app\n",
    )
    .unwrap();
    let mut with_secret = release(7, "v2");
    with_secret
        .spec
        .run
        .env
        .insert("DATABASE_URL".into(), "secret:DATABASE_URL".into());
    with_secret.secrets = runway_engine::secrets::Secrets::dir(dir.path().into());
    let current = deployment("41", 3, "reg/api:v1", json!({"observedGeneration": 3}));
    let stored = deployment("42", 4, "reg/api:v2", json!({"observedGeneration": 3}));
    let secrets = "/api/v1/namespaces/production/secrets?";
    let (client, sent, server) = scripted(vec![
        step(
            "POST",
            secrets,
            201,
            json!({"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "api-runway-secrets-7", "namespace": "production"}}),
        ),
        step("GET", DEPLOYMENT, 200, current.clone()),
        step("PUT", &format!("{DEPLOYMENT}?"), 200, stored.clone()),
        // A second apply (a resumed deployment): the Secret is there already.
        step(
            "POST",
            secrets,
            409,
            status(409, "AlreadyExists", "secrets exists"),
        ),
        step("GET", DEPLOYMENT, 200, current),
        step("PUT", &format!("{DEPLOYMENT}?"), 200, stored),
    ]);
    let target = target(client);
    target.apply(&with_secret).await.unwrap();
    target.apply(&with_secret).await.unwrap();
    server.await.unwrap();
    let sent = sent.lock().unwrap();
    let secret = &sent[0];
    assert_eq!(secret["metadata"]["name"], "api-runway-secrets-7");
    assert_eq!(secret["immutable"], true);
    assert_eq!(secret["metadata"]["labels"]["runway.dev/service"], "api");
    let encoded = serde_json::to_value(k8s_openapi::ByteString(
        b"postgres://app:hunter2-xyz@db/app".to_vec(),
    ))
    .unwrap();
    assert_eq!(secret["data"]["DATABASE_URL"], encoded);
    let put = &sent[2];
    let env = &put["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "DATABASE_URL", "valueFrom":
            {"secretKeyRef": {"name": "api-runway-secrets-7", "key": "DATABASE_URL"}}})),
        "{env}"
    );
    assert!(
        !put.to_string().contains("hunter2"),
        "the Deployment holds no value"
    );
}
