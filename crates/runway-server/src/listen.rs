//! Where and how the API listens. Loopback by default; any other address carries bearer
//! tokens and session cookies across a network, so it is served only over TLS (rustls, with a
//! certificate and key from files) or when the operator says in so many words that plain HTTP
//! is meant (`--insecure-http`, for a proxy in front that terminates TLS).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A listener handed over (systemd, the previous server) or, without one, `addr` bound.
pub async fn bind_or_adopt(
    adopted: Option<std::net::TcpListener>,
    addr: SocketAddr,
    what: &str,
) -> Result<tokio::net::TcpListener> {
    match adopted {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            Ok(tokio::net::TcpListener::from_std(listener)?)
        }
        None => tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} address {addr}")),
    }
}

/// `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Refuses an API address off loopback without TLS, unless plain HTTP was asked for.
pub fn check_exposure(addr: SocketAddr, tls: bool, insecure_http: bool) -> Result<()> {
    if addr.ip().is_loopback() || tls || insecure_http {
        return Ok(());
    }
    bail!(
        "refusing to serve the API on {addr} without TLS: tokens and session cookies would \
         cross the network readable.\n\
         Give it a certificate:  runway server --api-listen {addr} --tls-cert cert.pem --tls-key key.pem\n\
         or, behind a proxy that terminates TLS:  runway server --api-listen {addr} --insecure-http\n\
         (the default, 127.0.0.1, needs neither)"
    )
}

/// The TLS the API serves: its rustls configuration, and the SHA-256 (hex) of the certificate
/// it presents, which the CLI pins.
#[derive(Debug)]
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub leaf_sha256: String,
}

/// The rustls configuration of `files`, with runway's provider (ring): HTTP/2 and HTTP/1.1.
pub fn tls_config(files: &TlsFiles) -> Result<Tls> {
    let certs = read_certs(&files.cert)?;
    let leaf_sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(certs[0].as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!(
            "reading the TLS key {}: {e} (a PEM private key: PKCS#8, PKCS#1 or SEC1)",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the TLS key {} does not fit the certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        leaf_sha256,
    })
}

/// The certificate chain in a PEM file, leaf first; at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading the TLS certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "the TLS certificate {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        );
    }
    Ok(certs)
}

/// How long requests under way may go on after the stop signal.
const GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is given) until `stopping` is cancelled,
/// then lets requests under way finish for up to [`GRACE`]. Event streams end by themselves
/// at the signal (they watch the same token), so they do not hold the server up.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stopping: tokio_util::sync::CancellationToken,
) -> Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        let graceful = axum::serve(listener, service)
            .with_graceful_shutdown(stopping.clone().cancelled_owned());
        let grace_over = async {
            stopping.cancelled().await;
            tokio::time::sleep(GRACE).await;
        };
        tokio::select! {
            served = graceful => served?,
            _ = grace_over => {
                tracing::warn!("requests still under way {}s after the stop signal: stopping anyway", GRACE.as_secs());
            }
        }
        return Ok(());
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    axum_server::from_tcp_rustls(
        listener.into_std()?,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )?
    .handle(handle)
    .serve(service)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_nothing_and_anywhere_else_needs_tls_or_the_flag() {
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let lan: SocketAddr = "10.1.2.3:7000".parse().unwrap();
        assert!(check_exposure(v4, false, false).is_ok());
        assert!(check_exposure(v6, false, false).is_ok());
        for addr in [any, lan] {
            let refused = check_exposure(addr, false, false).unwrap_err().to_string();
            assert!(refused.contains("without TLS"), "{refused}");
            assert!(refused.contains("--tls-cert"), "{refused}");
            assert!(refused.contains("--insecure-http"), "{refused}");
            assert!(check_exposure(addr, true, false).is_ok());
            assert!(check_exposure(addr, false, true).is_ok());
        }
    }

    #[test]
    fn unreadable_or_mismatched_files_say_which_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        let missing = tls_config(&files).unwrap_err().to_string();
        assert!(missing.contains("cert.pem"), "{missing}");

        std::fs::write(&cert, "not a certificate\n").unwrap();
        let empty = tls_config(&files).unwrap_err().to_string();
        assert!(empty.contains("holds no PEM certificate"), "{empty}");

        let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let mismatched = format!("{:#}", tls_config(&files).unwrap_err());
        assert!(mismatched.contains("does not fit"), "{mismatched}");

        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        tls_config(&files).unwrap();
    }
}
