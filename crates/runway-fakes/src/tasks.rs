//! One-off tasks that run nothing: each answers as scripted (by default, success) and is
//! recorded with its argv and environment.

use std::collections::BTreeMap;
use std::sync::Mutex;

use runway_engine::router::BoxFuture;
use runway_engine::tasks::{Outcome, Task, TaskRunner};

/// A task as the engine asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRun {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The version of the release it ran with.
    pub version: String,
}

#[derive(Default)]
pub struct FakeTasks {
    /// By program (argv[0]): how it ends, its detail and its output.
    answers: Mutex<BTreeMap<String, (Outcome, String, String)>>,
    /// By program: how long (virtual time) it runs before it answers.
    durations: Mutex<BTreeMap<String, std::time::Duration>>,
    runs: Mutex<Vec<TaskRun>>,
}

impl FakeTasks {
    /// From now on, tasks whose program is `program` end so.
    pub fn answer(&self, program: &str, outcome: Outcome, detail: &str, output: &str) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                program.to_string(),
                (outcome, detail.to_string(), output.to_string()),
            );
    }

    /// From now on, tasks whose program is `program` take `duration` (of the paused clock).
    pub fn takes(&self, program: &str, duration: std::time::Duration) {
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program.to_string(), duration);
    }

    /// Every task run, in order.
    pub fn runs(&self) -> Vec<TaskRun> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The programs of every task run, in order.
    pub fn programs(&self) -> Vec<String> {
        self.runs()
            .into_iter()
            .filter_map(|r| r.argv.first().cloned())
            .collect()
    }
}

impl TaskRunner for FakeTasks {
    fn run<'a>(&'a self, task: Task<'a>) -> BoxFuture<'a, (Outcome, String, String)> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TaskRun {
                argv: task.argv.to_vec(),
                env: task.env.clone(),
                version: task.release.version.clone(),
            });
        let program = task.argv.first().cloned().unwrap_or_default();
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&program)
            .cloned()
            .unwrap_or((Outcome::Ok, "exited with status 0".into(), String::new()));
        let duration = self
            .durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&program)
            .copied();
        Box::pin(async move {
            if let Some(duration) = duration {
                tokio::time::sleep(duration).await;
            }
            answer
        })
    }
}
