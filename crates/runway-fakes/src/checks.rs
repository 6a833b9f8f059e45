//! Checks and Prometheus queries that reach nothing: each check passes unless a test says it
//! fails; each query answers from a table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runway_checks::{CheckResult, CheckSpec, CheckStatus, Context};
use runway_engine::checks::CheckRunner;
use runway_engine::measure::{QuerySource, QuerySources};
use runway_engine::router::BoxFuture;

#[derive(Default)]
pub struct FakeChecks {
    /// By check name: why it fails.
    failing: Mutex<BTreeMap<String, String>>,
    /// Every check run: (name, the replica addresses it was given).
    runs: Mutex<Vec<(String, Vec<String>)>>,
}

impl FakeChecks {
    /// From now on, check `name` fails saying `detail` (`None`: passes again).
    pub fn fail(&self, name: &str, detail: Option<&str>) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match detail {
            Some(d) => failing.insert(name.to_string(), d.to_string()),
            None => failing.remove(name),
        };
    }

    /// The names of every check run, in order.
    pub fn ran(&self) -> Vec<String> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter().map(|(name, _)| name.clone()).collect()
    }
}

impl CheckRunner for FakeChecks {
    fn run<'a>(
        &'a self,
        checks: &'a [CheckSpec],
        context: &'a Context,
    ) -> BoxFuture<'a, Vec<CheckResult>> {
        let failing = self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let results = checks
            .iter()
            .map(|check| {
                self.runs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((check.name.clone(), context.replica_addrs.clone()));
                let failure = failing.get(&check.name);
                CheckResult {
                    name: check.name.clone(),
                    kind: check.kind.name().into(),
                    severity: check.severity,
                    status: if failure.is_some() {
                        CheckStatus::Fail
                    } else {
                        CheckStatus::Pass
                    },
                    duration: Duration::ZERO,
                    detail: failure.cloned().unwrap_or_else(|| "ok".into()),
                    attempts: 1,
                    target: None,
                }
            })
            .collect();
        Box::pin(async move { results })
    }
}

/// A query's answer: a value, no data, or the source's error.
type Answer = Result<Option<f64>, String>;

/// Answers Prometheus queries from a table, whatever the server's URL.
#[derive(Default)]
pub struct FakeQueries {
    answers: Arc<Mutex<BTreeMap<String, Answer>>>,
}

impl FakeQueries {
    /// `query` (with its placeholders filled in) answers `value`.
    pub fn answer(&self, query: &str, value: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(query.to_string(), value);
    }
}

impl QuerySources for FakeQueries {
    fn prometheus(&self, _base_url: &str) -> Arc<dyn QuerySource> {
        Arc::new(Table(self.answers.clone()))
    }
}

struct Table(Arc<Mutex<BTreeMap<String, Answer>>>);

impl QuerySource for Table {
    fn query<'a>(&'a self, query: &'a str) -> BoxFuture<'a, Result<Option<f64>, String>> {
        let answer = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(query)
            .cloned()
            .unwrap_or_else(|| Err(format!("no data for {query}")));
        Box::pin(async move { answer })
    }
}
