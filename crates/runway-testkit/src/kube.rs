//! A stateful fake Kubernetes API server on loopback, for the tests of runway's Kubernetes
//! platform: no API server can run on runway's CI machines (none is packaged for them), and a
//! rollout is a conversation with one, so the tests talk to this one instead.
//!
//! It serves just what runway (and `kubectl get`, `rollout status`, `rollout history`) use:
//! discovery, Deployments, ReplicaSets, Pods (and their logs), Services, Jobs,
//! PersistentVolumeClaims, Leases and HTTPRoutes (stored; no Gateway routes by them) in any
//! namespace, with lists, label and
//! field selectors, and watches from a resource version. A controller loop plays the Deployment
//! controller: it observes each new generation, creates or reuses a ReplicaSet per pod template
//! (equal but for `pod-template-hash`, the revision moving to the newest as the real one
//! does), scales the new one up and the old ones down one pod at a time, makes pods ready
//! after a delay (or never, for an image marked broken), and reports the counts and
//! conditions a rollout is judged by, `ProgressDeadlineExceeded` included. It plays the Job
//! controller and the kubelet for Jobs: a claim is a directory on this host, mounted (by
//! `subPath` too, made when missing) into the Job's "container"; a Job whose claim does not
//! exist stays Pending; `rm` and `du` work on the mounts, and a scripted program
//! ([`FakeKube::script_job_with`]) may read and write them.
//!
//! Faults on demand ([`FakeKube::conflict_next_writes`], [`FakeKube::expire_next_watches`],
//! [`FakeKube::pause_controller`]) make the server act as a busy real one does: another writer
//! between a read and a write (409), a compacted history (410), a controller that is late.
//!
//! What it does not model, and a real cluster would show: scheduling, nodes, images that fail
//! to pull, admission, RBAC, server-side apply, defaulting beyond what runway reads, the
//! Deployment's `maxSurge`/`maxUnavailable` (it rolls one pod at a time). The ignored suite in
//! crates/runway/tests/e2e/kubernetes.rs runs the same scenarios against a real cluster.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// The kinds the fake serves, by their path segment.
const KINDS: &[(&str, &str, &str, &str)] = &[
    // (resource, kind, apiVersion, path prefix)
    ("deployments", "Deployment", "apps/v1", "/apis/apps/v1"),
    ("replicasets", "ReplicaSet", "apps/v1", "/apis/apps/v1"),
    ("pods", "Pod", "v1", "/api/v1"),
    ("services", "Service", "v1", "/api/v1"),
    ("jobs", "Job", "batch/v1", "/apis/batch/v1"),
    (
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        "v1",
        "/api/v1",
    ),
    (
        "leases",
        "Lease",
        "coordination.k8s.io/v1",
        "/apis/coordination.k8s.io/v1",
    ),
    (
        "httproutes",
        "HTTPRoute",
        "gateway.networking.k8s.io/v1",
        "/apis/gateway.networking.k8s.io/v1",
    ),
];

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// A Job's run as the fake kubelet sees it, for a scripted program ([`FakeKube::script_job_with`]).
pub struct JobRun {
    pub argv: Vec<String>,
    /// The container's plain `value` env variables.
    pub env: BTreeMap<String, String>,
    /// Its claim mounts: (mount path in the container, directory on this host).
    pub mounts: Vec<(String, PathBuf)>,
}

impl JobRun {
    /// Where the container's `path` is on this host, if it is on a mounted claim.
    pub fn host_path(&self, path: &str) -> Option<PathBuf> {
        self.mounts.iter().find_map(|(at, host)| {
            let rest = path.strip_prefix(at.as_str())?;
            if rest.is_empty() {
                Some(host.clone())
            } else {
                rest.strip_prefix('/').map(|rest| host.join(rest))
            }
        })
    }
}

/// A scripted program: how it ends (exit code, output) given its run.
type JobScript = Arc<dyn Fn(&JobRun) -> (i32, String) + Send + Sync>;

/// The fake server: its address, and its state for the test to look at and to disturb.
pub struct FakeKube {
    pub addr: SocketAddr,
    /// The claims' storage: `{namespace}/{claim}` directories on this host.
    volumes: tempfile::TempDir,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    /// The newest resource version.
    version: u64,
    /// Every object by (resource, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
    /// Every change, for watches: (version, resource, type, object).
    changes: Vec<(u64, String, &'static str, Value)>,
    /// The next watches that get 410 Gone whatever version they start from (etcd compacted).
    expire_watches: u32,
    /// Writes of a Deployment that another writer gets in before.
    conflicts: u32,
    paused: bool,
    ready_after: Duration,
    /// Pods whose image contains one of these never become ready.
    broken: Vec<String>,
    /// When each Deployment last made progress (for its progress deadline).
    progress: BTreeMap<(String, String), (Instant, Value)>,
    /// When each pod was created.
    born: BTreeMap<(String, String), Instant>,
    uids: u64,
    /// How Jobs end, by program.
    jobs: BTreeMap<String, JobScript>,
    /// Where claims keep their files.
    volumes: PathBuf,
    /// "METHOD path?query" of every request.
    requests: Vec<String>,
    /// Watches that answered 410, conflicts that answered 409.
    gone: u32,
    conflicted: u32,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeKube {
    /// Starts the server on a free loopback port, with its controller.
    pub fn start() -> FakeKube {
        let volumes = tempfile::tempdir().expect("a directory for the claims");
        let state = Arc::new(Mutex::new(State {
            ready_after: Duration::from_millis(300),
            volumes: volumes.path().to_path_buf(),
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let controller = tokio::spawn(run_controller(shared.clone()));
                let app = axum::Router::new().fallback(move |request: Request<Body>| {
                    let state = shared.clone();
                    async move { Ok::<_, Infallible>(handle(state, request).await) }
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                controller.abort();
            });
        });
        FakeKube {
            addr,
            volumes,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Writes a kubeconfig for the fake (context `fake`, namespace `default`) into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: \
                 http://{}\nusers:\n- name: fake\n  user:\n    token: fake-token\ncontexts:\n- \
                 name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: \
                 default\ncurrent-context: fake\n",
                self.addr
            ),
        )
        .unwrap();
        path
    }

    /// Pods of images containing `pattern` never become ready (their container crash-loops).
    pub fn break_image(&self, pattern: &str) {
        lock(&self.state).broken.push(pattern.to_string());
    }

    /// How long a new pod takes to become ready.
    pub fn ready_after(&self, delay: Duration) {
        lock(&self.state).ready_after = delay;
    }

    /// Stops (or restarts) the controller: nothing is observed, scaled or made ready meanwhile.
    pub fn pause_controller(&self, paused: bool) {
        lock(&self.state).paused = paused;
    }

    /// Before each of the next `n` writes of a Deployment, another writer changes it, so the
    /// write (based on an older read) gets 409 Conflict.
    pub fn conflict_next_writes(&self, n: u32) {
        lock(&self.state).conflicts = n;
    }

    /// The next `n` watches that start from a version get 410 Gone, as after a compaction.
    pub fn expire_next_watches(&self, n: u32) {
        lock(&self.state).expire_watches = n;
    }

    /// The object `resource`/`name` in `namespace`.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .objects
            .get(&(resource.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Every object of `resource` in `namespace`.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        lock(&self.state)
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Creates an object as `kubectl create` would (a Deployment a team already has).
    pub fn create(&self, resource: &str, namespace: &str, object: Value) {
        let mut state = lock(&self.state);
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let object = state.admit(resource, namespace, object);
        state.put(resource, namespace, &name, object, "ADDED");
    }

    /// Jobs whose command's program is `program` end with `exit_code` and print `output`
    /// (by default a Job succeeds and prints its argv and its `RUNWAY_*` variables; `sleep`
    /// never ends; `rm` and `du` work on the claims the Job mounts).
    pub fn script_job(&self, program: &str, exit_code: i32, output: &str) {
        let output = output.to_string();
        self.script_job_with(program, move |_| (exit_code, output.clone()));
    }

    /// Jobs whose program is `program` run `script`, which may read and write the claims the
    /// Job mounts (through [`JobRun::host_path`]) and says how the Job ends.
    pub fn script_job_with(
        &self,
        program: &str,
        script: impl Fn(&JobRun) -> (i32, String) + Send + Sync + 'static,
    ) {
        lock(&self.state)
            .jobs
            .insert(program.to_string(), Arc::new(script));
    }

    /// The directory on this host that holds the files of claim `namespace`/`claim`.
    pub fn claim_dir(&self, namespace: &str, claim: &str) -> PathBuf {
        self.volumes.path().join(namespace).join(claim)
    }

    /// Changes an object as another client would (`kubectl set image`, say): `change` edits it,
    /// and a changed spec makes a new generation.
    pub fn edit(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let mut state = lock(&self.state);
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut object) = state.objects.get(&key).cloned() else {
            panic!("no {resource} {namespace}/{name} to edit");
        };
        let spec = object["spec"].clone();
        change(&mut object);
        if object["spec"] != spec {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        state.put(resource, namespace, name, object, "MODIFIED");
    }

    /// Every request so far, as "METHOD path?query".
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// How many watches got 410 Gone and how many writes got 409 Conflict so far.
    pub fn faults(&self) -> (u32, u32) {
        let state = lock(&self.state);
        (state.gone, state.conflicted)
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("00000000-0000-0000-0000-{:012}", self.uids)
    }

    /// A new object's server-set fields.
    fn admit(&mut self, resource: &str, namespace: &str, mut object: Value) -> Value {
        let (_, kind, api_version, _) = KINDS.iter().find(|k| k.0 == resource).unwrap();
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        let uid = self.next_uid();
        let meta = &mut object["metadata"];
        meta["namespace"] = json!(namespace);
        meta["uid"] = json!(uid);
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if resource == "deployments" {
            let spec = &mut object["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
            if object["status"].is_null() {
                object["status"] = json!({});
            }
        }
        object
    }

    /// Stores `object` at a new version and tells the watches.
    fn put(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
        kind: &'static str,
    ) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(
            (resource.into(), namespace.into(), name.into()),
            object.clone(),
        );
        self.changes
            .push((self.version, resource.into(), kind, object));
    }

    fn delete(&mut self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self
            .objects
            .remove(&(resource.into(), namespace.into(), name.into()))?;
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.changes
            .push((self.version, resource.into(), "DELETED", object.clone()));
        Some(object)
    }

    /// Stores `object` if it differs from what is stored (so that an unchanged status does not
    /// make a new version).
    fn update(&mut self, resource: &str, namespace: &str, name: &str, object: Value) {
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let mut old = self.objects.get(&key).cloned().unwrap_or(Value::Null);
        old["metadata"]["resourceVersion"] = object["metadata"]["resourceVersion"].clone();
        if old != object {
            self.put(resource, namespace, name, object, "MODIFIED");
        }
    }
}

fn status(code: u16, reason: &str, message: String) -> Response<Body> {
    json_response(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn json_response(code: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A request's query parameters.
fn query(request: &Request<Body>) -> BTreeMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `object` matches `labelSelector` and `fieldSelector` (equality terms only).
fn selected(object: &Value, query: &BTreeMap<String, String>) -> bool {
    let terms = |key: &str| -> Vec<(String, String)> {
        query
            .get(key)
            .map(|s| {
                s.split(',')
                    .filter_map(|t| t.split_once('='))
                    .map(|(k, v)| (k.trim_end_matches('=').to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels = &object["metadata"]["labels"];
    terms("labelSelector")
        .iter()
        .all(|(k, v)| labels[k.as_str()].as_str() == Some(v.as_str()))
        && terms("fieldSelector")
            .iter()
            .all(|(k, v)| match k.as_str() {
                "metadata.name" => object["metadata"]["name"].as_str() == Some(v.as_str()),
                "metadata.namespace" => {
                    object["metadata"]["namespace"].as_str() == Some(v.as_str())
                }
                _ => true,
            })
}

async fn handle(state: Arc<Mutex<State>>, request: Request<Body>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    lock(&state).requests.push(format!(
        "{method} {path}{}",
        request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    ));
    let query = query(&request);
    let body: Bytes = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] => json_response(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
                                             "serverAddressByClientCIDRs": []}),
        ),
        ["apis"] => json_response(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
                {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}},
                {"name": "coordination.k8s.io",
                 "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}},
                {"name": "gateway.networking.k8s.io",
                 "versions": [{"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"}}]}),
        ),
        ["version"] => json_response(
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                   "platform": "linux/amd64"}),
        ),
        ["api", "v1"] => json_response(200, resource_list("v1")),
        ["apis", group, "v1"] if served_group(group) => {
            json_response(200, resource_list(&format!("{group}/v1")))
        }
        ["api", "v1", "namespaces", ns, rest @ ..]
        | ["apis", _, "v1", "namespaces", ns, rest @ ..] => {
            let prefix = match segments.as_slice() {
                ["apis", group, ..] => format!("/apis/{group}/v1"),
                _ => "/api/v1".to_string(),
            };
            let prefix = prefix.as_str();
            match rest {
                [resource] if served(prefix, resource) => {
                    collection(&state, &method, ns, resource, &query, &body).await
                }
                [resource, name] if served(prefix, resource) => {
                    item(&state, &method, ns, resource, name, &body)
                }
                ["pods", name, "log"] if method == Method::GET => pod_log(&state, ns, name, &query),
                _ => status(404, "NotFound", format!("the server could not find {path}")),
            }
        }
        _ => status(404, "NotFound", format!("the server could not find {path}")),
    }
}

fn served(prefix: &str, resource: &str) -> bool {
    KINDS.iter().any(|k| k.3 == prefix && k.0 == resource)
}

fn served_group(group: &str) -> bool {
    KINDS.iter().any(|k| k.2 == format!("{group}/v1"))
}

fn resource_list(group_version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.2 == group_version)
        .flat_map(|(resource, kind, _, _)| {
            let mut r = vec![
                json!({"name": resource, "singularName": kind.to_lowercase(),
                "namespaced": true, "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}),
            ];
            if *resource == "pods" {
                r.push(
                    json!({"name": "pods/log", "singularName": "", "namespaced": true,
                              "kind": "Pod", "verbs": ["get"]}),
                );
            }
            r
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
           "resources": resources})
}

async fn collection(
    state: &Arc<Mutex<State>>,
    method: &Method,
    ns: &str,
    resource: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Response<Body> {
    let (_, kind, api_version, _) = *KINDS.iter().find(|k| k.0 == resource).unwrap();
    match *method {
        Method::GET if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) => {
            watch(
                state.clone(),
                ns.to_string(),
                resource.to_string(),
                query.clone(),
            )
        }
        Method::GET => {
            let state = lock(state);
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((r, n, _), v)| r == resource && n == ns && selected(v, query))
                .map(|(_, v)| v.clone())
                .collect();
            json_response(
                200,
                json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                       "metadata": {"resourceVersion": state.version.to_string()},
                       "items": items}),
            )
        }
        Method::POST => {
            let Ok(object) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON".into());
            };
            let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
                return status(422, "Invalid", "metadata.name: Required value".into());
            };
            let mut state = lock(state);
            if state
                .objects
                .contains_key(&(resource.into(), ns.into(), name.clone()))
            {
                return status(
                    409,
                    "AlreadyExists",
                    format!("{resource}.apps \"{name}\" already exists"),
                );
            }
            let object = state.admit(resource, ns, object);
            state.put(resource, ns, &name, object, "ADDED");
            let stored = state.objects[&(resource.into(), ns.into(), name)].clone();
            json_response(201, stored)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

fn item(
    state: &Arc<Mutex<State>>,
    method: &Method,
    ns: &str,
    resource: &str,
    name: &str,
    body: &[u8],
) -> Response<Body> {
    let key = (resource.to_string(), ns.to_string(), name.to_string());
    let group = if resource == "pods" { "" } else { ".apps" };
    let not_found = || {
        status(
            404,
            "NotFound",
            format!("{resource}{group} \"{name}\" not found"),
        )
    };
    let mut state = lock(state);
    match *method {
        Method::GET => {
            let Some(object) = state.objects.get(&key).cloned() else {
                return not_found();
            };
            json_response(200, object)
        }
        Method::PUT => {
            let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON".into());
            };
            let Some(mut current) = state.objects.get(&key).cloned() else {
                return not_found();
            };
            if resource == "deployments" && state.conflicts > 0 {
                // Another writer got there first, since the read this write is based on.
                state.conflicts -= 1;
                current["metadata"]["labels"]["fake.example/touched"] =
                    json!(state.version.to_string());
                state.put(resource, ns, name, current.clone(), "MODIFIED");
                current = state.objects[&key].clone();
            }
            if object["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                state.conflicted += 1;
                return status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {resource}{group} \"{name}\": the object \
                         has been modified; please apply your changes to the latest version and \
                         try again"
                    ),
                );
            }
            // The main resource's status is the controller's; the generation counts spec
            // changes.
            if !current["status"].is_null() {
                object["status"] = current["status"].clone();
            }
            object["metadata"]["uid"] = current["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] =
                current["metadata"]["creationTimestamp"].clone();
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
            object["metadata"]["generation"] = json!(if object["spec"] != current["spec"] {
                generation + 1
            } else {
                generation
            });
            state.put(resource, ns, name, object, "MODIFIED");
            json_response(200, state.objects[&key].clone())
        }
        Method::DELETE => match state.delete(resource, ns, name) {
            Some(object) => {
                if resource == "jobs" {
                    // Propagation: the Job's pods go with it.
                    let pods: Vec<String> = state
                        .objects
                        .iter()
                        .filter(|((r, n, _), v)| {
                            r == "pods"
                                && n == ns
                                && v["metadata"]["labels"]["job-name"] == json!(name)
                        })
                        .map(|((_, _, pod), _)| pod.clone())
                        .collect();
                    for pod in pods {
                        state.delete("pods", ns, &pod);
                    }
                }
                json_response(200, object)
            }
            None => not_found(),
        },
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

/// A pod's log: what its container printed (its image, and for a broken one, its crash).
fn pod_log(
    state: &Arc<Mutex<State>>,
    ns: &str,
    name: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let state = lock(state);
    let Some(pod) = state.objects.get(&("pods".into(), ns.into(), name.into())) else {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    };
    let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or("");
    let mut lines = vec![format!("starting {image}")];
    if let Some(output) = pod["metadata"]["annotations"]["fake.example/output"].as_str() {
        // A Job's pod: what its command printed.
        lines = output.lines().map(str::to_string).collect();
    } else if state.broken.iter().any(|b| image.contains(b.as_str())) {
        lines.push("error: cannot start: the release is broken".into());
    } else {
        lines.push(format!("{name} serving on :8000"));
    }
    // The kubelet stamps each line; here line i was written at second i of 2026.
    let mut lines: Vec<(String, String)> = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| (format!("2026-01-01T00:00:{i:02}.000000000Z"), line))
        .collect();
    if let Some(since) = query.get("sinceTime") {
        // Lines at or after `sinceTime` (RFC 3339 strings of one format compare as times).
        let since = since.trim_end_matches('Z').to_string();
        lines.retain(|(at, _)| at.trim_end_matches('Z') >= since.as_str());
    }
    if let Some(tail) = query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let stamped = matches!(query.get("timestamps").map(String::as_str), Some("true"));
    let lines: Vec<String> = lines
        .into_iter()
        .map(|(at, line)| {
            if stamped {
                format!("{at} {line}")
            } else {
                line
            }
        })
        .collect();
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from(lines.join("\n") + "\n"))
        .unwrap()
}

/// A watch: the changes after `resourceVersion`, then live ones, until `timeoutSeconds`.
fn watch(
    state: Arc<Mutex<State>>,
    ns: String,
    resource: String,
    query: BTreeMap<String, String>,
) -> Response<Body> {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    {
        let mut s = lock(&state);
        let expired = from != 0 && s.expire_watches > 0;
        if expired {
            s.expire_watches = s.expire_watches.saturating_sub(1);
            s.gone += 1;
            let line = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", s.version),
                "reason": "Expired", "code": 410}});
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(format!("{line}\n")))
                .unwrap();
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures_util::stream::unfold(
        (state, from, deadline),
        move |(state, mut seen, deadline)| {
            let (ns, resource, query) = (ns.clone(), resource.clone(), query.clone());
            async move {
                loop {
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                    let next = {
                        let s = lock(&state);
                        if seen == 0 {
                            seen = s.version;
                        }
                        let found = s
                            .changes
                            .iter()
                            .find(|(v, r, _, o)| {
                                *v > seen
                                    && r == &resource
                                    && o["metadata"]["namespace"].as_str() == Some(ns.as_str())
                                    && selected(o, &query)
                            })
                            .cloned();
                        if found.is_none() {
                            // Nothing new for this watch up to the newest version (read under
                            // the same lock: a change made right after is not skipped).
                            seen = seen.max(s.version);
                        }
                        found
                    };
                    match next {
                        Some((version, _, kind, object)) => {
                            let line = json!({"type": kind, "object": object}).to_string() + "\n";
                            return Some((
                                Ok::<_, Infallible>(Bytes::from(line)),
                                (state, version, deadline),
                            ));
                        }
                        None => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
        },
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The Deployment controller (and the kubelet's readiness), ten times a second.
async fn run_controller(state: Arc<Mutex<State>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut s = lock(&state);
        if s.paused {
            continue;
        }
        let deployments: Vec<(String, String)> = s
            .objects
            .keys()
            .filter(|(r, _, _)| r == "deployments")
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in deployments {
            reconcile(&mut s, &ns, &name);
        }
        let jobs: Vec<(String, String)> = s
            .objects
            .keys()
            .filter(|(r, _, _)| r == "jobs")
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in jobs {
            run_job(&mut s, &ns, &name);
        }
    }
}

/// The pod template without the hash label, as the controller compares templates.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH);
        if labels.is_empty() {
            t["metadata"].as_object_mut().unwrap().remove("labels");
        }
    }
    t
}

fn hash(template: &Value) -> String {
    // FNV-1a of the template's JSON: stable, and differs for different templates.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in without_hash(template).to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h % 0xff_ffff_ffff)
}

fn revision(object: &Value) -> u64 {
    object["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn reconcile(s: &mut State, ns: &str, name: &str) {
    let key = ("deployments".to_string(), ns.to_string(), name.to_string());
    let Some(mut d) = s.objects.get(&key).cloned() else {
        return;
    };
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let template = d["spec"]["template"].clone();
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let owned: Vec<Value> = s
        .objects
        .iter()
        .filter(|((r, n, _), v)| {
            r == "replicasets"
                && n == ns
                && v["metadata"]["ownerReferences"][0]["uid"].as_str() == Some(uid.as_str())
        })
        .map(|(_, v)| v.clone())
        .collect();
    let newest = owned.iter().map(revision).max().unwrap_or(0);
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let observed = d["status"]["observedGeneration"].as_i64().unwrap_or(0);
    let wanted = without_hash(&template);
    let current = owned
        .iter()
        .find(|rs| without_hash(&rs["spec"]["template"]) == wanted)
        .cloned();
    let mut new_rs = match current {
        Some(mut rs) => {
            if revision(&rs) < newest {
                // A template it had before: that revision becomes the newest (an undo).
                rs["metadata"]["annotations"][REVISION] = json!((newest + 1).to_string());
                copy_change_cause(&d, &mut rs);
            }
            rs
        }
        None => {
            let hash = hash(&template);
            let mut t = template.clone();
            t["metadata"]["labels"][HASH] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"][HASH] = json!(hash);
            let mut rs = json!({
                "metadata": {"name": format!("{name}-{hash}"), "labels": t["metadata"]["labels"],
                             "annotations": {REVISION: (newest + 1).to_string()},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": name, "uid": uid, "controller": true,
                                                  "blockOwnerDeletion": true}]},
                "spec": {"replicas": 0, "selector": selector, "template": t},
                "status": {"replicas": 0},
            });
            copy_change_cause(&d, &mut rs);
            s.admit("replicasets", ns, rs)
        }
    };
    let new_name = new_rs["metadata"]["name"].as_str().unwrap().to_string();
    d["metadata"]["annotations"][REVISION] = json!(revision(&new_rs).to_string());
    if observed < generation {
        d["status"]["observedGeneration"] = json!(generation);
        s.progress
            .insert((ns.into(), name.into()), (Instant::now(), Value::Null));
    }

    // One step of the rolling update: one more new pod while every pod counts, then one old pod
    // fewer once the new ones are ready.
    let ready = |s: &State, rs: &Value| ready_pods(s, ns, rs);
    let mut old: Vec<Value> = owned
        .iter()
        .filter(|rs| rs["metadata"]["name"] != json!(new_name))
        .cloned()
        .collect();
    old.sort_by_key(revision);
    let new_count = new_rs["spec"]["replicas"].as_i64().unwrap_or(0);
    let old_count: i64 = old
        .iter()
        .map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    let new_ready = ready(s, &new_rs);
    let old_ready: i64 = old.iter().map(|rs| ready(s, rs)).sum();
    if new_count > replicas {
        new_rs["spec"]["replicas"] = json!(new_count - 1);
    } else if new_count < replicas && new_count + old_count < replicas + 1 {
        new_rs["spec"]["replicas"] = json!(new_count + 1);
    } else if old_count > 0 && (new_ready + old_ready > replicas || old_count > old_ready) {
        // An old pod goes once the ready ones stay at strength without it (or it is not
        // ready anyway).
        if let Some(rs) = old
            .iter_mut()
            .find(|rs| rs["spec"]["replicas"].as_i64() > Some(0))
        {
            let n = rs["spec"]["replicas"].as_i64().unwrap_or(0);
            rs["spec"]["replicas"] = json!(n - 1);
        }
    }

    let mut all = vec![new_rs];
    all.extend(old);
    let mut total = 0;
    let mut total_ready = 0;
    let mut updated = 0;
    for mut rs in all {
        let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
        sync_pods(s, ns, &rs);
        let pods = pods_of(s, ns, &rs_name);
        let ready = ready_pods(s, ns, &rs);
        rs["status"] = json!({"replicas": pods.len(), "readyReplicas": ready,
                              "availableReplicas": ready, "observedGeneration": 1});
        total += pods.len() as i64;
        total_ready += ready;
        if rs_name == new_name {
            updated = pods.len() as i64;
        }
        if s.objects
            .contains_key(&("replicasets".into(), ns.into(), rs_name.clone()))
        {
            s.update("replicasets", ns, &rs_name, rs);
        } else {
            s.put("replicasets", ns, &rs_name, rs, "ADDED");
        }
    }

    let counts = json!([total, updated, total_ready]);
    let (last, seen) = s
        .progress
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
        .unwrap_or((Instant::now(), Value::Null));
    let last = if seen != counts {
        s.progress
            .insert((ns.into(), name.into()), (Instant::now(), counts));
        Instant::now()
    } else {
        last
    };
    let complete = updated == replicas && total == replicas && total_ready == replicas;
    let deadline =
        Duration::from_secs(d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600));
    let already_exceeded = d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["reason"] == "ProgressDeadlineExceeded")
        && observed == generation;
    let progressing = if complete {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
               "message": format!("ReplicaSet \"{new_name}\" has successfully progressed.")})
    } else if already_exceeded || last.elapsed() > deadline {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
               "message": format!("ReplicaSet \"{new_name}\" has timed out progressing.")})
    } else {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
               "message": format!("ReplicaSet \"{new_name}\" is progressing.")})
    };
    let available = json!({"type": "Available",
        "status": if total_ready >= replicas { "True" } else { "False" },
        "reason": if total_ready >= replicas { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }});
    d["status"]["replicas"] = json!(total);
    d["status"]["updatedReplicas"] = json!(updated);
    d["status"]["readyReplicas"] = json!(total_ready);
    d["status"]["availableReplicas"] = json!(total_ready);
    d["status"]["unavailableReplicas"] = json!((total - total_ready).max(0));
    d["status"]["conditions"] = json!([available, progressing]);
    s.update("deployments", ns, name, d);
}

fn copy_change_cause(deployment: &Value, rs: &mut Value) {
    if let Some(cause) =
        deployment["metadata"]["annotations"]["kubernetes.io/change-cause"].as_str()
    {
        rs["metadata"]["annotations"]["kubernetes.io/change-cause"] = json!(cause);
    }
}

fn pods_of(s: &State, ns: &str, rs_name: &str) -> Vec<Value> {
    s.objects
        .iter()
        .filter(|((r, n, _), v)| {
            r == "pods"
                && n == ns
                && v["metadata"]["ownerReferences"][0]["name"].as_str() == Some(rs_name)
        })
        .map(|(_, v)| v.clone())
        .collect()
}

fn ready_pods(s: &State, ns: &str, rs: &Value) -> i64 {
    let rs_name = rs["metadata"]["name"].as_str().unwrap_or("");
    pods_of(s, ns, rs_name)
        .iter()
        .filter(|p| p["status"]["conditions"][0]["status"] == "True")
        .count() as i64
}

/// Creates and deletes the pods of `rs` to match its replicas, and moves each one's readiness
/// on.
fn sync_pods(s: &mut State, ns: &str, rs: &Value) {
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(0) as usize;
    let mut pods = pods_of(s, ns, &rs_name);
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    while pods.len() > want {
        let pod = pods.pop().unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        s.delete("pods", ns, &name);
        s.born.remove(&(ns.into(), name));
    }
    let mut n = 0;
    while pods.len() < want {
        n += 1;
        let name = format!("{rs_name}-{:05x}", (s.version * 7 + n) % 0xfffff);
        if s.objects
            .contains_key(&("pods".into(), ns.into(), name.clone()))
        {
            continue;
        }
        let template = &rs["spec"]["template"];
        let pod = json!({
            "metadata": {"name": name, "labels": template["metadata"]["labels"],
                         "annotations": template["metadata"]["annotations"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": rs_name, "uid": rs["metadata"]["uid"],
                                              "controller": true}]},
            "spec": {"nodeName": format!("node-{}", (s.version % 3) + 1),
                     "containers": template["spec"]["containers"]},
            "status": {"phase": "Pending",
                       "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": []},
        });
        let pod = s.admit("pods", ns, pod);
        s.born.insert((ns.into(), name.clone()), Instant::now());
        s.put("pods", ns, &name, pod.clone(), "ADDED");
        pods.push(pod);
    }
    let ready_after = s.ready_after;
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let age = s
            .born
            .get(&(ns.into(), name.clone()))
            .map_or(Duration::ZERO, |b| b.elapsed());
        let broken = s.broken.iter().any(|b| image.contains(b.as_str()));
        let mut next = pod.clone();
        if age >= ready_after {
            let container = pod["spec"]["containers"][0]["name"].clone();
            if broken {
                let restarts = (age.as_millis() / 1000) as u64;
                next["status"] = json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": container, "ready": false, "image": image,
                        "restartCount": restarts,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]});
            } else {
                next["status"] = json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": container, "ready": true, "image": image,
                        "restartCount": 0, "state": {"running": {}}}]});
            }
        }
        s.update("pods", ns, &name, next);
    }
}

/// The Job controller and the kubelet for Job `name`: a pod that "runs" the command (as
/// scripted by [`FakeKube::script_job`]) once `ready_after` has passed, and the Job's status.
fn run_job(s: &mut State, ns: &str, name: &str) {
    let key = ("jobs".to_string(), ns.to_string(), name.to_string());
    let Some(mut job) = s.objects.get(&key).cloned() else {
        return;
    };
    if job["status"]["succeeded"].as_i64() > Some(0) || job["status"]["failed"].as_i64() > Some(0) {
        return;
    }
    let pod_name = format!("{name}-{}", &hash(&job["spec"]["template"])[..5]);
    let pod_key = ("pods".to_string(), ns.to_string(), pod_name.clone());
    let container = job["spec"]["template"]["spec"]["containers"][0].clone();
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    // The kubelet: a pod whose claim is missing is never scheduled; a subPath that is
    // missing on the claim is made.
    let mounts = match claim_mounts(s, ns, &job["spec"]["template"]["spec"], &container) {
        Ok(mounts) => mounts,
        Err(missing) => {
            if !s.objects.contains_key(&pod_key) {
                let pod = json!({
                    "metadata": {"name": pod_name,
                                 "labels": {"job-name": name, "batch.kubernetes.io/job-name": name}},
                    "spec": {"restartPolicy": "Never",
                             "containers": job["spec"]["template"]["spec"]["containers"]},
                    "status": {"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": format!("persistentvolumeclaim \"{missing}\" not found")}]},
                });
                let pod = s.admit("pods", ns, pod);
                s.born.insert((ns.into(), pod_name.clone()), Instant::now());
                s.put("pods", ns, &pod_name, pod, "ADDED");
                job["status"] = json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"});
                s.update("jobs", ns, name, job);
            }
            return;
        }
    };
    if !s.objects.contains_key(&pod_key) {
        let pod = json!({
            "metadata": {"name": pod_name,
                         "labels": {"job-name": name, "batch.kubernetes.io/job-name": name},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": name, "uid": job["metadata"]["uid"],
                                              "controller": true}]},
            "spec": {"nodeName": "node-1", "restartPolicy": "Never",
                     "containers": job["spec"]["template"]["spec"]["containers"]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": container["name"], "ready": true,
                                              "restartCount": 0, "image": container["image"],
                                              "state": {"running": {}}}]},
        });
        let pod = s.admit("pods", ns, pod);
        s.born.insert((ns.into(), pod_name.clone()), Instant::now());
        s.put("pods", ns, &pod_name, pod, "ADDED");
        job["status"] = json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"});
        s.update("jobs", ns, name, job);
        return;
    }
    let age = s
        .born
        .get(&(ns.into(), pod_name.clone()))
        .map_or(Duration::ZERO, |b| b.elapsed());
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(Duration::from_secs);
    let program = argv.first().cloned().unwrap_or_default();
    if deadline.is_some_and(|d| age > d) {
        s.delete("pods", ns, &pod_name);
        job["status"] = json!({"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]});
        s.update("jobs", ns, name, job);
        return;
    }
    if age < s.ready_after || program == "sleep" {
        return;
    }
    let run = JobRun {
        argv: argv.clone(),
        env: container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?.into(), v["value"].as_str()?.into())))
            .collect(),
        mounts,
    };
    let (code, output) = match s.jobs.get(&program) {
        Some(script) => script(&run),
        None if program == "rm" => rm(&run),
        None if program == "du" => du(&run),
        None => {
            let mut output = format!("ran: {}\n", argv.join(" "));
            for (var_name, value) in &run.env {
                if var_name.starts_with("RUNWAY_") {
                    output += &format!("{var_name}={value}\n");
                }
            }
            (0, output)
        }
    };
    let mut pod = s.objects[&pod_key].clone();
    pod["metadata"]["annotations"]["fake.example/output"] = json!(output);
    pod["status"] = json!({"phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{"name": container["name"], "ready": false, "restartCount": 0,
                               "image": container["image"],
                               "state": {"terminated": {"exitCode": code,
                                                        "reason": if code == 0 { "Completed" } else { "Error" }}}}]});
    s.update("pods", ns, &pod_name, pod);
    job["status"] = if code == 0 {
        json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    } else {
        json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                            "reason": "BackoffLimitExceeded"}]})
    };
    s.update("jobs", ns, name, job);
}

/// The claim mounts of a Job's `container` in `pod` (a pod spec): their host directories,
/// made as the kubelet makes a missing `subPath`; the name of a claim that does not exist.
fn claim_mounts(
    s: &State,
    ns: &str,
    pod: &Value,
    container: &Value,
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == mount["name"]);
        let Some(claim) = volume.and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        else {
            continue;
        };
        let key = (
            "persistentvolumeclaims".to_string(),
            ns.to_string(),
            claim.to_string(),
        );
        if !s.objects.contains_key(&key) {
            return Err(claim.to_string());
        }
        let mut host = s.volumes.join(ns).join(claim);
        if let Some(sub) = mount["subPath"].as_str() {
            host = host.join(sub);
        }
        std::fs::create_dir_all(&host).expect("the claim's directory");
        mounts.push((mount["mountPath"].as_str().unwrap_or("").to_string(), host));
    }
    Ok(mounts)
}

/// `rm -rf PATH...` on the mounted claims (busybox's, as far as runway uses it).
fn rm(run: &JobRun) -> (i32, String) {
    let mut output = String::new();
    let mut code = 0;
    for path in run.argv.iter().skip(1).filter(|a| !a.starts_with('-')) {
        let Some(host) = run.host_path(path) else {
            output += &format!("rm: can't remove '{path}': Read-only file system\n");
            code = 1;
            continue;
        };
        let removed = if host.is_dir() {
            std::fs::remove_dir_all(&host)
        } else {
            std::fs::remove_file(&host)
        };
        if let Err(e) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                output += &format!("rm: can't remove '{path}': {e}\n");
                code = 1;
            }
        }
    }
    (code, output)
}

/// `du -sk PATH`: the KiB of its files, each rounded up to a KiB.
fn du(run: &JobRun) -> (i32, String) {
    fn kib(path: &Path) -> u64 {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| kib(&e.path()))
                .sum(),
            Ok(m) => m.len().div_ceil(1024),
            Err(_) => 0,
        }
    }
    let Some(path) = run.argv.iter().skip(1).find(|a| !a.starts_with('-')) else {
        return (1, "du: no path\n".into());
    };
    match run.host_path(path).filter(|h| h.exists()) {
        Some(host) => (0, format!("{}\t{path}\n", kib(&host))),
        None => (1, format!("du: {path}: No such file or directory\n")),
    }
}
