//! The clean, validated model of a service: what the rest of runway codes against.
//!
//! These types carry no positions and no "maybe" fields: defaults are filled in by the
//! time a [`Spec`] exists. They are plain serde types because runway stores a spec as
//! JSON (in its state database) and sends it over HTTP; that JSON uses the same key
//! names as `runway.toml`, durations as their canonical strings (`"1m30s"`) and the
//! listen address as `"ip:port"`, and it round-trips exactly.
//!
//! A spec read from JSON has not been through the TOML reader, so call
//! [`Spec::validate`] on it; it applies the same rules (see `rules.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::duration::Dur;
use crate::rules::{self, Problem};

/// A whole `runway.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `[service]`: what the service is called and where its traffic arrives.
    pub service: ServiceSpec,
    /// `[run]`: how to start one replica on the local machine.
    pub run: RunSpec,
    /// `[health]`: how runway decides a replica is ready.
    #[serde(default)]
    pub health: HealthSpec,
    /// `[strategy]`: how a new release replaces the old one.
    #[serde(default)]
    pub strategy: StrategySpec,
}

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Matches `[a-z0-9][a-z0-9-_.]*`, at most 63 characters.
    pub name: String,
    /// Where runway's built-in proxy accepts the service's traffic.
    pub listen: SocketAddr,
}

/// `[run]`: the embedded default platform, local supervised processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The argv of one replica; non-empty, and the program (first element) is non-empty.
    /// `{port}` and `{version}` are placeholders filled in per replica by the runner.
    pub command: Vec<String>,
    /// How many replicas to run; at least 1. Defaults to 1.
    #[serde(default = "RunSpec::default_replicas")]
    pub replicas: u32,
    /// Extra environment variables; keys match `[A-Za-z_][A-Za-z0-9_]*`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; a relative path is relative to the directory of `runway.toml`
    /// (resolving it is the caller's job). `None` means that directory itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// How long to wait after SIGTERM before SIGKILL. Defaults to 10s.
    #[serde(default = "RunSpec::default_stop_timeout")]
    pub stop_timeout: Dur,
    /// How long to wait for in-flight requests to finish before SIGTERM. Defaults to 30s.
    #[serde(default = "RunSpec::default_drain_timeout")]
    pub drain_timeout: Dur,
}

impl RunSpec {
    /// Replicas when `replicas` is not given.
    pub const DEFAULT_REPLICAS: u32 = 1;
    /// `stop_timeout` when not given.
    pub const DEFAULT_STOP_TIMEOUT: Dur = Dur::from_secs(10);
    /// `drain_timeout` when not given.
    pub const DEFAULT_DRAIN_TIMEOUT: Dur = Dur::from_secs(30);

    fn default_replicas() -> u32 {
        Self::DEFAULT_REPLICAS
    }
    fn default_stop_timeout() -> Dur {
        Self::DEFAULT_STOP_TIMEOUT
    }
    fn default_drain_timeout() -> Dur {
        Self::DEFAULT_DRAIN_TIMEOUT
    }
}

/// `[health]`: an HTTP GET of `path` on each replica must answer 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSpec {
    /// Starts with `/`. Defaults to `/`.
    pub path: String,
    /// Time between checks; greater than 0. Defaults to 1s.
    pub interval: Dur,
    /// Time one check may take; greater than 0. Defaults to 2s. (It may exceed
    /// `interval`; checks of one replica never overlap.)
    pub timeout: Dur,
    /// A replica not healthy this long after starting fails the deployment; greater
    /// than 0. Defaults to 30s.
    pub deadline: Dur,
}

impl HealthSpec {
    /// `path` when not given.
    pub const DEFAULT_PATH: &'static str = "/";
    /// `interval` when not given.
    pub const DEFAULT_INTERVAL: Dur = Dur::from_secs(1);
    /// `timeout` when not given.
    pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(2);
    /// `deadline` when not given.
    pub const DEFAULT_DEADLINE: Dur = Dur::from_secs(30);
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: Self::DEFAULT_PATH.to_owned(),
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }
}

/// `[strategy]`: how a release is rolled out, chosen by `kind`.
///
/// In JSON the kind is a field next to the kind's own settings:
/// `{"kind": "rolling", "max_surge": 1, "max_unavailable": 0}`. New kinds are added as
/// new variants (the TOML reader dispatches on `kind` itself, keeping positions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StrategySpec {
    /// `kind = "rolling"`: replace replicas a few at a time.
    Rolling(RollingSpec),
}

impl StrategySpec {
    /// The `kind` string of this strategy, as written in `runway.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            StrategySpec::Rolling(_) => "rolling",
        }
    }
}

impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec::Rolling(RollingSpec::default())
    }
}

/// Settings of the rolling strategy. Not both 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollingSpec {
    /// How many replicas may run above `replicas` during a rollout. Defaults to 1.
    pub max_surge: u32,
    /// How many replicas may be missing below `replicas` during a rollout. Defaults to 0.
    pub max_unavailable: u32,
}

impl Default for RollingSpec {
    fn default() -> Self {
        RollingSpec {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

impl Spec {
    /// Checks the semantic rules that `runway.toml` parsing enforces, for a spec that
    /// arrived another way (e.g. as JSON). The error names the field:
    /// `run.replicas: replicas must be at least 1 (hint: set replicas = 1 or more)`.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |field: &str, problem: Problem| match problem.hint {
            Some(hint) => format!("{field}: {} (hint: {hint})", problem.message),
            None => format!("{field}: {}", problem.message),
        };
        let check = |field: &str, rule: Result<(), Problem>| rule.map_err(|p| fail(field, p));

        check("service.name", rules::service_name(&self.service.name))?;

        let run = &self.run;
        check("run.command", rules::command_not_empty(run.command.len()))?;
        check("run.command", rules::program(&run.command[0]))?;
        check("run.replicas", rules::replicas(run.replicas))?;
        for name in run.env.keys() {
            check("run.env", rules::env_name(name))?;
        }
        if let Some(dir) = &run.dir {
            check("run.dir", rules::dir(dir))?;
        }

        let health = &self.health;
        check("health.path", rules::health_path(&health.path))?;
        check(
            "health.interval",
            rules::positive("interval", health.interval, "1s"),
        )?;
        check(
            "health.timeout",
            rules::positive("timeout", health.timeout, "2s"),
        )?;
        check(
            "health.deadline",
            rules::positive("deadline", health.deadline, "30s"),
        )?;

        match &self.strategy {
            StrategySpec::Rolling(r) => {
                check("strategy", rules::rolling(r.max_surge, r.max_unavailable))
            }
        }
    }
}
