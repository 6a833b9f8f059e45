//! runway's [`Notifier`]: each `[[notify]]` target a Slack-compatible incoming webhook or a
//! JSON webhook, reached over HTTP(S).
//!
//! Why it is shaped so:
//! - **Never in a deployment's way.** [`Webhooks::notify`] only queues. Each target has its own
//!   queue and worker, so a target that fails or hangs delays only its own later notices, never
//!   another target's and never the engine. A full queue drops the notice and records that.
//! - **Retried, then recorded.** An attempt that fails (no connection, a timeout, an answer
//!   other than 2xx) is tried again after `backoff`, doubled each time, `retries` times. What
//!   became of each notice at each target is one [`Delivery`] row (`runway notify log`).
//! - **No secret leaves.** A target's URL is usually a credential (`env:NAME`,
//!   `secret:NAME`); it is resolved when sending and never written to a log, a delivery or an
//!   error. The notice carries the audit trail's head, so a trail cut short after a
//!   notification shows against the head the channel received.

mod render;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use runway_engine::notify::Notifier;
use runway_engine::records::Records;
use runway_engine::router::BoxFuture;
use runway_wire::notice::{Delivery, Notice, NotifyFormat, NotifySpec};
use tokio::sync::mpsc;

pub use render::render;

/// Notices waiting for one target; more are dropped (and recorded as failed).
const QUEUE: usize = 256;

/// A target's worker that had nothing to send for this long ends (a new notice starts
/// another): targets that left the config leave no task behind.
const IDLE: Duration = Duration::from_secs(300);

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// One notice for one target.
struct Job {
    target: NotifySpec,
    notice: Notice,
}

/// A queue per (service, target name, URL reference), with its worker's number, to tell a
/// replaced worker from the current one. Two services' targets never share a queue.
type Queues = HashMap<(String, String, String), (u64, mpsc::Sender<Job>)>;

/// Sends notices to webhooks; see the crate's docs.
pub struct Webhooks {
    inner: Arc<Inner>,
    /// A queue per service and target, its worker started on first use.
    queues: Arc<Mutex<Queues>>,
    workers: std::sync::atomic::AtomicU64,
}

struct Inner {
    records: Arc<dyn Records>,
    client: HttpClient,
    /// Where `secret:NAME` URLs are read: each service's current secrets.
    secrets: Option<runway_engine::secrets::SecretsOf>,
}

impl Webhooks {
    pub fn new(
        records: Arc<dyn Records>,
        secrets: Option<runway_engine::secrets::SecretsOf>,
    ) -> Webhooks {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .build();
        Webhooks {
            inner: Arc::new(Inner {
                records,
                client: Client::builder(TokioExecutor::new()).build(https),
                secrets,
            }),
            queues: Arc::new(Mutex::new(HashMap::new())),
            workers: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The sender of `target`'s queue for `service`, its worker started when it has none (or
    /// it ended).
    fn sender(&self, service: &str, target: &NotifySpec) -> mpsc::Sender<Job> {
        let key = (service.to_string(), target.name.clone(), target.url.clone());
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = queues.get(&key).filter(|(_, tx)| !tx.is_closed()) {
            return tx.clone();
        }
        let number = self
            .workers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let inner = self.inner.clone();
        let queues_of_worker = self.queues.clone();
        let worker_key = key.clone();
        tokio::spawn(async move {
            loop {
                match tokio::time::timeout(IDLE, rx.recv()).await {
                    Ok(Some(job)) => {
                        inner.deliver(&job.target, job.notice).await;
                    }
                    Ok(None) => return,
                    Err(_) => {
                        // Idle: leave, unless a notice came in meanwhile (then go on).
                        let leave = {
                            let mut queues =
                                queues_of_worker.lock().unwrap_or_else(|e| e.into_inner());
                            let leave = rx.is_empty();
                            if leave && queues.get(&worker_key).is_some_and(|(n, _)| *n == number) {
                                queues.remove(&worker_key);
                            }
                            leave
                        };
                        if !leave {
                            continue;
                        }
                        // A sender that found this queue before it left the map gets
                        // `Closed` from now on (and starts a new worker); one that got in
                        // just before is delivered here.
                        rx.close();
                        while let Ok(job) = rx.try_recv() {
                            inner.deliver(&job.target, job.notice).await;
                        }
                        return;
                    }
                }
            }
        });
        queues.insert(key, (number, tx.clone()));
        tx
    }

    fn queue(&self, target: &NotifySpec, notice: Notice) {
        let service = notice.service.clone();
        let job = Job {
            target: target.clone(),
            notice,
        };
        let job = match self.sender(&service, target).try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => job,
            // The worker ended between finding it and sending: a new one takes it.
            Err(mpsc::error::TrySendError::Closed(job)) => {
                match self.sender(&service, target).try_send(job) {
                    Ok(()) => return,
                    Err(
                        mpsc::error::TrySendError::Full(job)
                        | mpsc::error::TrySendError::Closed(job),
                    ) => job,
                }
            }
        };
        self.inner.record(
            &job.target,
            &job.notice,
            0,
            None,
            Some(format!(
                "dropped: {QUEUE} notices already wait for this target"
            )),
        );
    }
}

impl Notifier for Webhooks {
    fn notify(&self, targets: &[NotifySpec], notice: Notice) {
        for target in targets.iter().filter(|t| t.wants(notice.kind)) {
            self.queue(target, notice.clone());
        }
    }

    /// A test goes out at once, beside the queues: a target's backlog (a hanging endpoint's
    /// retries) must not make `runway notify test` wait for it.
    fn send_now<'a>(
        &'a self,
        targets: &'a [NotifySpec],
        notice: Notice,
    ) -> BoxFuture<'a, Vec<Delivery>> {
        let sends: Vec<_> = targets
            .iter()
            .filter(|t| t.wants(notice.kind))
            .map(|target| {
                let inner = self.inner.clone();
                let (target, notice) = (target.clone(), notice.clone());
                tokio::spawn(async move { inner.deliver(&target, notice).await })
            })
            .collect();
        Box::pin(async move {
            let mut deliveries = Vec::new();
            for send in sends {
                if let Ok(d) = send.await {
                    deliveries.push(d);
                }
            }
            deliveries
        })
    }
}

impl Inner {
    /// Every attempt at one target, then the record of how it ended.
    async fn deliver(&self, target: &NotifySpec, mut notice: Notice) -> Delivery {
        notice.audit_head = self.records.audit_head().ok().flatten();
        let url = match self.url_of(&notice.service, target) {
            Ok(url) => url,
            Err(e) => return self.record(target, &notice, 0, None, Some(e)),
        };
        let body = payload(target, &notice);
        let attempts = target.retries + 1;
        let mut backoff = target.backoff.0;
        let mut last = (None, None);
        for attempt in 1..=attempts {
            match self.attempt(&url, &body, target.timeout.0).await {
                Ok(status) if (200..300).contains(&status) => {
                    return self.record(target, &notice, attempt, Some(status), None);
                }
                Ok(status) => last = (Some(status), Some(format!("answered {status}"))),
                Err(e) => last = (None, Some(e)),
            }
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        self.record(target, &notice, attempts, last.0, last.1)
    }

    /// One POST, answered within `timeout`: its status, or why none came (never the URL).
    async fn attempt(
        &self,
        url: &hyper::Uri,
        body: &Bytes,
        timeout: Duration,
    ) -> Result<u16, String> {
        let request = hyper::Request::post(url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("runway/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body.clone()))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text = format!("{text}: {s}");
                    source = s.source();
                }
                text
            })?;
            let status = response.status().as_u16();
            // Read the answer so the connection can be reused; its text is not kept (a
            // misbehaving endpoint could echo the URL).
            let _ = response.into_body().collect().await;
            Ok::<u16, String>(status)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {}",
                runway_wire_duration(timeout)
            )),
        }
    }

    fn url_of(&self, service: &str, target: &NotifySpec) -> Result<hyper::Uri, String> {
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let secrets = self
            .secrets
            .as_ref()
            .map(|of| of.current(service))
            .unwrap_or_default();
        let url = runway_checks::run::resolve_reference(&target.url, &env, secrets.source())
            .map_err(|e| format!("cannot resolve the url: {e}"))?
            .unwrap_or_else(|| target.url.clone());
        let uri: hyper::Uri = url
            .trim()
            .parse()
            .map_err(|_| "the url does not parse as an http(s) URL".to_string())?;
        match uri.scheme_str() {
            Some("http" | "https") if uri.host().is_some() => Ok(uri),
            _ => Err("the url is not an http:// or https:// URL".to_string()),
        }
    }

    fn record(
        &self,
        target: &NotifySpec,
        notice: &Notice,
        attempts: u32,
        status: Option<u16>,
        error: Option<String>,
    ) -> Delivery {
        let delivery = Delivery {
            id: 0,
            at: runway_wire::record::now(),
            target: target.name.clone(),
            notice: notice.kind,
            service: notice.service.clone(),
            deployment: notice.deployment,
            attempts,
            outcome: if error.is_none() {
                "delivered"
            } else {
                "failed"
            }
            .to_string(),
            status,
            error,
        };
        match &delivery.error {
            None => {
                tracing::info!(target = %target.name, notice = notice.kind.as_str(), attempts, "notice delivered")
            }
            Some(e) => {
                tracing::warn!(target = %target.name, notice = notice.kind.as_str(), attempts, "notice not delivered: {e}")
            }
        }
        if let Err(e) = self.records.record_delivery(&delivery) {
            tracing::error!("cannot record a notice's delivery: {e:#}");
        }
        delivery
    }
}

/// What a target receives: Slack's `{"text"}`, or the whole notice with its text.
fn payload(target: &NotifySpec, notice: &Notice) -> Bytes {
    let template = target.template(notice.kind);
    let mut text = render(template, notice);
    // The audit trail's head travels with every notice, so that the channel keeps what the
    // trail was then (`runway audit verify --head`); a template may place it itself.
    if let (NotifyFormat::Slack, Some(head), false) = (
        target.kind,
        &notice.audit_head,
        template.contains("{audit_head}"),
    ) {
        text.push_str(&format!("\n(audit trail head: {head})"));
    }
    let body = match target.kind {
        // Slack reads `<...>` as links and mentions (`<!channel>`): a reason or a name that
        // came from a user or a hook's output is shown, never obeyed.
        NotifyFormat::Slack => serde_json::json!({ "text": slack_escape(&text) }),
        NotifyFormat::Webhook => serde_json::json!({
            "event": notice.kind,
            "text": text,
            "notice": notice,
            "audit_head": notice.audit_head,
        }),
    };
    Bytes::from(body.to_string())
}

/// Slack's escaping of message text: `&`, `<` and `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn runway_wire_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// TLS with the system's trusted roots (none found: https:// targets fail, each delivery
/// saying why, and http:// ones still work).
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!("no trusted CA certificates in the system store: https:// webhooks will fail (install ca-certificates)");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
