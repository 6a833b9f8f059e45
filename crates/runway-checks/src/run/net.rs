//! Shared network plumbing: resolving and connecting with errors people can act on.
//!
//! `io::Error`'s own text ("Connection refused (os error 111)") does not say *what*
//! refused; check details must, so every connection error names the address.

use std::error::Error;
use std::io;

use tokio::net::TcpStream;

/// Splits `host:port` (`[v6]:port` too) into the host (without brackets) and port.
pub(super) fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} needs a port: host:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{address:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{address:?} has no host"));
    }
    Ok((host, port))
}

/// Resolves `host` and connects to the first address that accepts.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {}", io_reason(&e)))?
        .collect();
    let mut last = format!("cannot resolve {host}: no addresses");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// A short reason for an I/O error: "connection refused", "no such file or directory".
pub(super) fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => tidy(&e.to_string()),
    }
}

#[cfg(feature = "run")]
/// A short reason for a failed TLS handshake (rustls errors arrive wrapped in io::Error).
pub(super) fn tls_reason(e: &io::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return io_reason(e);
    };
    match tls {
        E::InvalidCertificate(C::UnknownIssuer) => {
            "certificate not trusted: unknown issuer (self-signed or a private CA \
             missing from the system trust store)"
                .into()
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate expired".into()
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "certificate not valid yet".into()
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "certificate not valid for this host name".into()
        }
        // The context variants carry byte dumps; the variant name says enough.
        E::InvalidCertificate(other) => {
            let name = format!("{other:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or_default();
            format!("certificate not trusted: {name}")
        }
        E::InvalidMessage(_) => {
            "the server did not answer with TLS (plain text on a TLS port?)".into()
        }
        other => tidy(&other.to_string()),
    }
}

/// Drops " (os error N)" and resolver boilerplate, and lower-cases the first letter so
/// the reason reads well after a colon.
fn tidy(text: &str) -> String {
    let text = text.split(" (os error").next().unwrap_or(text);
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `host:port` of a URL (no userinfo), for naming what failed; None if not a URL.
pub(super) fn url_target(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then_some(host)
}

/// `" at host:port"` for a URL, or nothing.
pub(super) fn at_target(url: &str) -> String {
    url_target(url).map_or(String::new(), |t| format!(" at {t}"))
}

/// An error with its sources, outermost first, joined by ": " (repeats dropped).
pub(super) fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = match err.downcast_ref::<io::Error>() {
            Some(io) => io_reason(io),
            None => tidy(&err.to_string()),
        };
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("db:5432"), Ok(("db", 5432)));
        assert_eq!(split_host_port("[::1]:443"), Ok(("::1", 443)));
        assert!(split_host_port("db").is_err());
        assert!(split_host_port("db:x").is_err());
        assert!(split_host_port(":80").is_err());
    }

    #[test]
    fn reasons() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(io_reason(&e), "no space left on device");
        let outer = io::Error::other(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(error_chain(&outer).contains("connection reset"));
        assert_eq!(
            tidy("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(
            tidy("failed to lookup address information: Name or service not known"),
            "name or service not known"
        );
        assert_eq!(url_target("postgres://u:p@db:5432/x"), Some("db:5432"));
        assert_eq!(url_target("redis://r"), Some("r"));
        assert_eq!(url_target("host=db user=x"), None);
    }
}
