//! Issue 14: identities and roles. Named tokens with a role, made with `runway tokens`, kept
//! hashed and shown once; every route checked against the role it needs (the role matrix:
//! every route, every role); who asked recorded with what they did.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use runway_server::api::{is_public, required_role, ROUTES};
use runway_wire::api::Role;

use super::harness::*;

/// Runs the CLI as the identity of `token` (RUNWAY_TOKEN).
async fn runway_as(h: &Harness, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runway"));
    cmd.args(args)
        .current_dir(h.dir.path())
        .env("RUNWAY_STATE_DIR", &h.state)
        .env("RUNWAY_TOKEN", token);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Signs in as the dashboard does: status, the cookie to send back, and the session.
async fn sign_in(api: std::net::SocketAddr, token: &str) -> (u16, String, serde_json::Value) {
    let body = serde_json::json!({ "token": token }).to_string();
    let (status, headers, session) = api_exchange(api, "POST", "/v1/session", &body, &[]).await;
    let cookie = headers
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .unwrap_or_default();
    (status, cookie, session)
}

/// Creates token `name` with `role` as the bootstrap admin; its secret.
async fn create_token(h: &Harness, name: &str, role: &str) -> String {
    let out = h.runway(&["tokens", "create", name, "--role", role]).await;
    assert!(out.status.success(), "tokens create {name}: {}", text(&out));
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(secret.starts_with("rwy_") && secret.len() > 60, "{secret}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shown this once"),
        "{}",
        text(&out)
    );
    secret
}

/// A concrete path for a route: a service and a token that do not exist, an action and a
/// command that are not ones, so that a role allowed through reaches the handler and changes
/// nothing.
fn concrete(route: &str) -> String {
    route
        .replace("{service}", "ghost")
        .replace("{id}", "999")
        .replace("{node}", "ghost-1")
        .replace("{action}", "bogus")
        .replace("{command}", "bogus")
        .replace("{name}", "nobody")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_the_role_it_needs() {
    let h = Harness::start().await;
    let api: std::net::SocketAddr = h.server_file()["api"].as_str().unwrap().parse().unwrap();
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        tokens.insert(role, create_token(&h, role.as_str(), role.as_str()).await);
    }
    let revoked = create_token(&h, "gone", "admin").await;
    let out = h.runway(&["tokens", "revoke", "gone"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // Each role also signed in as the dashboard does: a session cookie and its CSRF token.
    let mut sessions = BTreeMap::new();
    for role in Role::ALL {
        let (status, headers, session) = sign_in(api, &tokens[&role]).await;
        assert_eq!(status, 200, "{session}");
        sessions.insert(
            role,
            (headers, session["csrf"].as_str().unwrap().to_string()),
        );
    }

    let mut checked = 0;
    for (method, route) in ROUTES {
        // The API's description and signing in (which checks the token in its body): open
        // to anyone; the tests of issue 16 check them.
        if is_public(&method.parse().unwrap(), route) {
            continue;
        }
        let needed = required_role(&method.parse().unwrap(), route);
        let path = concrete(route);
        // Bodies that no handler accepts: an allowed role gets the handler's own answer.
        let body = if *method == "GET" {
            ""
        } else {
            "{\"not\": \"a request\"}"
        };
        for (label, token) in [
            ("no token", None),
            ("an unknown token", Some("rwy_0000")),
            ("a revoked token", Some(revoked.as_str())),
        ] {
            let (status, answer) = api_request(api, method, &path, body, token).await;
            assert_eq!(status, 401, "{method} {path} with {label}: {answer}");
            assert_eq!(answer["code"], "unauthorized", "{answer}");
        }
        // Signing out ends the session the rest of the matrix uses (api.rs tests it).
        let with_session = !(*method == "DELETE" && *route == "/v1/session");
        for (role, by_session) in Role::ALL.into_iter().map(|r| (r, false)).chain(
            Role::ALL
                .into_iter()
                .map(|r| (r, true))
                .filter(|_| with_session),
        ) {
            let (status, answer) = if by_session {
                let (cookie, csrf) = &sessions[&role];
                api_request_with(
                    api,
                    method,
                    &path,
                    body,
                    &[("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
                )
                .await
            } else {
                api_request(api, method, &path, body, Some(&tokens[&role])).await
            };
            let role_label = if by_session {
                format!("{role} (session)")
            } else {
                role.to_string()
            };
            if role.allows(needed) {
                assert!(
                    ![401, 403].contains(&status)
                        && [200, 201, 400, 404, 409, 422].contains(&status),
                    "{method} {path} as {role_label} (needs {needed}): {status} {answer}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{method} {path} as {role_label} (needs {needed}): {answer}"
                );
                assert_eq!(answer["code"], "forbidden", "{answer}");
                let message = answer["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("needs the {needed} role"))
                        && message.contains(&format!("has {role}")),
                    "{message}"
                );
            }
            checked += 1;
        }
    }
    let public = ROUTES
        .iter()
        .filter(|(m, r)| is_public(&m.parse().unwrap(), r))
        .count();
    assert_eq!(public, 2, "only the document and signing in are open");
    // Every route by each role's token and each role's session (but signing out by session).
    assert_eq!(checked, (ROUTES.len() - public) * 8 - 4);
    // The role matrix as the issue reads it: reads are everyone's, tokens are the admin's.
    let need = |m: &str, r: &str| required_role(&m.parse().unwrap(), r);
    assert_eq!(need("GET", "/v1/status"), Role::Viewer);
    assert_eq!(need("POST", "/v1/deployments"), Role::Deployer);
    assert_eq!(
        need("POST", "/v1/services/{service}/rollback"),
        Role::Deployer
    );
    assert_eq!(need("POST", "/v1/services/{service}/restore"), Role::Admin);
    assert_eq!(need("POST", "/v1/tokens"), Role::Admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_kept_hashed_and_name_who_did_what() {
    let h = Harness::start().await;
    let dee = create_token(&h, "dee", "deployer").await;
    let vic = create_token(&h, "vic", "viewer").await;

    let out = runway_as(&h, &dee, &["whoami"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "dee (deployer)"
    );
    let out = h.runway(&["whoami"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "bootstrap-admin (admin)",
        "no RUNWAY_TOKEN: the server's own token"
    );

    // A deployer deploys, and the deployment says who and why.
    let file = h.write("runway.toml", &App::default());
    let file = file.to_str().unwrap();
    let out = runway_as(
        &h,
        &dee,
        &["-f", file, "deploy", "v1", "--reason", "first light"],
    )
    .await;
    assert!(out.status.success(), "deploy as dee: {}", text(&out));
    assert!(
        text(&out).contains("by dee: first light"),
        "the journal's first line: {}",
        text(&out)
    );
    let history = h.history().await;
    assert_eq!(history[0]["requested_by"], "dee", "{history:#?}");
    assert_eq!(history[0]["request_reason"], "first light");

    // A viewer reads and may not deploy: exit 6, the role named.
    let out = runway_as(&h, &vic, &["status"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = runway_as(&h, &vic, &["-f", file, "deploy", "v2"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("needs the deployer role; the token `vic` has viewer"),
        "{}",
        text(&out)
    );
    assert_eq!(h.history().await.len(), 1, "nothing started");
    // Nor manage tokens.
    let out = runway_as(
        &h,
        &vic,
        &["tokens", "create", "mallory", "--role", "admin"],
    )
    .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));

    // The list never shows a secret; the state database holds only hashes.
    let out = h.runway(&["tokens", "list", "--json"]).await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("\"dee\"") && listed.contains("\"created_by\": \"bootstrap-admin\""));
    assert!(!listed.contains(&dee) && !listed.contains(&vic), "{listed}");
    for file in std::fs::read_dir(&h.state).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&dee[4..]),
                "{} holds a token",
                path.display()
            );
        }
    }

    // A name twice, a bad name, the bootstrap's name: refused, nothing made.
    let out = h
        .runway(&["tokens", "create", "dee", "--role", "viewer"])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = h
        .runway(&["tokens", "create", "a b", "--role", "viewer"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = h
        .runway(&["tokens", "create", "bootstrap-admin", "--role", "viewer"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = h.runway(&["tokens", "create", "x", "--role", "root"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("viewer, deployer, approver or admin"),
        "{}",
        text(&out)
    );

    // Revoked: refused from the next request on, with exit 5.
    let out = h.runway(&["tokens", "revoke", "dee"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = runway_as(&h, &dee, &["status"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    // Tokens survive a restart (they are in the state database, not in memory).
    let mut h = h;
    h.stop_server();
    h.start_server().await;
    let out = runway_as(&h, &vic, &["whoami"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "vic (viewer)");
}

/// Issue 15's audit trail: every state-changing request, refusals too, with who, role, from
/// where, what (never a config or its secrets) and the result; `runway audit verify` finds an
/// edited entry, and a cut-off trail against a head kept elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_every_change_and_finds_tampering() {
    let h = Harness::start().await;
    let api: std::net::SocketAddr = h.server_file()["api"].as_str().unwrap().parse().unwrap();
    let dee = create_token(&h, "dee", "deployer").await;
    let vic = create_token(&h, "vic", "viewer").await;
    let mut app = App::default();
    app.env
        .push(("DB_PASSWORD".into(), "hunter2-secret".into()));
    let file = h.write("runway.toml", &app);
    let file = file.to_str().unwrap();
    let out = runway_as(&h, &dee, &["-f", file, "deploy", "v1", "--reason", "first"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = runway_as(&h, &vic, &["-f", file, "deploy", "v2"]).await;
    assert_eq!(out.status.code(), Some(6));
    let (status, _) = api_request(
        api,
        "POST",
        "/v1/services/web/scale",
        "{\"count\": 2}",
        None,
    )
    .await;
    assert_eq!(status, 401);

    let out = h.runway(&["audit", "--json", "--since", "1h"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let trail = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !trail.contains("hunter2"),
        "no secret in the audit trail: {trail}"
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&trail).unwrap();
    let find = |who: &str, action: &str| {
        entries
            .iter()
            .find(|e| e["identity"] == who && e["action"].as_str().unwrap().starts_with(action))
            .unwrap_or_else(|| panic!("no {who} {action} in {trail}"))
            .clone()
    };
    let deploy = find("dee", "POST /v1/deployments");
    assert_eq!(deploy["role"], "deployer");
    assert_eq!(deploy["status"], 201);
    assert_eq!(deploy["result"], "ok");
    assert_eq!(deploy["detail"]["version"], "v1");
    assert_eq!(deploy["detail"]["reason"], "first");
    assert_eq!(deploy["detail"]["service"], "web");
    assert!(
        deploy["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{deploy}"
    );
    let refused = find("vic", "POST /v1/deployments");
    assert_eq!(refused["status"], 403);
    assert!(
        refused["result"]
            .as_str()
            .unwrap()
            .starts_with("forbidden: "),
        "{refused}"
    );
    let anonymous = find("anonymous", "POST /v1/services/web/scale");
    assert_eq!(anonymous["status"], 401);
    let created = find("bootstrap-admin", "POST /v1/tokens");
    assert_eq!(created["detail"]["name"], "dee");
    assert!(!trail.contains(&dee[4..]), "no token secret in the trail");

    // Whole, then edited in the database: found.
    let out = h.runway(&["audit", "verify", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let head = check["head"].as_str().unwrap().to_string();
    assert_eq!(check["entries"], entries.len() as i64, "{check}");
    let db = rusqlite::Connection::open(h.state_path().join("state.db")).unwrap();
    db.execute("UPDATE audit SET identity = 'ada' WHERE seq = 2", [])
        .unwrap();
    let out = h.runway(&["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("entry #2 was edited"), "{}", text(&out));
    db.execute(
        "UPDATE audit SET identity = 'bootstrap-admin' WHERE seq = 2",
        [],
    )
    .unwrap();
    // Cut off: the newest entries deleted look whole alone, not against the head kept before.
    db.execute("DELETE FROM audit WHERE seq >= 4", []).unwrap();
    let out = h.runway(&["audit", "verify", "--head", &head]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cut off"), "{}", text(&out));
}
