//! The configuration file and `scenequeue config`: precedence flags > environment > file > defaults, secrets
//! masked, a bad file refused by name. Runs the binary; needs no service.

use std::path::Path;
use std::process::{Command, Output};

/// `scenequeue ARGS` with only the environment given (the test's own SCENEQUEUE_* variables removed).
fn scenequeue(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scenequeue"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SCENEQUEUE_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

/// The line of `key` in `scenequeue config`'s output.
fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key}:")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{out}"))
}

fn write_config(dir: &Path) -> String {
    let path = dir.join("scenequeue.toml");
    std::fs::write(
        &path,
        "queue = \"from-file\"\nmax_queued = 7\nthreads = 3\nlease_s = 30\n\
         database_url = \"postgres://sq:file-password@db:5432/sq?sslmode=verify-full\"\n\
         amqp_url = \"amqps://sq:file-password@mq:5671/%2f\"\napi_token = \"file-token\"\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn flags_win_over_environment_over_file_over_defaults() {
    let dir = tempdir();
    let file = write_config(&dir);
    let out = scenequeue(
        &["--config", &file, "config", "--queue", "from-flag"],
        &[("SCENEQUEUE_QUEUE", "from-env"), ("SCENEQUEUE_MAX_QUEUED", "9")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line(&text, "queue"), "queue = \"from-flag\"  # flag (SCENEQUEUE_QUEUE)");
    assert_eq!(line(&text, "max_queued"), "max_queued = \"9\"  # environment (SCENEQUEUE_MAX_QUEUED)");
    assert_eq!(line(&text, "threads"), "threads = \"3\"  # file (SCENEQUEUE_THREADS)");
    assert_eq!(line(&text, "grace_s"), "grace_s = \"25\"  # default (SCENEQUEUE_GRACE_S)");
    assert_eq!(line(&text, "gpu_mem_limit_mb"), "# gpu_mem_limit_mb: unset (SCENEQUEUE_GPU_MEM_LIMIT_MB)");
    assert_eq!(line(&text, "cpu_fallback"), "cpu_fallback = \"false\"  # default (SCENEQUEUE_CPU_FALLBACK)");

    // The same file through SCENEQUEUE_CONFIG reaches a subcommand's flags (shown as their defaults in help).
    let help = scenequeue(&["worker", "--help"], &[("SCENEQUEUE_CONFIG", &file), ("SCENEQUEUE_LEASE_S", "40")]);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("[default: 3]"), "the file's threads is the worker's default:\n{help}");
    assert!(help.contains("SCENEQUEUE_LEASE_S=40"), "{help}");
}

#[test]
fn secrets_are_masked_wherever_they_come_from() {
    let dir = tempdir();
    let file = write_config(&dir);
    let out = scenequeue(&["--config", &file, "config"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("file-password") && !text.contains("file-token"), "{text}");
    assert_eq!(
        line(&text, "database_url"),
        "database_url = \"postgres://sq:***@db:5432/sq?sslmode=verify-full\"  # file (SCENEQUEUE_DATABASE_URL)"
    );
    assert_eq!(line(&text, "amqp_url"), "amqp_url = \"amqps://sq:***@mq:5671/%2f\"  # file (SCENEQUEUE_AMQP_URL)");
    assert_eq!(line(&text, "api_token"), "api_token = \"***\"  # file (SCENEQUEUE_API_TOKEN)");

    let env_url = "postgres://db/sq?user=sq&password=env-password&sslmode=require";
    let out = scenequeue(
        &["config", "--amqp-url", "amqp://u:flag-password@mq/%2f"],
        &[("SCENEQUEUE_DATABASE_URL", env_url), ("SCENEQUEUE_API_TOKEN", "env-token")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for secret in ["env-password", "env-token", "flag-password"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("postgres://db/sq?user=sq&password=***&sslmode=require"), "{text}");

    // Help never shows the URLs taken from the environment.
    let help = scenequeue(&["status", "--help"], &[("SCENEQUEUE_DATABASE_URL", env_url)]);
    assert!(!String::from_utf8(help.stdout).unwrap().contains("env-password"));
}

#[test]
fn a_bad_file_is_refused_naming_it_and_the_setting() {
    let dir = tempdir();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "thread = 4\n").unwrap();
    let out = scenequeue(&["--config", path.to_str().unwrap(), "status"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml") && err.contains("unknown setting `thread`"), "{err}");
    let out = scenequeue(&["config"], &[("SCENEQUEUE_CONFIG", "/no/such/file.toml")]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("/no/such/file.toml"));
    assert!(!out.status.success());
}

/// A fresh directory under the system's temporary directory (removed by the OS, not by the test).
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sq-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
