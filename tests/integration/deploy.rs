//! What a deployment relies on beyond the pipeline: the worker's alive file (its liveness probe) and an isolated
//! inference child that never sees the services' URLs or the API token.

use crate::common;
use crate::common::TestEnv;
use scenequeue_worker::{Shutdown, WorkerConfig};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_rewrites_its_alive_file_on_every_heartbeat() {
    let env = TestEnv::new().await;
    let alive = env.dir.join("alive");
    // A 4 s lease beats every second.
    let config = WorkerConfig {
        drain: false,
        alive_file: Some(alive.clone()),
        lease_ttl: Duration::from_secs(4),
        ..env.worker_config()
    };
    let shutdown = Shutdown::default();
    let stop = shutdown.stop.clone();
    let worker = tokio::spawn(scenequeue_worker::run(config, env.services.clone(), shutdown));
    let started = Instant::now();
    let mut stamps = Vec::new();
    while stamps.len() < 2 && started.elapsed() < Duration::from_secs(60) {
        if let Ok(text) = std::fs::read_to_string(&alive) {
            let stamp: u64 = text.trim().parse().unwrap();
            if stamps.last() != Some(&stamp) {
                stamps.push(stamp);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    worker.await.unwrap().unwrap();
    assert_eq!(stamps.len(), 2, "the file was written, then rewritten a beat later: {stamps:?}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(now - stamps[1] < 10, "it holds the time of the beat: {stamps:?}, now {now}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_isolated_child_gets_no_service_url_or_token() {
    let env = TestEnv::new().await;
    // A stand-in child program that records its arguments and environment, then fails its start.
    let dump = env.dir.join("child-env");
    let script = env.dir.join("child.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"ARGS $*\" > {0}\nenv >> {0}\nexit 3\n", dump.display()))
        .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = env.dir.join("scenequeue.toml");
    std::fs::write(&config, "threads = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
        .args(["worker", "--session-policy", "process", "--model", "nsnet2-48k", "--drain"])
        .env("SCENEQUEUE_DATABASE_URL", &env.services.database_url)
        .env("SCENEQUEUE_AMQP_URL", &env.services.amqp_url)
        .env("SCENEQUEUE_QUEUE", &env.services.queue)
        .env("SCENEQUEUE_API_TOKEN", "token-for-the-test")
        .env("SCENEQUEUE_CONFIG", &config)
        .env("SCENEQUEUE_CHILD_PROGRAM", &script)
        .env("SCENEQUEUE_ORT_LIBRARY", common::ort_library())
        .env("SCENEQUEUE_MODEL_DIR", common::model_dir())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the worker cannot start without its child");
    let seen = std::fs::read_to_string(&dump).expect("the child program was started");
    assert!(seen.starts_with("ARGS inference-child\n"), "{seen}");
    for (name, value) in [
        ("SCENEQUEUE_DATABASE_URL", env.services.database_url.as_str()),
        ("SCENEQUEUE_AMQP_URL", env.services.amqp_url.as_str()),
        ("SCENEQUEUE_API_TOKEN", "token-for-the-test"),
        ("SCENEQUEUE_CONFIG", config.to_str().unwrap()),
    ] {
        assert!(!seen.contains(name) && !seen.contains(value), "{name} reached the child:\n{seen}");
    }
    env.cleanup().await;
}

/// The superuser connection that creates roles (the test database's own role may not).
fn admin_url() -> String {
    std::env::var("SCENEQUEUE_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its user part and database name replaced.
fn as_role(url: &str, user: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host_and_path.split('/').next().unwrap();
    format!("{scheme}://{user}:pw@{host}/{db}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_migrates_and_the_app_role_only_reads_and_writes_rows() {
    let env = TestEnv::new().await; // for the queue, the models and a directory
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (db, owner, app) = (format!("sq_test_roles_{id}"), format!("sq_owner_{id}"), format!("sq_app_{id}"));
    let admin = admin_url();
    let psql = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &admin, "-f"])
        .arg(common::root().join("deploy/postgres/roles.sql"))
        .args(["-v", &format!("db={db}"), "-v", &format!("owner={owner}"), "-v", &format!("app={app}")])
        .args(["-v", "owner_password=pw", "-v", "app_password=pw"])
        .output()
        .unwrap();
    let (owner_url, app_url) = (as_role(&admin, &owner, &db), as_role(&admin, &app, &db));
    let outcome = if psql.status.success() {
        let check = std::panic::AssertUnwindSafe(check_roles(&env, &owner_url, &app_url));
        futures_util::FutureExt::catch_unwind(check).await
    } else {
        Ok(())
    };
    // Remove the database and both roles whatever happened.
    let drop = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &admin, "-c", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")])
        .args(["-c", &format!("DROP ROLE IF EXISTS {owner}"), "-c", &format!("DROP ROLE IF EXISTS {app}")])
        .output()
        .unwrap();
    assert!(psql.status.success(), "roles.sql failed: {}", String::from_utf8_lossy(&psql.stderr));
    assert!(drop.status.success(), "{}", String::from_utf8_lossy(&drop.stderr));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    env.cleanup().await;
}

async fn check_roles(env: &TestEnv, owner_url: &str, app_url: &str) {
    let run = |url: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
            .args(args)
            .env("SCENEQUEUE_DATABASE_URL", url)
            .env("SCENEQUEUE_AMQP_URL", &env.services.amqp_url)
            .env("SCENEQUEUE_QUEUE", &env.services.queue)
            .env("SCENEQUEUE_ORT_LIBRARY", common::ort_library())
            .env("SCENEQUEUE_MODEL_DIR", common::model_dir())
            .output()
            .unwrap()
    };
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    // Before any migration the app role cannot create the schema.
    let early = run(app_url, &["status"]);
    assert!(!early.status.success(), "{}", text(&early));
    assert!(text(&early).contains("permission denied"), "{}", text(&early));

    let migrated = run(owner_url, &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));

    // Once migrated, the app role submits, enhances and reads, with data rights only.
    let input = env.dir.join("roles-in");
    std::fs::create_dir_all(&input).unwrap();
    common::write_wav(&input.join("talk.wav"), &common::speech_like(48_000, 4.0, 3), 48_000, 1);
    let out = env.dir.join("roles-out");
    let submitted =
        run(app_url, &["submit", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--model", "nsnet2-48k"]);
    assert!(submitted.status.success(), "{}", text(&submitted));
    let worked = run(app_url, &["worker", "--drain", "--model", "nsnet2-48k"]);
    assert!(worked.status.success(), "{}", text(&worked));
    let pool = sqlx::PgPool::connect(app_url).await.unwrap();
    let (done, all): (i64, i64) =
        sqlx::query_as("SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FROM scenes")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(all > 0 && done == all, "{done} of {all} scenes succeeded");
    let ddl = sqlx::query("CREATE TABLE intruder (x int)").execute(&pool).await.unwrap_err();
    assert!(ddl.to_string().contains("permission denied"), "{ddl}");
    let drop = sqlx::query("DROP TABLE results").execute(&pool).await.unwrap_err();
    assert!(drop.to_string().contains("must be owner"), "{drop}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_urls_with_sslmode_require_connect_over_tls() {
    let env = TestEnv::new().await;
    let url = &env.services.database_url;
    let tls_url = format!("{url}{}sslmode=require", if url.contains('?') { '&' } else { '?' });
    let pool = scenequeue_core::db::connect(&tls_url, 1).await.expect("a TLS connection (the server must offer TLS)");
    let ssl: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(&pool).await.unwrap();
    assert!(ssl, "the connection is encrypted");
    pool.close().await;
    env.cleanup().await;
}

/// `scenequeue probe ARGS` with the given environment; whether it passed, and what it said.
fn probe(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
        .arg("probe")
        .args(args)
        .env_remove("SCENEQUEUE_ALIVE_FILE")
        .env_remove("SCENEQUEUE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_on_a_fresh_alive_file_or_an_answering_server_only() {
    let env = TestEnv::new().await;
    let alive = env.dir.join("alive");
    let alive_s = alive.to_str().unwrap();
    let (ok, said) = probe(&["--alive-file", alive_s], &[]);
    assert!(!ok && said.contains("no alive file"), "{said}");
    std::fs::write(&alive, "0\n").unwrap();
    assert!(probe(&[], &[("SCENEQUEUE_ALIVE_FILE", alive_s)]).0, "a file just written is fresh");
    std::thread::sleep(Duration::from_millis(2100));
    let (ok, said) = probe(&["--alive-file", alive_s, "--max-age-s", "1"], &[]);
    assert!(!ok && said.contains("last written"), "{said}");

    // Without an alive file it asks the HTTP server: nothing there, then `serve` on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("0.0.0.0:{port}");
    let (ok, said) = probe(&["--http-addr", &addr], &[]);
    assert!(!ok && said.contains("nothing answers"), "{said}");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
        .args(["serve", "--http-addr", &format!("127.0.0.1:{port}")])
        .env("SCENEQUEUE_DATABASE_URL", &env.services.database_url)
        .env("SCENEQUEUE_AMQP_URL", &env.services.amqp_url)
        .env("SCENEQUEUE_QUEUE", &env.services.queue)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut passed = false;
    while !passed && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        passed = probe(&["--http-addr", &addr], &[]).0;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(passed, "the probe passes once the server answers /metrics (a wildcard address asked on loopback)");
    env.cleanup().await;
}
