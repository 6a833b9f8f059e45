//! TLS checks: a certificate stays valid for at least `min_days` more days.
//!
//! "TLS certificates > 30 days" is on the checklist because an expired certificate
//! takes a whole site down at a time nobody chose. Two sources:
//!
//! * `file`: a PEM file; the first certificate in it (the leaf, by convention).
//! * `address`: a TLS handshake with `host:port` (SNI `server_name`, default the
//!   host), reading the leaf the server presents. The chain is deliberately *not*
//!   verified (the handshake signature still is): this check measures expiry, and must
//!   report "expired 3 days ago" or "expires in 5 days" rather than a verification
//!   error, including for internal CAs runway does not know.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::net;

pub(super) async fn run_file(path: PathBuf, min_days: u32) -> Result<String, String> {
    let shown = path.display().to_string();
    let pem = tokio::fs::read(&path)
        .await
        .map_err(|e| format!("cannot read {shown}: {}", net::io_reason(&e)))?;
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| format!("{shown} contains no PEM certificate"))?
        .map_err(|e| format!("{shown} is not valid PEM: {e}"))?;
    judge(&der, min_days, &shown)
}

pub(super) async fn run_address(
    address: &str,
    server_name: Option<&str>,
    min_days: u32,
) -> Result<String, String> {
    let (host, port) = net::split_host_port(address)?;
    let sni = server_name.unwrap_or(host).to_string();
    let name = ServerName::try_from(sni.clone())
        .map_err(|_| format!("{sni:?} is not a valid TLS server name"))?;
    let tcp = net::connect(host, port).await?;
    let tls = tokio_rustls::TlsConnector::from(inspect_config())
        .connect(name, tcp)
        .await
        .map_err(|e| {
            format!(
                "TLS handshake with {address} failed: {}",
                net::tls_reason(&e)
            )
        })?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| format!("{address} presented no certificate"))?;
    judge(leaf, min_days, address)
}

/// Passes when the certificate is valid for at least `min_days` more days.
fn judge(der: &CertificateDer<'_>, min_days: u32, source: &str) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate of {source} cannot be parsed: {e}"))?;
    let not_after = cert.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = not_after - now;
    let days = left.div_euclid(86_400);
    let subject = cert.subject().to_string();
    let subject = if subject.is_empty() {
        "certificate".to_string()
    } else {
        format!("certificate {subject}")
    };
    let date = civil_date(not_after);
    if left < 0 {
        return Err(format!(
            "{subject} of {source} expired on {date}, {} day(s) ago",
            (-left).div_euclid(86_400)
        ));
    }
    if days < i64::from(min_days) {
        return Err(format!(
            "{subject} of {source} expires on {date}, in {days} day(s) (min_days {min_days})"
        ));
    }
    Ok(format!(
        "{subject} of {source} expires on {date}, in {days} days"
    ))
}

/// `YYYY-MM-DD` (UTC) of a unix time (Howard Hinnant's civil-from-days).
fn civil_date(unix: i64) -> String {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Client config that accepts any certificate chain (see the module docs).
fn inspect_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyChain(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Skips chain and name validation; still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyChain(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(1_717_200_000), "2024-06-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(-86_400), "1969-12-31");
    }
}
