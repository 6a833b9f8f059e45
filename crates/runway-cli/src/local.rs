//! Commands that need no server to change anything: `init`, `validate`, `plan`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runway_spec::{Spec, StrategySpec};

use super::{Cli, ClientError};
use runway_engine::plan::{simulate, RollingState, Step};
use runway_engine::text::plural;

pub fn init(file: &Path, force: bool) -> Result<ExitCode> {
    if file.exists() && !force {
        eprintln!(
            "{} already exists; use --force to overwrite it",
            file.display()
        );
        return Ok(ExitCode::from(2));
    }
    // The service is named after the project's directory: two projects initialised on one
    // machine must not both be `web` and deploy into each other.
    let name = project_name(file);
    let template =
        runway_spec::INIT_TEMPLATE.replacen("name = \"web\"", &format!("name = \"{name}\""), 1);
    std::fs::write(file, template).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "wrote {}: edit [service] and [run], then `runway validate` and `runway plan`",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A service name from the directory `file` is in: lowercase letters, digits, '-', '_' and
/// '.', starting with a letter or digit; `web` when nothing usable is left.
fn project_name(file: &Path) -> String {
    let dir = std::path::absolute(file)
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf));
    let raw = dir
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    name = trimmed.chars().take(63).collect();
    let name = name.trim_end_matches(['-', '.', '_']).to_string();
    if name.is_empty() {
        "web".to_string()
    } else {
        name
    }
}

pub fn validate(file: &Path) -> Result<ExitCode> {
    match runway_spec::parse_file(file) {
        Ok(spec) => {
            let place = match &spec.kubernetes {
                Some(k8s) => format!(
                    "on Kubernetes (Deployment {}/{})",
                    k8s.namespace, k8s.deployment
                ),
                None => format!("on {}", spec.service.listen),
            };
            println!(
                "{} is valid: service {} {place}, {}, {} strategy",
                file.display(),
                spec.service.name,
                super::deploy::plural(spec.run.replicas, "replica"),
                strategy_name(&spec)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn strategy_name(spec: &Spec) -> &'static str {
    match spec.strategy {
        StrategySpec::Rolling(_) => "rolling",
        StrategySpec::Canary(_) => "canary",
        StrategySpec::BlueGreen(_) => "blue-green",
        StrategySpec::Recreate(_) => "recreate",
    }
}

/// What runs around the traffic shift: checks, hooks, the backup and the migration, and what a
/// way back does with the migration.
fn print_runbook(spec: &Spec, with_database_steps: bool) {
    let count = |phase: &str| runway_engine::checks::in_phase(spec, Some(phase)).len();
    let hooks = |phase: runway_spec::HookPhase| spec.hooks.at(phase).count();
    let mut before = Vec::new();
    if count("preflight") > 0 {
        before.push(plural(count("preflight") as u64, "preflight check"));
    }
    if hooks(runway_spec::HookPhase::PreDeploy) > 0 {
        before.push(plural(
            hooks(runway_spec::HookPhase::PreDeploy) as u64,
            "pre-deploy hook",
        ));
    }
    if with_database_steps {
        if let Some(b) = &spec.hooks.backup {
            before.push(format!(
                "backup `{}`{} (keep {})",
                b.command.join(" "),
                if b.verify.is_some() { " + verify" } else { "" },
                b.keep
            ));
        }
        if let Some(m) = &spec.hooks.migrate {
            before.push(format!("migrate `{}` once", m.command.join(" ")));
        }
    }
    let mut after = Vec::new();
    if count("verify") > 0 {
        after.push(plural(count("verify") as u64, "verify check"));
    }
    if hooks(runway_spec::HookPhase::PostDeploy) > 0 {
        after.push(plural(
            hooks(runway_spec::HookPhase::PostDeploy) as u64,
            "post-deploy hook",
        ));
    }
    if !before.is_empty() {
        println!("  before step 1: {}", before.join(", "));
    }
    if !after.is_empty() {
        println!("  after the last step: {}", after.join(", "));
    }
    if let Some(m) = &spec.hooks.migrate {
        let back = match (&m.undo, m.policy()) {
            (Some(undo), _) => format!(
                "`{}` runs after the old release has all traffic back",
                undo.join(" ")
            ),
            (None, Some(runway_spec::OnFailure::Freeze)) => {
                "freeze: nothing more changes until you decide (the migration is irreversible)"
                    .to_string()
            }
            (None, Some(runway_spec::OnFailure::Restore)) => {
                "restore: maintenance page, the backup restored, the old release started"
                    .to_string()
            }
            (None, _) => "the schema stays: the old release runs on it".to_string(),
        };
        println!("  going back across the migration: {back}");
    }
}

/// The recreate procedure, step by step (runbook 004's phases).
fn print_recreate_plan(spec: &Spec, version: &str, serving: Option<&str>) {
    let name = &spec.service.name;
    println!(
        "plan: recreate {name} {version} on {} behind the maintenance page",
        spec.service.listen
    );
    let mut steps = vec![format!(
        "maintenance on: {} answers 503 with Retry-After {} (allowed through: {})",
        spec.service.listen,
        spec.maintenance.retry_after,
        if spec.maintenance.allow.is_empty() {
            spec.health.path.clone()
        } else {
            format!(
                "{}, {}",
                spec.health.path,
                spec.maintenance.allow.join(", ")
            )
        }
    )];
    if let Some(old) = serving {
        steps.push(format!(
            "drain {old} (in-flight requests finish, up to {}), then stop it",
            spec.run.drain_timeout
        ));
    }
    if let Some(b) = &spec.hooks.backup {
        steps.push(format!(
            "back up: {}{}",
            b.command.join(" "),
            if b.verify.is_some() {
                ", then verify it"
            } else {
                ""
            }
        ));
    }
    if let Some(m) = &spec.hooks.migrate {
        steps.push(format!("migrate: {}", m.command.join(" ")));
    }
    steps.push(format!(
        "start {} of {version}; wait until each passes {}",
        plural(spec.run.replicas, "replica"),
        spec.health.path
    ));
    steps.push("run the verify checks, then maintenance off".to_string());
    for (i, step) in steps.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    println!("  on failure: everything stops, the migration is taken back (undo or restore), the old release starts, and the page comes down only when it serves");
    print_runbook(spec, false);
    println!("nothing was changed");
}

fn print_canary_plan(spec: &Spec, canary: &runway_spec::CanarySpec, version: &str, stable: &str) {
    let analysis = runway_engine::canary::Analysis::from_spec(spec);
    println!(
        "plan: canary of {} {version} beside {stable} on {}",
        spec.service.name, spec.service.listen
    );
    for (i, step) in canary.steps.iter().enumerate() {
        let replicas = (spec.run.replicas * step.weight)
            .div_ceil(100)
            .clamp(1, spec.run.replicas);
        let pause = match step.pause {
            runway_spec::Pause::None => "then promote once an analysis interval passed".to_string(),
            runway_spec::Pause::For(d) => {
                format!("watch for {d}, then promote if the analysis passed")
            }
            runway_spec::Pause::Manual => "wait for `runway promote`".to_string(),
        };
        if step.weight == 100 {
            println!(
                "  {}. {} of {version} take 100% of requests; drain and stop {stable}",
                i + 1,
                plural(replicas, "replica")
            );
        } else {
            println!(
                "  {}. {} of {version} (healthy first) take {}% of requests; {pause}",
                i + 1,
                plural(replicas, "replica"),
                step.weight
            );
        }
    }
    match analysis {
        Ok(a) => {
            println!(
                "  analysis every {}, on the evidence of the whole step: roll back after {} failed intervals in a row; nothing is judged before {} canary requests; pause after {} intervals in a row without data or {} undecided",
                runway_spec::Dur(a.interval), a.policy.failure_limit, a.policy.min_requests, a.policy.inconclusive_limit, a.policy.max_intervals
            );
            for m in &a.policy.metrics {
                let pause = m
                    .pause_if
                    .as_ref()
                    .map(|p| format!(", pause if {p}"))
                    .unwrap_or_default();
                println!("    - {}: fail if {}{pause}", m.name, m.fail_if);
            }
        }
        Err(e) => println!("  analysis: invalid: {e}"),
    }
    println!(
        "  on rollback: the canary's weight goes to 0 at once, then it is drained and stopped"
    );
    print_runbook(spec, true);
    println!("nothing was changed");
}

/// `runway check`: runs the checks here, concurrently, and prints what each found.
pub async fn check(cli: &Cli, phase: Option<&str>, json: bool) -> Result<ExitCode> {
    let file = cli.file();
    let spec = match runway_spec::parse_file(&file) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let checks = runway_engine::checks::in_phase(&spec, phase);
    if checks.is_empty() {
        if json {
            // The same shape as with checks: a list, here empty.
            println!("[]");
        }
        eprintln!(
            "{} has no checks{}",
            file.display(),
            phase
                .map(|p| format!(" in phase `{p}`"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // {replica}: the service's running replicas, when a server runs it.
    let replicas = match cli.client().status().await {
        Ok(status) => status
            .services
            .iter()
            .filter(|s| s.name == spec.service.name)
            .flat_map(|s| {
                s.replicas
                    .iter()
                    .filter(|r| r.in_rotation)
                    .map(|r| format!("127.0.0.1:{}", r.port))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let base_dir = std::path::PathBuf::from(super::base_dir_of(&file)?);
    let state_dir = cli.state_dir();
    // Outside the server only the state dir's secret files can be read: the sealed ones
    // open in the server alone.
    let secrets = runway_engine::secrets::Secrets::dir(state_dir.join("secrets"));
    let context = runway_engine::checks::context(&spec, &base_dir, &secrets, replicas);
    let results = runway_checks::run_checks(&checks, &context).await;
    let blocked = !runway_checks::blocking_failures(&results).is_empty();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let mut t = super::output::table(&["status", "name", "severity", "duration", "detail"]);
        for r in &results {
            let status = match (r.passed(), r.severity) {
                (true, _) => "PASS",
                (false, runway_checks::Severity::Blocker) => "FAIL",
                (false, runway_checks::Severity::Warning) => "WARN",
            };
            let name = match &r.target {
                Some(t) => format!("{} ({t})", r.name),
                None => r.name.clone(),
            };
            t.add_row(vec![
                status.to_string(),
                name,
                format!("{:?}", r.severity).to_lowercase(),
                format!("{:.0}ms", r.duration.as_secs_f64() * 1000.0),
                r.detail.clone(),
            ]);
        }
        println!("{t}");
        let failed = results.iter().filter(|r| !r.passed()).count();
        println!(
            "{} passed, {failed} failed{}",
            results.len() - failed,
            if blocked { " (a blocker failed)" } else { "" }
        );
    }
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints what `deploy VERSION` would do from the current state. Changes nothing.
pub async fn plan(cli: &Cli, version: &str) -> Result<ExitCode> {
    let spec = match runway_spec::parse_file(&cli.file()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let name = &spec.service.name;
    let (serving_version, old) = match cli.client().status().await {
        Ok(status) => match status.services.iter().find(|s| &s.name == name) {
            Some(s) => {
                let v = s.serving.first().map(|r| r.version.clone());
                let count = s.replicas.iter().filter(|r| r.in_rotation).count() as u32;
                (v, count)
            }
            None => (None, 0),
        },
        Err(ClientError::NoServer(_)) => {
            println!("(no server running: planning as if nothing serves yet)");
            (None, 0)
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(k8s) = &spec.kubernetes {
        print_cluster_plan(&spec, k8s, version, serving_version.as_deref());
        return Ok(ExitCode::SUCCESS);
    }
    let rolling = match &spec.strategy {
        StrategySpec::Rolling(r) => r.clone(),
        StrategySpec::Recreate(_) => {
            print_recreate_plan(&spec, version, serving_version.as_deref());
            return Ok(ExitCode::SUCCESS);
        }
        StrategySpec::Canary(canary) if serving_version.is_some() => {
            print_canary_plan(
                &spec,
                canary,
                version,
                serving_version.as_deref().unwrap_or("stable"),
            );
            return Ok(ExitCode::SUCCESS);
        }
        StrategySpec::BlueGreen(bg) if serving_version.is_some() => {
            let stable = serving_version.as_deref().unwrap_or("stable");
            println!(
                "plan: blue-green deploy of {name} {version} beside {stable} on {}",
                spec.service.listen
            );
            println!(
                "  1. start {} of {version} with no traffic; wait until each passes {}",
                plural(spec.run.replicas, "replica"),
                spec.health.path
            );
            match bg.preview_listen {
                Some(addr) => println!("  2. preview: http://{addr} and the header `x-runway-release: {version}` reach only {version}"),
                None => println!("  2. preview: the header `x-runway-release: {version}` reaches only {version}"),
            }
            println!("  3. switch all traffic to {version} at once");
            if let Some(d) = bg.analysis_for {
                println!(
                    "  4. analyse {version} for {d}; a failure switches back to {stable} at once"
                );
            }
            println!("  then: {stable} stays up for {} (`runway abort` switches back instantly), then it is drained and stopped", bg.scale_down_delay);
            print_runbook(&spec, true);
            println!("nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }
        // A first release has nothing to compare with: it starts at full strength.
        StrategySpec::Canary(_) | StrategySpec::BlueGreen(_) => {
            println!("  (first release: no stable release to compare a canary with, so it starts all replicas at once)");
            runway_spec::RollingSpec {
                max_surge: spec.run.replicas,
                max_unavailable: 0,
            }
        }
    };
    println!(
        "plan: deploy {name} {version} on {} (rolling: {} replicas, max_surge {}, max_unavailable {})",
        spec.service.listen, spec.run.replicas, rolling.max_surge, rolling.max_unavailable
    );
    match &serving_version {
        Some(v) => println!("  now serving: {v} on {old} replicas"),
        None => println!("  now serving: nothing"),
    }
    let argv: Vec<String> = spec
        .run
        .command
        .iter()
        .map(|a| a.replace("{version}", version))
        .collect();
    println!(
        "  each replica runs: {} (with {{port}} a free loopback port)",
        argv.join(" ")
    );
    let steps = simulate(RollingState {
        target: spec.run.replicas,
        max_surge: rolling.max_surge,
        max_unavailable: rolling.max_unavailable,
        old,
        new: 0,
    });
    let old_name = serving_version.as_deref().unwrap_or("old");
    for (i, step) in steps.iter().enumerate() {
        let text = match step {
            Step::StartNew(k) => format!(
                "start {} of {version}, wait until {} answers 2xx (deadline {}), then route traffic to them",
                plural(*k, "replica"), spec.health.path, spec.health.deadline
            ),
            Step::RetireOld(k) => format!(
                "take {} of {old_name} out of rotation, drain in-flight requests (up to {}), stop them (SIGTERM, SIGKILL after {})",
                plural(*k, "replica"), spec.run.drain_timeout, spec.run.stop_timeout
            ),
            Step::RetireNew(k) => format!("stop {} of {version}", plural(*k, "surplus replica")),
            Step::Done => format!("done: {version} serves all traffic on {}", plural(spec.run.replicas, "replica")),
            Step::Stuck => "stuck: max_surge and max_unavailable are both 0".to_string(),
        };
        println!("  {}. {text}", i + 1);
    }
    println!(
        "  on failure: new replicas are stopped and {old_name} keeps (or gets back) all traffic"
    );
    print_runbook(&spec, true);
    println!("nothing was changed");
    Ok(ExitCode::SUCCESS)
}

/// `runway plan` for a `[kubernetes]` service: what runway asks of the cluster, step by step.
fn print_cluster_plan(
    spec: &runway_spec::Spec,
    k8s: &runway_spec::KubernetesSpec,
    version: &str,
    serving: Option<&str>,
) {
    let name = &spec.service.name;
    let deployment = format!("{}/{}", k8s.namespace, k8s.deployment);
    let image = k8s.image.replace("{version}", version);
    let replicas = plural(spec.run.replicas, "replica");
    let follow = format!(
        "follow the rollout as `kubectl rollout status` does (progress deadline {})",
        k8s.progress_deadline
    );
    println!("plan: deploy {name} {version} on Kubernetes: Deployment {deployment} ({replicas})");
    println!("  image: {image}");
    match serving {
        Some(v) => println!("  now serving: {v}"),
        None => println!("  now serving: nothing"),
    }
    let mut n = 0;
    let mut step = |text: String| {
        n += 1;
        println!("  {n}. {text}");
    };
    match (&spec.strategy, serving) {
        (StrategySpec::Canary(canary), Some(stable)) => {
            step(format!(
                "run {version} in Deployment {}/{}-canary beside {stable}",
                k8s.namespace, k8s.deployment
            ));
            for s in canary.steps.iter().filter(|s| s.weight < 100) {
                let share = match k8s.traffic {
                    runway_spec::ClusterTraffic::GatewayApi => format!(
                        "HTTPRoute {} weights {}% to {version}",
                        k8s.route.as_deref().unwrap_or("?"),
                        s.weight
                    ),
                    _ => {
                        let canary = ((spec.run.replicas * s.weight + 50) / 100)
                            .clamp(1, spec.run.replicas.max(2) - 1);
                        format!(
                            "{canary} of {} pods run {version} (about {:.0}%, approximate)",
                            spec.run.replicas.max(2),
                            100.0 * canary as f64 / spec.run.replicas.max(2) as f64
                        )
                    }
                };
                step(format!("{}% step: {share}; judged on Prometheus", s.weight));
            }
            step(format!(
                "promote: write {version} into Deployment {deployment}, {follow}; scale the canary to 0"
            ));
        }
        (StrategySpec::BlueGreen(bg), Some(stable)) => {
            step(format!(
                "roll {version} into the idle slot's Deployment ({}-blue or -green), {follow}",
                k8s.deployment
            ));
            step(format!("point Service {}-preview at it", k8s.service));
            step(format!(
                "switch Service {}'s selector to it; {stable} stays for {} (`runway abort` switches back), then is scaled to 0",
                k8s.service, bg.scale_down_delay
            ));
        }
        (StrategySpec::Recreate(_), Some(stable)) => {
            step(format!(
                "scale Deployment {deployment} ({stable}) to 0 and wait for its pods to go"
            ));
            if spec.hooks.migrate.is_some() {
                step("run the migration as a Job of the release's pod template".into());
            }
            step(format!(
                "write {version} into Deployment {deployment}, {follow}"
            ));
        }
        _ => {
            if spec.hooks.migrate.is_some() {
                step("run the migration as a Job of the release's pod template".into());
            }
            step(format!(
                "write {version} into Deployment {deployment} (image, env, {replicas}), {follow}"
            ));
        }
    }
    println!(
        "  on failure: the previous release's template goes back into Deployment {deployment} (as `kubectl rollout undo`)"
    );
    println!("nothing was changed");
}
