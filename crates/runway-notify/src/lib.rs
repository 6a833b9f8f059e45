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
use std::path::PathBuf;
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

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// One notice for one target.
struct Job {
    target: NotifySpec,
    notice: Notice,
    /// Where `send_now` waits for the outcome.
    done: Option<tokio::sync::oneshot::Sender<Delivery>>,
}

/// Sends notices to webhooks; see the crate's docs.
pub struct Webhooks {
    inner: Arc<Inner>,
    /// A queue per target (by name and URL), its worker started on first use.
    queues: Mutex<HashMap<(String, String), mpsc::Sender<Job>>>,
}

struct Inner {
    records: Arc<dyn Records>,
    client: HttpClient,
    /// Where `secret:NAME` URLs are read.
    secrets_dir: Option<PathBuf>,
}

impl Webhooks {
    pub fn new(records: Arc<dyn Records>, secrets_dir: Option<PathBuf>) -> Webhooks {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .build();
        Webhooks {
            inner: Arc::new(Inner {
                records,
                client: Client::builder(TokioExecutor::new()).build(https),
                secrets_dir,
            }),
            queues: Mutex::new(HashMap::new()),
        }
    }

    fn queue(&self, target: &NotifySpec, job: Job) {
        let key = (target.name.clone(), target.url.clone());
        let sender = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues
                .entry(key)
                .or_insert_with(|| {
                    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        while let Some(job) = rx.recv().await {
                            let delivery = inner.deliver(&job.target, job.notice).await;
                            if let Some(done) = job.done {
                                let _ = done.send(delivery);
                            }
                        }
                    });
                    tx
                })
                .clone()
        };
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            sender.try_send(job)
        {
            let delivery = self.inner.record(
                &job.target,
                &job.notice,
                0,
                None,
                Some(format!(
                    "dropped: {QUEUE} notices already wait for this target"
                )),
            );
            if let Some(done) = job.done {
                let _ = done.send(delivery);
            }
        }
    }
}

impl Notifier for Webhooks {
    fn notify(&self, targets: &[NotifySpec], notice: Notice) {
        for target in targets.iter().filter(|t| t.wants(notice.kind)) {
            self.queue(
                target,
                Job {
                    target: target.clone(),
                    notice: notice.clone(),
                    done: None,
                },
            );
        }
    }

    fn send_now<'a>(
        &'a self,
        targets: &'a [NotifySpec],
        notice: Notice,
    ) -> BoxFuture<'a, Vec<Delivery>> {
        let waits: Vec<_> = targets
            .iter()
            .filter(|t| t.wants(notice.kind))
            .map(|target| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.queue(
                    target,
                    Job {
                        target: target.clone(),
                        notice: notice.clone(),
                        done: Some(tx),
                    },
                );
                rx
            })
            .collect();
        Box::pin(async move {
            let mut deliveries = Vec::new();
            for wait in waits {
                if let Ok(d) = wait.await {
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
        let url = match self.url_of(target) {
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

    fn url_of(&self, target: &NotifySpec) -> Result<hyper::Uri, String> {
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let url =
            runway_checks::run::resolve_reference(&target.url, &env, self.secrets_dir.as_deref())
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
    let text = render(target.template(notice.kind), notice);
    let body = match target.kind {
        NotifyFormat::Slack => serde_json::json!({ "text": text }),
        NotifyFormat::Webhook => serde_json::json!({
            "event": notice.kind,
            "text": text,
            "notice": notice,
            "audit_head": notice.audit_head,
        }),
    };
    Bytes::from(body.to_string())
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
