//! TCP checks: something accepts connections at `host:port`.
//!
//! The cheapest "is it up" probe, for services without a protocol-level check here
//! (or before one: a refused port explains a failing health check).

use std::time::Instant;

use super::{http, net};

pub(super) async fn run(address: &str) -> Result<String, String> {
    let (host, port) = net::split_host_port(address)?;
    let started = Instant::now();
    let stream = net::connect(host, port).await?;
    let peer = stream
        .peer_addr()
        .map_or_else(|_| address.to_string(), |a| a.to_string());
    Ok(format!(
        "connected to {peer} in {}",
        http::millis(started.elapsed())
    ))
}
