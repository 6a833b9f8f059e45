//! The CLI's side of the API: the typed client of runway-wire, finding the server through the
//! state dir's `server.json` before every request (a restarted server has a new address and
//! bootstrap token).

use std::path::Path;

pub use runway_wire::client::{Client, ClientError, ServerAddress};

use runway_server::state_dir;

/// A client of the server whose state dir is `state_dir`, as the identity of `RUNWAY_TOKEN`
/// (a named token, `runway tokens create`), else as the server's bootstrap admin (its token in
/// server.json, which only the server's owner can read).
pub fn connect(state_dir: &Path) -> Client {
    let dir = state_dir.to_path_buf();
    let locate_dir = dir.clone();
    let named = std::env::var("RUNWAY_TOKEN").ok().filter(|t| !t.is_empty());
    Client::new(
        Box::new(move || {
            let server = state_dir::read_trusted_server_file(&locate_dir)
                .map_err(|e| ClientError::Other(format!("{e:#}")))?
                .ok_or_else(|| no_server(&locate_dir, "no server.json in it"))?;
            // A TLS server: trust exactly the certificate it loaded (its SHA-256).
            let pinned_cert = match &server.tls_cert_sha256 {
                Some(hex) => Some(decode_hex(hex).ok_or_else(|| {
                    ClientError::Other(format!(
                        "{}: tls_cert_sha256 is not a SHA-256 in hex",
                        locate_dir.join("server.json").display()
                    ))
                })?),
                None => None,
            };
            Ok(ServerAddress {
                api: server.api,
                token: named.clone().unwrap_or(server.token),
                pinned_cert,
            })
        }),
        Box::new(move |why| no_server(&dir, why)),
    )
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn no_server(dir: &Path, why: &str) -> ClientError {
    let dir = dir.display();
    ClientError::NoServer(format!(
        "no runway server is running for state dir {dir} ({why}).\n\
         Start one with:  runway server --state-dir {dir}\n\
         (or point --state-dir / RUNWAY_STATE_DIR at the state dir of the server you mean)"
    ))
}
