//! A steady HTTP load that counts every outcome: what the demo and the end-to-end tests use to
//! prove that a deployment cost no request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// 2xx answers.
    pub ok: u64,
    /// Anything else: an error status, a refused or reset connection, a timeout.
    pub failed: u64,
    /// 2xx answers by the `x-version` header of the replica that answered.
    pub versions: BTreeMap<String, u64>,
    /// The first few failures, to say what went wrong.
    pub errors: Vec<String>,
    /// Every response, when recording: (seconds since the load started, version, status; 0
    /// for no response).
    pub timeline: Vec<(f64, String, u16)>,
}

impl Seen {
    pub fn by_version(&self) -> String {
        self.versions
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn merge(&mut self, other: Seen) {
        self.ok += other.ok;
        self.failed += other.failed;
        for (v, n) in other.versions {
            *self.versions.entry(v).or_default() += n;
        }
        self.errors.extend(other.errors);
        self.errors.truncate(10);
        self.timeline.extend(other.timeline);
    }
}

/// `workers` keep-alive connections, together sending about `rps` requests per second until
/// `stop`; each request has a 10 s timeout.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &str, workers: u64, rps: u64) -> Load {
        Self::start_recording(addr, path, workers, rps, false)
    }

    /// Like `start`; with `record`, every response goes into `Seen::timeline`.
    pub fn start_recording(
        addr: SocketAddr,
        path: &str,
        workers: u64,
        rps: u64,
        record: bool,
    ) -> Load {
        let begun = std::time::Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://{addr}{path}").parse().expect("a valid URI");
        let period = Duration::from_micros(1_000_000 * workers / rps.max(1));
        let workers = (0..workers)
            .map(|_| {
                let (stop, client, uri) = (stop.clone(), client.clone(), uri.clone());
                tokio::spawn(async move {
                    let mut seen = Seen::default();
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
                            let resp = client.get(uri.clone()).await.map_err(|e| e.to_string())?;
                            let status = resp.status();
                            let version = resp
                                .headers()
                                .get("x-version")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("?")
                                .to_string();
                            resp.into_body()
                                .collect()
                                .await
                                .map_err(|e| e.to_string())?;
                            Ok::<_, String>((status, version))
                        })
                        .await;
                        if record {
                            let at = begun.elapsed().as_secs_f64();
                            seen.timeline.push(match &outcome {
                                Ok(Ok((status, version))) => (at, version.clone(), status.as_u16()),
                                _ => (at, String::new(), 0),
                            });
                        }
                        match outcome {
                            Ok(Ok((status, version))) if status.is_success() => {
                                seen.ok += 1;
                                *seen.versions.entry(version).or_default() += 1;
                            }
                            other => {
                                seen.failed += 1;
                                if seen.errors.len() < 10 {
                                    seen.errors.push(match other {
                                        Ok(Ok((status, v))) => format!("{status} from {v}"),
                                        Ok(Err(e)) => e,
                                        Err(_) => "timed out".into(),
                                    });
                                }
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        Load { stop, workers }
    }

    pub async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Seen::default();
        for w in self.workers {
            if let Ok(seen) = w.await {
                total.merge(seen);
            }
        }
        total
    }
}
