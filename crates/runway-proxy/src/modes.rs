//! Traffic modes: maintenance and read-only.
//!
//! The deploy engine switches them rarely; every request has to check them.
//! So the check costs one atomic load while no mode is on (the normal
//! case): a flag says whether any mode is on, and only then is the current
//! mode state, an immutable snapshot behind an `ArcSwapOption`, read. Both
//! are written by [`Modes::set_maintenance`] / [`Modes::set_read_only`]
//! under a writers' lock (so flag and snapshot cannot disagree), the
//! snapshot first: a request that starts after a setter returned sees the
//! new modes, on any connection, including existing keep-alive ones.
//!
//! Everything a refusal needs (both bodies, the `Retry-After` value, the
//! parsed allow list) is prepared when the mode is set; a refused request
//! only chooses between two shared buffers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, RETRY_AFTER, VARY};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::body::ProxyBody;
use crate::forward::local_response_with;
use crate::headers;

/// What the proxy answers while the service is in maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Shown to clients (HTML-escaped in the page, a string in the JSON
    /// answer). When blank, a generic sentence is used.
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up, at least 1) and as
    /// `retry_after` in the JSON answer.
    pub retry_after: Duration,
    /// Paths still proxied to the replicas: an exact path, or a prefix when
    /// the entry ends with `*` ("/health/*").
    ///
    /// Matched against the request path without its query. `"/health/*"`
    /// matches `/health/live` but not `/health` (list both when needed);
    /// a prefix match is refused when the path has a `.` or `..` segment
    /// (also percent-encoded), so it cannot lead out of the prefix.
    pub allow: Vec<String>,
}

/// What the proxy answers to writes while the service is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnly {
    /// Shown to clients, like [`Maintenance::message`].
    pub message: String,
    /// Sent as `Retry-After`, like [`Maintenance::retry_after`].
    pub retry_after: Duration,
}

pub use runway_wire::metrics::RefusedCounts;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Maintenance,
    ReadOnly,
}

impl Reason {
    /// The `error` field of the JSON answer and the metrics label.
    fn as_str(self) -> &'static str {
        match self {
            Reason::Maintenance => "maintenance",
            Reason::ReadOnly => "read_only",
        }
    }
}

/// The traffic modes of one proxy and the count of requests they refused.
#[derive(Default)]
pub(crate) struct Modes {
    /// Whether any mode is on; the only thing a request reads otherwise.
    on: AtomicBool,
    /// `None` while no mode is on.
    active: ArcSwapOption<Active>,
    /// Serialises the setters, so `on` always matches `active` once they return.
    writer: Mutex<()>,
    refused_maintenance: AtomicU64,
    refused_read_only: AtomicU64,
}

/// The modes in force (at least one of them).
#[derive(Default, Clone)]
struct Active {
    maintenance: Option<Arc<MaintenanceMode>>,
    read_only: Option<Arc<ReadOnlyMode>>,
}

struct MaintenanceMode {
    settings: Maintenance,
    allow: Vec<Allow>,
    refusal: Refusal,
}

struct ReadOnlyMode {
    settings: ReadOnly,
    refusal: Refusal,
}

/// One entry of [`Maintenance::allow`].
#[derive(Debug, PartialEq, Eq)]
enum Allow {
    Exact(String),
    Prefix(String),
}

impl Allow {
    fn parse(entry: &str) -> Allow {
        match entry.strip_suffix('*') {
            Some(prefix) => Allow::Prefix(prefix.to_owned()),
            None => Allow::Exact(entry.to_owned()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Allow::Exact(exact) => path == exact,
            Allow::Prefix(prefix) => path.starts_with(prefix.as_str()) && !has_dot_segment(path),
        }
    }
}

/// A prepared `503` answer.
struct Refusal {
    reason: Reason,
    retry_after: HeaderValue,
    json: Bytes,
    html: Bytes,
}

impl Refusal {
    fn new(reason: Reason, message: &str, retry_after: Duration) -> Refusal {
        let seconds = whole_seconds(retry_after);
        let message = if message.trim().is_empty() {
            match reason {
                Reason::Maintenance => "The service is down for maintenance.",
                Reason::ReadOnly => "The service accepts no changes at the moment.",
            }
        } else {
            message
        };
        #[derive(Serialize)]
        struct Json<'a> {
            error: &'a str,
            message: &'a str,
            retry_after: u64,
        }
        let json = serde_json::to_vec(&Json {
            error: reason.as_str(),
            message,
            retry_after: seconds,
        })
        .expect("a struct of strings and a number serialises");
        Refusal {
            reason,
            retry_after: HeaderValue::from(seconds),
            json: Bytes::from(json),
            html: Bytes::from(html_page(reason, message, seconds)),
        }
    }
}

impl Modes {
    pub(crate) fn set_maintenance(&self, maintenance: Option<Maintenance>) {
        let mode = maintenance.map(|settings| {
            Arc::new(MaintenanceMode {
                allow: settings
                    .allow
                    .iter()
                    .map(|entry| Allow::parse(entry))
                    .collect(),
                refusal: Refusal::new(Reason::Maintenance, &settings.message, settings.retry_after),
                settings,
            })
        });
        self.update(|active| active.maintenance = mode);
    }

    pub(crate) fn set_read_only(&self, read_only: Option<ReadOnly>) {
        let mode = read_only.map(|settings| {
            Arc::new(ReadOnlyMode {
                refusal: Refusal::new(Reason::ReadOnly, &settings.message, settings.retry_after),
                settings,
            })
        });
        self.update(|active| active.read_only = mode);
    }

    fn update(&self, change: impl FnOnce(&mut Active)) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = self.active.load().as_deref().cloned().unwrap_or_default();
        change(&mut next);
        let on = next.maintenance.is_some() || next.read_only.is_some();
        self.active.store(on.then(|| Arc::new(next)));
        self.on.store(on, Ordering::Release);
    }

    pub(crate) fn maintenance(&self) -> Option<Maintenance> {
        let active = self.active.load();
        let mode = active.as_ref()?.maintenance.as_ref()?;
        Some(mode.settings.clone())
    }

    pub(crate) fn read_only(&self) -> Option<ReadOnly> {
        let active = self.active.load();
        let mode = active.as_ref()?.read_only.as_ref()?;
        Some(mode.settings.clone())
    }

    pub(crate) fn refused(&self) -> RefusedCounts {
        RefusedCounts {
            maintenance: self.refused_maintenance.load(Ordering::Relaxed),
            read_only: self.refused_read_only.load(Ordering::Relaxed),
        }
    }

    /// The proxy's own answer when a mode refuses `req`; `None` to proxy it.
    /// One atomic load while no mode is on.
    #[inline]
    pub(crate) fn refuse<B>(&self, req: &mut Request<B>) -> Option<Response<ProxyBody>> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        self.refuse_slow(req)
    }

    #[cold]
    fn refuse_slow<B>(&self, req: &mut Request<B>) -> Option<Response<ProxyBody>> {
        let mut headers = std::mem::take(req.headers_mut());
        let answer = self.refuse_request(req.method(), req.uri().path(), &mut headers);
        *req.headers_mut() = headers;
        answer
    }

    /// The proxy's own answer when a mode now refuses a request of `method` to `path`; `None`
    /// to proxy it. For a request admitted before a mode came on that then finds no replica
    /// (the old release was retired behind the page while its body arrived): it gets the
    /// page too, not "no healthy replica".
    #[cold]
    pub(crate) fn refuse_request(
        &self,
        method: &Method,
        path: &str,
        headers: &mut HeaderMap,
    ) -> Option<Response<ProxyBody>> {
        let active = self.active.load();
        let active = active.as_deref()?;
        // Maintenance first: a request both modes refuse gets its answer.
        let refusal = match &active.maintenance {
            Some(mode) if !mode.allow.iter().any(|rule| rule.matches(path)) => &mode.refusal,
            _ => match &active.read_only {
                Some(mode) if !is_read(method) => &mode.refusal,
                _ => return None,
            },
        };
        let counter = match refusal.reason {
            Reason::Maintenance => &self.refused_maintenance,
            Reason::ReadOnly => &self.refused_read_only,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(answer(refusal, headers))
    }
}

/// Methods read-only mode lets through.
fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `503` for a refused request with these headers: JSON or HTML by its
/// `Accept`, with its `X-Request-Id` (generated when absent) like every
/// answer of the proxy.
fn answer(refusal: &Refusal, request_headers: &mut HeaderMap) -> Response<ProxyBody> {
    let (content_type, body) = if prefers_json(request_headers) {
        (
            HeaderValue::from_static("application/json"),
            refusal.json.clone(),
        )
    } else {
        (
            HeaderValue::from_static("text/html; charset=utf-8"),
            refusal.html.clone(),
        )
    };
    let request_id = headers::ensure_request_id(request_headers);
    let mut response = local_response_with(
        StatusCode::SERVICE_UNAVAILABLE,
        content_type,
        body,
        request_id,
    );
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, refusal.retry_after.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// Whether the `Accept` header names `application/json` or a `+json` type
/// (with a positive weight) and does not prefer `text/html` to it: a higher
/// weight wins, an equal one goes to the type listed first. Without `Accept`,
/// or with only wildcards, the answer is HTML.
fn prefers_json(headers: &HeaderMap) -> bool {
    // (weight, position) of the best-weighted range of each kind.
    let mut json: Option<(f32, usize)> = None;
    let mut html: Option<(f32, usize)> = None;
    let ranges = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for (position, range) in ranges.enumerate() {
        let mut parts = range.split(';');
        let Some((kind, subtype)) = parts.next().and_then(|media| media.trim().split_once('/'))
        else {
            continue;
        };
        let (kind, subtype) = (kind.trim(), subtype.trim());
        let weight = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| {
                value
                    .trim()
                    .parse::<f32>()
                    .map_or(1.0, |q| q.clamp(0.0, 1.0))
            });
        let slot = if (kind.eq_ignore_ascii_case("application")
            && subtype.eq_ignore_ascii_case("json"))
            || ends_with_ignore_case(subtype, "+json")
        {
            &mut json
        } else if kind.eq_ignore_ascii_case("text") && subtype.eq_ignore_ascii_case("html") {
            &mut html
        } else {
            continue;
        };
        if slot.is_none_or(|(best, _)| weight > best) {
            *slot = Some((weight, position));
        }
    }
    match (json, html) {
        (Some((weight, _)), _) if weight <= 0.0 => false,
        (Some(_), None) => true,
        (Some((json_weight, json_position)), Some((html_weight, html_position))) => {
            json_weight > html_weight
                || (json_weight == html_weight && json_position < html_position)
        }
        (None, _) => false,
    }
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Whether a path segment is `.` or `..`, also when percent-encoded (`%2e`).
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let mut rest = segment.as_bytes();
        let mut dots = 0;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3 && rest[0] == b'%' && rest[1..3].eq_ignore_ascii_case(b"2e") {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

/// `Retry-After` seconds for `duration`: rounded up, at least 1.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    seconds.max(1)
}

/// "in 1 second", "in 90 seconds", "in about 5 minutes".
fn human_delay(seconds: u64) -> String {
    match seconds {
        1 => "1 second".to_owned(),
        0..120 => format!("{seconds} seconds"),
        _ => format!("about {} minutes", seconds.div_ceil(60)),
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A small self-contained page (no external resources) for browsers.
fn html_page(reason: Reason, message: &str, seconds: u64) -> String {
    let heading = match reason {
        Reason::Maintenance => "Down for maintenance",
        Reason::ReadOnly => "Temporarily read-only",
    };
    let message = escape_html(message);
    let delay = human_delay(seconds);
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{heading}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;\
         padding:0 1.5rem;line-height:1.5;color:#222}}h1{{font-size:1.5rem}}\
         .retry{{color:#666}}</style>\n\
         </head>\n\
         <body>\n\
         <h1>{heading}</h1>\n\
         <p>{message}</p>\n\
         <p class=\"retry\">Please try again in {delay}.</p>\n\
         </body>\n\
         </html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_neutralises_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_html("a &amp; b"), "a &amp;amp; b");
        assert_eq!(escape_html("plain, é"), "plain, é");
        let page = html_page(Reason::Maintenance, "<script>x</script> & more", 5);
        assert!(page.contains("<p>&lt;script&gt;x&lt;/script&gt; &amp; more</p>"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(300)), 300);
        assert_eq!(whole_seconds(Duration::MAX), u64::MAX);
        assert_eq!(human_delay(1), "1 second");
        assert_eq!(human_delay(90), "90 seconds");
        assert_eq!(human_delay(300), "about 5 minutes");
    }

    fn accept(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        prefers_json(&headers)
    }

    #[test]
    fn json_only_when_named_and_not_beaten_by_html() {
        assert!(accept(&["application/json"]));
        assert!(accept(&["Application/JSON; charset=utf-8"]));
        assert!(accept(&["application/problem+json"]));
        assert!(accept(&["application/json, text/plain, */*"]));
        assert!(accept(&["text/html;q=0.5, application/json"]));
        assert!(accept(&["text/plain", "application/json"]));
        assert!(accept(&["application/json, text/html"]));

        assert!(!accept(&[]));
        assert!(!accept(&["*/*"]));
        assert!(!accept(&["text/html"]));
        assert!(!accept(&[
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ]));
        assert!(!accept(&["text/html, application/json"]));
        assert!(!accept(&["text/html, application/json;q=0.9"]));
        assert!(!accept(&["application/json;q=0"]));
        assert!(!accept(&["application/jsonx, text/json-ish"]));
    }

    #[test]
    fn allow_entries_are_exact_or_prefix_without_dot_segments() {
        let exact = Allow::parse("/healthz");
        assert_eq!(exact, Allow::Exact("/healthz".to_owned()));
        assert!(exact.matches("/healthz"));
        assert!(!exact.matches("/healthz/"));
        assert!(!exact.matches("/healthzz"));

        let prefix = Allow::parse("/health/*");
        assert_eq!(prefix, Allow::Prefix("/health/".to_owned()));
        assert!(prefix.matches("/health/"));
        assert!(prefix.matches("/health/live"));
        assert!(prefix.matches("/health/a/b.json"));
        assert!(prefix.matches("/health/...x"));
        assert!(!prefix.matches("/health"));
        assert!(!prefix.matches("/healthy"));
        assert!(!prefix.matches("/health/../admin"));
        assert!(!prefix.matches("/health/%2e%2E/admin"));
        assert!(!prefix.matches("/health/.%2e"));
        assert!(!prefix.matches("/health/./x"));

        assert!(Allow::parse("*").matches("/anything"));
    }

    #[test]
    fn setters_and_getters_round_trip() {
        let modes = Modes::default();
        assert_eq!((modes.maintenance(), modes.read_only()), (None, None));
        let maintenance = Maintenance {
            message: "m".into(),
            retry_after: Duration::from_secs(3),
            allow: vec!["/a".into()],
        };
        let read_only = ReadOnly {
            message: "r".into(),
            retry_after: Duration::from_secs(4),
        };
        modes.set_maintenance(Some(maintenance.clone()));
        modes.set_read_only(Some(read_only.clone()));
        assert_eq!(modes.maintenance(), Some(maintenance));
        assert_eq!(modes.read_only(), Some(read_only.clone()));
        assert!(modes.on.load(Ordering::Relaxed));
        modes.set_maintenance(None);
        assert_eq!(modes.read_only(), Some(read_only));
        assert!(modes.on.load(Ordering::Relaxed));
        modes.set_read_only(None);
        assert!(!modes.on.load(Ordering::Relaxed));
        assert!(modes.active.load().is_none());
    }

    #[test]
    fn blank_message_gets_a_generic_one() {
        let refusal = Refusal::new(Reason::ReadOnly, " ", Duration::from_secs(2));
        let json: serde_json::Value = serde_json::from_slice(&refusal.json).unwrap();
        assert_eq!(json["error"], "read_only");
        assert_eq!(json["retry_after"], 2);
        assert!(!json["message"].as_str().unwrap().is_empty());
        assert_eq!(refusal.retry_after, "2");
    }
}
