//! HTTP/1.1 upgrade tunnels (WebSocket and friends).
//!
//! After a backend answered `101 Switching Protocols`, both connections stop
//! speaking HTTP. hyper hands each side over as a raw byte stream once the 101
//! has been exchanged; the proxy then just copies bytes both ways until either
//! side closes. The backend stays "in flight" for the tunnel's lifetime, so a
//! drain waits for open WebSockets (bounded by the caller's timeout).

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::routes::BackendGuard;

/// Spawns the byte pump between the client's and the backend's upgraded
/// connections; `backend` is released when the tunnel closes.
pub(crate) fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, backend: BackendGuard) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                debug!(backend = %backend.id, %error, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((to_backend, to_client)) => {
                debug!(backend = %backend.id, to_backend, to_client, "tunnel closed");
            }
            Err(error) => debug!(backend = %backend.id, %error, "tunnel closed with error"),
        }
        drop(backend);
    });
}
