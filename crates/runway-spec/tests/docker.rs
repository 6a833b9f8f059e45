//! `[docker]` (issue 12): a release as a container image. Read into the same `run` every
//! platform shares (replicas, env, timeouts) and a `DockerSpec`; every mistake located.

mod common;

use common::{assert_error, parse};
use runway_spec::{DockerSpec, PullPolicy};

const DOCKER: &str = r#"[service]
name = "atom"
listen = "127.0.0.1:8080"

[docker]
image = "registry.example.com/atom:{version}"
port = 8000
replicas = 3
env = { APP_ENV = "production", DATABASE_URL = "env:DATABASE_URL" }
command = ["uvicorn", "app:app", "--port", "{port}"]
network = "backend"
volumes = ["/srv/atom:/data:ro", "cache:/cache"]
user = "1000:1000"
memory = "512MiB"
cpus = 1.5
labels = { team = "agents" }
pull = "always"
stop_timeout = "20s"
"#;

#[test]
fn a_docker_service_reads_into_run_and_docker() {
    let spec = parse(DOCKER);
    assert_eq!(spec.run.replicas, 3);
    assert!(
        spec.run.command.is_empty(),
        "the image's command, not a process's"
    );
    assert_eq!(spec.run.env["DATABASE_URL"], "env:DATABASE_URL");
    assert_eq!(spec.run.stop_timeout.0.as_secs(), 20);
    let docker: DockerSpec = spec.docker.clone().expect("[docker]");
    assert_eq!(docker.image, "registry.example.com/atom:{version}");
    assert_eq!(docker.port, 8000);
    assert_eq!(docker.command, ["uvicorn", "app:app", "--port", "{port}"]);
    assert_eq!(docker.network.as_deref(), Some("backend"));
    assert_eq!(docker.volumes, ["/srv/atom:/data:ro", "cache:/cache"]);
    assert_eq!(docker.user.as_deref(), Some("1000:1000"));
    assert_eq!(docker.memory, Some(512 * 1024 * 1024));
    assert_eq!(docker.cpus, Some(1.5));
    assert_eq!(docker.labels["team"], "agents");
    assert_eq!(docker.pull, PullPolicy::Always);
    spec.validate()
        .expect("a docker spec is valid without a command");
    // Stored with the release and read back whole (a rollback restores it).
    let json = serde_json::to_string(&spec).unwrap();
    let back: runway_spec::Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn only_image_and_port_are_required() {
    let spec = parse(
        "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[docker]\nimage = \"web:{version}\"\nport = 8000\n",
    );
    let docker = spec.docker.expect("[docker]");
    assert_eq!(docker.pull, PullPolicy::Missing);
    assert_eq!(spec.run.replicas, 1);
    // A process service's JSON has no `docker` key.
    let process = parse(
        "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"./app\"]\n",
    );
    assert!(!serde_json::to_string(&process).unwrap().contains("docker"));
}

#[test]
fn docker_mistakes_are_located_with_what_to_write() {
    let head = "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[docker]\n";
    assert_error(
        &format!("{head}port = 8000\n"),
        (4, 1),
        "missing `image` in [docker]",
        "image = \"registry.example.com/web:{version}\"",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nport = 8000\npull = \"sometimes\"\n"),
        (7, 8),
        "unknown pull policy `sometimes`",
        "use \"missing\" (the default), \"always\" or \"never\"",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nport = 0\n"),
        (6, 8),
        "port must be the port the app listens on inside the container",
        "port = 8000",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nport = 8000\nvolumes = [\"data\"]\n"),
        (7, 12),
        "`data` is not a volume",
        "volumes = [",
    );
    assert_error(
        &format!(
            "{head}image = \"web:1\"\nport = 8000\nlabels = {{ \"runway.service\" = \"x\" }}\n"
        ),
        (7, 12),
        "labels starting with `runway.` are runway's own",
        "choose another prefix",
    );
    assert_error(
        &format!("{head}image = \"web:1\"\nport = 8000\nmemory = \"lots\"\n"),
        (7, 10),
        "lots",
        "memory = \"512MiB\"",
    );
}

#[test]
fn a_hook_names_its_own_image_only_where_it_runs_in_a_container() {
    let docker = parse(&format!(
        "{DOCKER}\n[hooks.backup]\nimage = \"postgres:16\"\ncommand = [\"pg_dump\", \"-f\", \"/backup/db.sql\"]\n"
    ));
    let backup = docker.hooks.backup.expect("[hooks.backup]");
    assert_eq!(backup.image.as_deref(), Some("postgres:16"));
    assert_error(
        "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"./app\"]\n[hooks.migrate]\nimage = \"tools:1\"\ncommand = [\"./migrate\"]\n",
        (7, 9),
        "`image` is for the hooks of a [docker] or [kubernetes] service",
        "remove `image`, or describe the service with [docker] or [kubernetes]",
    );
}
