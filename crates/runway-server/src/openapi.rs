//! The API's OpenAPI 3.0 document, served at `GET /v1/openapi.json` (no token: it holds no
//! secret, and a client reads it before it has one).
//!
//! Every operation is one row of [`operations`]: its method and path, what it does, the role
//! it needs ([`crate::api::required_role`], the same table the server checks), its query,
//! body and answer types. The schemas are derived by schemars from the wire types themselves,
//! reading serde's attributes, so what the document says a field is, is what the server sends.
//! A test checks that the rows are exactly the server's routes.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use runway_wire::api::*;
use runway_wire::dora::{DoraQuery, DoraReport};
use runway_wire::incident::{Incident, IncidentDetail, IncidentQuery, ResolveRequest};
use runway_wire::notice::{Delivery, DeliveryQuery, NotifyTestRequest};
use runway_wire::record::{AuditCheck, AuditEntry, BackupRow, HookRun};
use runway_wire::ErrorBody;

use crate::api::required_role;

type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What a successful call answers.
enum Answer {
    /// JSON of a type, with this status.
    Json(u16, SchemaOf),
    /// A `text/event-stream` of journal entries.
    Events(&'static str),
}

/// One operation of the API.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    summary: &'static str,
    query: Option<SchemaOf>,
    body: Option<SchemaOf>,
    answer: Answer,
    /// No token needed (the document itself, and signing in).
    public: bool,
    /// Errors in a shape of their own (OFREP's), by status, instead of runway's.
    own_errors: Option<(&'static [u16], SchemaOf)>,
}

impl Operation {
    fn query(mut self, query: SchemaOf) -> Self {
        self.query = Some(query);
        self
    }

    fn body(mut self, body: SchemaOf) -> Self {
        self.body = Some(body);
        self
    }

    fn public(mut self) -> Self {
        self.public = true;
        self
    }

    fn own_errors(mut self, statuses: &'static [u16], schema: SchemaOf) -> Self {
        self.own_errors = Some((statuses, schema));
        self
    }
}

fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    answer: Answer,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        query: None,
        body: None,
        answer,
        public: false,
        own_errors: None,
    }
}

fn ok(schema: SchemaOf) -> Answer {
    Answer::Json(200, schema)
}

fn created(schema: SchemaOf) -> Answer {
    Answer::Json(201, schema)
}

/// Every operation of the API.
pub fn operations() -> Vec<Operation> {
    use Answer::Events;
    vec![
        op("GET", "/v1/openapi.json", "This document.", ok(of::<Value>)).public(),
        op("GET", "/v1/info", "The server's version, process and state dir.", ok(of::<ServerInfo>)),
        op("GET", "/v1/status", "Every service: what serves, its replicas, traffic modes, locks and the operation under way (`runway status`).", ok(of::<StatusView>)),
        op("GET", "/v1/deployments", "Deployments, newest first, narrowed by service, status and kind (`runway history`).", ok(of::<Vec<DeploymentView>>)).query(of::<DeploymentsQuery>),
        op("POST", "/v1/deployments", "Deploys a version with a release's config (`runway deploy`); the answer is the deployment just started, or waiting for its approvals.", created(of::<DeploymentView>)).body(of::<DeployRequest>),
        op("GET", "/v1/deployments/{id}", "A deployment with its whole journal.", ok(of::<DeploymentDetail>)),
        op("GET", "/v1/deployments/{id}/events", "A deployment with the journal entries after `after`, waiting up to `wait` seconds for new ones while it runs (long poll).", ok(of::<DeploymentDetail>)).query(of::<EventsQuery>),
        op("GET", "/v1/deployments/{id}/stream", "A deployment's journal as server-sent events, live, until it ends (through its wait for approvals).", Events("First `ready` (`{\"after\": N}`, its id where the stream starts), then events named `journal` (a JournalEntry; the SSE id is its seq) `deployment` (a DeploymentView, at the start and at each change of status) and, with `metrics=true`, every second while it runs, `metrics` (`{\"at\": RFC 3339, \"releases\": [ReleaseMetrics], \"canary\": CanaryView or null}`). The stream ends after the deployment has.")).query(of::<DeploymentStreamQuery>),
        op("GET", "/v1/events/stream", "Every deployment's journal as server-sent events, live.", Events("First `ready` (`{\"after\": N}`, its id where the stream starts), then events named `journal`, each a FeedEntry; the SSE id is its cursor (resume with `after` or Last-Event-ID).")).query(of::<StreamQuery>),
        op("GET", "/v1/deployments/{id}/hooks", "The hook runs of a deployment, with their output.", ok(of::<Vec<HookRun>>)),
        op("DELETE", "/v1/services/{service}", "Forgets a service (`runway service remove`); refused while it serves, unless forced.", ok(of::<Message>)).query(of::<RemoveQuery>),
        op("POST", "/v1/services/{service}/restore", "Restores a backup and redeploys its release (`runway restore`).", created(of::<DeploymentView>)).body(of::<RestoreRequest>),
        op("GET", "/v1/services/{service}/backups", "The service's backups, newest first.", ok(of::<Vec<BackupRow>>)),
        op("POST", "/v1/services/{service}/maintenance", "Turns maintenance mode on or off (`runway maintenance`).", ok(of::<Message>)).body(of::<ModeRequest>),
        op("POST", "/v1/services/{service}/read-only", "Turns read-only mode on or off (`runway read-only`).", ok(of::<Message>)).body(of::<ModeRequest>),
        op("POST", "/v1/services/{service}/rollback", "Rolls back to the previous release, with its config, secrets and schema (`runway rollback`).", created(of::<DeploymentView>)).body(of::<RollbackRequest>),
        op("POST", "/v1/services/{service}/scale", "Changes the number of replicas (`runway scale`).", created(of::<DeploymentView>)).body(of::<ScaleRequest>),
        op("GET", "/v1/services/{service}/nodes", "The service's replicas with their health (`runway nodes`).", ok(of::<Vec<ReplicaView>>)),
        op("POST", "/v1/services/{service}/nodes/{node}/{action}", "Restarts, stops or starts one replica (`runway nodes restart|stop|start`).", ok(of::<Message>)),
        op("GET", "/v1/services/{service}/logs", "The replicas' output (`runway logs`).", ok(of::<LogsResponse>)).query(of::<LogsQuery>),
        op("POST", "/v1/services/{service}/canary/{command}", "Steers the rollout under way: promote, promote-full, pause, resume or abort (`runway promote` ...).", ok(of::<Message>)),
        op("POST", "/v1/services/{service}/baselines", "Measures the serving release and stores it as a baseline (`runway baseline capture`).", ok(of::<Baseline>)).query(of::<BaselineQuery>),
        op("GET", "/v1/services/{service}/checks/history", "The service's scheduled checklist runs, newest first (`runway check --history`).", ok(of::<Vec<CheckRun>>)).query(of::<HistoryQuery>),
        op("GET", "/v1/services/{service}/baselines/compare", "Measures now and compares with a baseline (`runway baseline compare`).", ok(of::<Comparison>)).query(of::<BaselineQuery>),
        op("GET", "/v1/approvals", "Deployments waiting for approvals (`runway approvals`).", ok(of::<Vec<ApprovalView>>)).query(of::<HistoryQuery>),
        op("POST", "/v1/deployments/{id}/approve", "Approves a deployment, bound to the digest of exactly what was approved (`runway approve`).", ok(of::<ApproveAnswer>)).body(of::<ApproveRequest>),
        op("POST", "/v1/deployments/{id}/reject", "Rejects (or, by its requester, withdraws) a deployment waiting for approvals (`runway reject`).", ok(of::<DeploymentView>)).body(of::<ReasonRequest>),
        op("GET", "/v1/services/{service}/secrets", "The service's secrets: names, versions, who set them and when, and the version its serving release runs with; never a value (`runway secrets list`).", ok(of::<Vec<SecretView>>)),
        op("PUT", "/v1/services/{service}/secrets/{name}", "Sets a secret, sealed at rest, as its next version; when the serving release uses it, its replicas roll with the new value (`runway secrets set`).", ok(of::<SecretSet>)).body(of::<SetSecret>),
        op("DELETE", "/v1/services/{service}/secrets/{name}", "Unsets a secret for the deployments to come; refused while the serving release uses it (`runway secrets unset`).", ok(of::<Message>)),
        op("GET", "/v1/services/{service}/flags", "The service's feature flags (`runway flags list`).", ok(of::<Vec<FlagView>>)),
        op("GET", "/v1/services/{service}/flags/{name}", "One flag's definition (`runway flags get`).", ok(of::<FlagView>)),
        op("PUT", "/v1/services/{service}/flags/{name}", "Sets a flag's whole definition: recorded as a `flag` deployment, audited and notified (`runway flags set`).", ok(of::<FlagView>)).body(of::<SetFlag>),
        op("POST", "/v1/services/{service}/flags/{name}/off", "The kill switch: the flag serves its off variant to everyone, at once; a rollout under way ends (`runway flags off`).", ok(of::<FlagView>)).body(of::<MaybeReason>),
        op("POST", "/v1/services/{service}/flags/{name}/rollout", "Rolls a flag out in steps, each judged against the baseline taken before it; a failing step turns it off (`runway flags rollout`).", created(of::<DeploymentView>)).body(of::<FlagRolloutRequest>),
        op("POST", "/v1/services/{service}/ofrep/v1/evaluate/flags", "OFREP bulk evaluation: every flag of the service for the context, with an ETag (OpenFeature's Remote Evaluation Protocol; base URL `/v1/services/{service}`).", ok(of::<OfrepBulk>)).body(of::<OfrepRequest>).own_errors(&[304, 400], of::<OfrepError>),
        op("POST", "/v1/services/{service}/ofrep/v1/evaluate/flags/{key}", "OFREP evaluation of one flag for the context.", ok(of::<OfrepEvaluation>)).body(of::<OfrepRequest>).own_errors(&[400, 404], of::<OfrepError>),
        op("POST", "/v1/services/{service}/lock", "Holds the service's deployments (`runway lock`).", ok(of::<Message>)).body(of::<ReasonRequest>),
        op("POST", "/v1/services/{service}/unlock", "Lets them go again (`runway unlock`).", ok(of::<Message>)),
        op("GET", "/v1/audit", "The audit trail, oldest first (`runway audit`).", ok(of::<Vec<AuditEntry>>)).query(of::<AuditQuery>),
        op("GET", "/v1/audit/verify", "Checks the audit trail's hash chain (`runway audit verify`).", ok(of::<AuditCheck>)).query(of::<AuditQuery>),
        op("GET", "/v1/whoami", "The identity of the token (or session) and its role.", ok(of::<Identity>)),
        op("GET", "/v1/tokens", "The named tokens (never their secrets).", ok(of::<Vec<TokenView>>)),
        op("POST", "/v1/tokens", "Creates a named token with a role; the answer holds its secret, once.", created(of::<CreatedToken>)).body(of::<NewToken>),
        op("DELETE", "/v1/tokens/{name}", "Revokes a token (its sessions end with it).", ok(of::<TokenView>)),
        op("POST", "/v1/notify/test", "Sends a test notice to the targets given (`runway notify test`).", ok(of::<Vec<Delivery>>)).body(of::<NotifyTestRequest>),
        op("GET", "/v1/deliveries", "Notices delivered or not, newest first (`runway notify log`).", ok(of::<Vec<Delivery>>)).query(of::<DeliveryQuery>),
        op("GET", "/v1/reports/dora", "The DORA metrics (`runway report dora`).", ok(of::<DoraReport>)).query(of::<DoraQuery>),
        op("GET", "/v1/incidents", "Incidents, newest first (`runway incident list`).", ok(of::<Vec<Incident>>)).query(of::<IncidentQuery>),
        op("GET", "/v1/incidents/{id}", "An incident with its timeline.", ok(of::<IncidentDetail>)),
        op("POST", "/v1/incidents/{id}/ack", "Acknowledges an incident.", ok(of::<IncidentDetail>)),
        op("POST", "/v1/incidents/{id}/resolve", "Resolves an incident.", ok(of::<IncidentDetail>)).body(of::<ResolveRequest>),
        op("GET", "/v1/session", "The dashboard session of the cookie: who, and the CSRF token its changes carry.", ok(of::<SessionView>)),
        op("POST", "/v1/session", "Signs in to the dashboard with a token: sets an HttpOnly, SameSite=Strict session cookie.", ok(of::<SessionView>)).body(of::<SignIn>).public(),
        op("DELETE", "/v1/session", "Signs out: the session ends.", ok(of::<Message>)),
    ]
}

/// The values a path parameter can take.
fn path_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "id" => (
            json!({"type": "integer", "format": "int64"}),
            "A deployment's (or an incident's) number.",
        ),
        "service" => (json!({"type": "string"}), "A service's name."),
        "node" => (
            json!({"type": "string"}),
            "A replica's name (`runway nodes`).",
        ),
        "name" => (
            json!({"type": "string"}),
            "A token's, a secret's or a flag's name.",
        ),
        "key" => (json!({"type": "string"}), "A flag's name (OFREP's key)."),
        "action" => (
            json!({"type": "string", "enum": ["restart", "stop", "start"]}),
            "What to do to the replica.",
        ),
        "command" => (
            json!({"type": "string", "enum": ["promote", "promote-full", "pause", "resume", "abort"]}),
            "What to tell the rollout.",
        ),
        _ => (json!({"type": "string"}), ""),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema, "description": description})
}

/// The query parameters of a query type: one per property of its schema.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": property,
                    });
                    if let Some(description) = property.get("description") {
                        parameter["description"] = description.clone();
                    }
                    parameter
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The document.
pub fn document() -> Value {
    // Answers are described as the server writes them, requests as it reads them (a field
    // with a default may be left out of a request, a field skipped when empty may be missing
    // from an answer). Requests are inlined, so that the two never share a component.
    let mut answers = SchemaSettings::openapi3().for_serialize().into_generator();
    let mut requests = SchemaSettings::openapi3().for_deserialize();
    requests.inline_subschemas = true;
    let mut requests = requests.into_generator();
    let error = answers.subschema_for::<ErrorBody>();

    let mut paths = Map::new();
    for operation in operations() {
        let mut parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(path_parameter)
            .collect();
        if let Some(query) = operation.query {
            parameters.extend(query_parameters(&query(&mut requests).to_value()));
        }
        let mut responses = Map::new();
        match operation.answer {
            Answer::Json(status, schema) => {
                responses.insert(
                    status.to_string(),
                    json!({
                        "description": "Success.",
                        "content": {"application/json": {"schema": schema(&mut answers)}},
                    }),
                );
            }
            Answer::Events(description) => {
                // Each event as schemathesis and SSE clients see it: its name, its id, and
                // its data, a JSON text (the description says of which type).
                let event = json!({
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["ready", "journal", "deployment", "metrics"]},
                        "id": {"type": "string"},
                        "data": {"type": "string"},
                    },
                });
                // The types the data holds, so that they are in the components.
                answers.subschema_for::<FeedEntry>();
                answers.subschema_for::<runway_wire::record::JournalEntry>();
                answers.subschema_for::<runway_wire::metrics::ReleaseMetrics>();
                answers.subschema_for::<CanaryView>();
                responses.insert(
                    "200".into(),
                    json!({
                        "description": description,
                        "content": {"text/event-stream": {"schema": event}},
                    }),
                );
            }
        }
        let error_answer = |description: &str| {
            json!({
                "description": description,
                "content": {"application/json": {"schema": error}},
            })
        };
        responses.insert(
            "4XX".into(),
            error_answer(
                "Refused: 400 invalid_request, 401 unauthorized, 403 forbidden (the message names \
                 the role needed), 404 not_found, 409 busy, frozen or conflict, 415 or 422 for a \
                 body that is not the JSON documented.",
            ),
        );
        if let Some((statuses, schema)) = operation.own_errors {
            let schema = schema(&mut answers);
            for status in statuses {
                let answer = if *status == 304 {
                    json!({"description": "Not modified: the ETag sent in If-None-Match is current."})
                } else {
                    json!({
                        "description": "OFREP's error: FLAG_NOT_FOUND (404), PARSE_ERROR or INVALID_CONTEXT (400).",
                        "content": {"application/json": {"schema": schema}},
                    })
                };
                responses.insert(status.to_string(), answer);
            }
        }
        responses.insert(
            "5XX".into(),
            error_answer(
                "500 failed (an operation that ran and did not succeed) or internal; 503 \
                 unavailable (the state store refuses writes: `status` says why; try again \
                 once it recovers).",
            ),
        );
        let method = operation.method.to_ascii_lowercase();
        let role = required_role(&operation.method.parse().expect("a method"), operation.path);
        let mut entry = json!({
            "summary": operation.summary,
            "operationId": operation_id(operation.method, operation.path),
            "parameters": parameters,
            "responses": responses,
        });
        if operation.public {
            entry["security"] = json!([]);
        } else {
            entry["description"] = json!(format!("Needs the {role} role."));
            entry["x-runway-role"] = json!(role.as_str());
        }
        if let Some(body) = operation.body {
            entry["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body(&mut requests)}},
            });
        }
        paths
            .entry(operation.path.to_string())
            .or_insert_with(|| json!({}))[method] = entry;
    }

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "runway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The runway server's API: every CLI action, the journal as live events, \
                and the dashboard's session. Version 1: fields are added, never renamed or removed. \
                Errors have one JSON shape with a stable `code`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": answers.take_definitions(true),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token: the server's own (server.json) or a named one (`runway tokens create`).",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": crate::session::COOKIE,
                    "description": "The dashboard's session (POST /v1/session); changes also carry its CSRF token in the X-CSRF-Token header.",
                },
            },
        },
    })
}

/// `get_v1_services_service_nodes`: a stable name per operation.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(part.chars().filter(|c| !matches!(c, '{' | '}')).map(|c| {
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        }));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes_of_the_server() {
        let mut documented: Vec<(String, String)> = operations()
            .iter()
            .map(|o| (o.method.to_string(), o.path.to_string()))
            .collect();
        let mut served: Vec<(String, String)> = crate::api::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_reference_resolves_and_every_operation_has_an_answer() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the components: {target}"));
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    ids.insert(operation["operationId"].as_str().unwrap().to_string()),
                    "{method} {path}: operationId twice"
                );
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}"
                );
                let placeholders = path.matches('{').count();
                let in_path = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .count();
                assert_eq!(placeholders, in_path, "{method} {path}");
            }
        }
        // The types are the wire's: a field the server sends is in the schema.
        let deployment = &schemas["DeploymentView"]["properties"];
        for field in ["id", "service", "version", "status", "started_at"] {
            assert!(deployment.get(field).is_some(), "DeploymentView.{field}");
        }
        let error = &schemas["ErrorBody"]["properties"];
        assert!(error.get("code").is_some() && error.get("hint").is_some());
    }
}
