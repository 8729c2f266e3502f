//! The farm through PgBouncer in transaction pooling mode (deploy/pgbouncer/pgbouncer.ini): a submission and
//! real workers, each with a pool of its own, share two server connections, and every scene is enhanced and
//! recorded exactly once. PgBouncer comes from `SCENEQUEUE_PGBOUNCER` (scripts/test.sh sets it from
//! scripts/pgbouncer.sh).

use crate::common;
use crate::common::{TempDir, TestEnv, speech_like, submit_request, write_wav};
use scenequeue_core::config::Services;
use scenequeue_core::db;
use scenequeue_core::states::{BatchState, SceneState};
use sqlx::Row;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use tokio_util::sync::CancellationToken;

/// Server connections PgBouncer may open to the test's database.
const SERVER_CONNECTIONS: usize = 2;

/// A PgBouncer in transaction mode in front of the test's PostgreSQL, stopped when dropped.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Bouncer {
    /// Starts PgBouncer with the project's configuration on a free port and waits until it accepts connections.
    async fn start(database_url: &str) -> Self {
        let binary = std::env::var("SCENEQUEUE_PGBOUNCER")
            .expect("SCENEQUEUE_PGBOUNCER names a PgBouncer 1.21 or newer (scripts/pgbouncer.sh prints one)");
        let url = url::Url::parse(database_url).unwrap();
        let user = url.username().to_string();
        let password = url.password().unwrap_or("").to_string();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = TempDir::new("pooler", &port.to_string());
        let auth = dir.0.join("users.txt");
        std::fs::write(&auth, format!("\"{user}\" \"{password}\"\n\"{}\" \"\"\n", admin_user())).unwrap();
        let template = std::fs::read_to_string(common::root().join("deploy/pgbouncer/pgbouncer.ini")).unwrap();
        let ini = [
            ("@PG_HOST@", url.host_str().unwrap_or("127.0.0.1").to_string()),
            ("@PG_PORT@", url.port().unwrap_or(5432).to_string()),
            ("@LISTEN_ADDR@", "127.0.0.1".into()),
            ("@LISTEN_PORT@", port.to_string()),
            ("@POOL_SIZE@", SERVER_CONNECTIONS.to_string()),
            ("@MAX_CLIENTS@", "100".into()),
            ("@AUTH_TYPE@", "trust".into()),
            ("@AUTH_FILE@", auth.display().to_string()),
            ("@ADMIN_USER@", admin_user()),
        ]
        .iter()
        .fold(template, |ini, (key, value)| ini.replace(key, value));
        let unfilled: Vec<&str> = ini.lines().filter(|l| !l.starts_with(';') && l.contains('@')).collect();
        assert!(unfilled.is_empty(), "placeholders of the template left: {unfilled:?}");
        let config = dir.0.join("pgbouncer.ini");
        std::fs::write(&config, ini).unwrap();
        let mut command = Command::new(&binary);
        // PgBouncer refuses to run as root; it drops to another user when told to.
        if std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
            for path in [&dir.0, &auth, &config] {
                let mode = if path.is_dir() { 0o755 } else { 0o644 };
                std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
            }
            command.args(["-u", "nobody"]);
        }
        let mut child = command
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        // Ready once it accepts a connection; a PgBouncer that exited (a bad configuration) fails the test at once.
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("PgBouncer exited at start-up with {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::task::yield_now().await;
        }
        Self { child, port, _dir: dir }
    }

    /// `url` with its host and port replaced by PgBouncer's.
    fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    /// One row per line of PgBouncer's admin command `show` (SERVERS, STATS, ...) for `database`, each as the
    /// named columns.
    async fn show(&self, show: &str, database: &str, columns: &[&str]) -> Vec<Vec<String>> {
        use sqlx::Connection;
        let admin = format!("postgres://{}@127.0.0.1:{}/pgbouncer", admin_user(), self.port);
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PgBouncer's admin console");
        let rows = sqlx::raw_sql(&format!("SHOW {show}")).fetch_all(&mut conn).await.unwrap();
        rows.iter()
            .filter(|r| r.try_get::<String, _>("database").is_ok_and(|d| d == database))
            .map(|r| columns.iter().map(|c| text(r, c)).collect())
            .collect()
    }
}

/// A column of the admin console, as the text it came as (it answers in text, numbers included).
fn text(row: &sqlx::postgres::PgRow, column: &str) -> String {
    let value = row.try_get_raw(column).unwrap_or_else(|e| panic!("column {column}: {e}"));
    value.as_str().unwrap_or_else(|e| panic!("column {column}: {e}")).to_string()
}

fn admin_user() -> String {
    "sq_pooler_admin".into()
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_through_a_transaction_pooler_enhance_every_scene_once() {
    let env = TestEnv::new().await;
    let bouncer = Bouncer::start(&env.services.database_url).await;
    let pooled_url = bouncer.url(&env.services.database_url);
    let database = env.services.database_url.rsplit('/').next().unwrap().to_string();

    // The submission goes through the pooler too.
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, seconds) in [9.0, 7.0, 5.0].into_iter().enumerate() {
        write_wav(&input.join(format!("talk-{i}.wav")), &speech_like(48_000, seconds, i as u64), 48_000, 1);
    }
    let pooled = db::connect(&pooled_url, 4).await.expect("connect through PgBouncer");
    let (connection, publisher) = env.publisher().await;
    let report = scenequeue_scheduler::submit(&pooled, &publisher, &submit_request(&env, vec![input], 4.0))
        .await
        .expect("submit through PgBouncer");
    connection.close(200, "ok").await.ok();
    pooled.close().await;
    assert!(report.jobs >= 4, "{} jobs", report.jobs);

    // Three workers with two connections each, plus their start-up checks, over two server connections.
    let services = Services { database_url: pooled_url, ..env.services.clone() };
    let config = scenequeue_worker::WorkerConfig { db_connections: 2, ..env.worker_config() };
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (config, services) = (config.clone(), services.clone());
            tokio::spawn(async move { scenequeue_worker::run(config, services, CancellationToken::new().into()).await })
        })
        .collect();
    let mut jobs_done = 0;
    for w in workers {
        jobs_done += w.await.unwrap().expect("a worker through PgBouncer runs until the queue is empty").jobs_done;
    }
    assert_eq!(jobs_done, report.jobs as u64, "every job done once");

    let batch = report.batch;
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    assert_eq!(scenes, report.scenes as i64);
    let succeeded = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scenes WHERE batch_id = $1 AND state = $2")
        .bind(batch)
        .bind(SceneState::Succeeded)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(succeeded, scenes, "every scene enhanced");
    let results = env
        .count("SELECT count(*) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch)
        .await;
    assert_eq!(results, scenes, "one result per scene");
    let outputs = env.count("SELECT count(DISTINCT r.output_path) FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1", batch).await;
    assert_eq!(outputs, scenes, "one output file per scene");
    let paths: Vec<String> = sqlx::query_scalar(
        "SELECT r.output_path FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = $1",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for path in &paths {
        assert!(std::path::Path::new(path).is_file(), "output {path} written");
    }
    let state: BatchState =
        sqlx::query_scalar("SELECT state FROM batches WHERE id = $1").bind(batch).fetch_one(&env.pool).await.unwrap();
    assert_eq!(state, BatchState::Finished);

    // It all went through PgBouncer, over no more server connections than it was given.
    let stats = bouncer.show("STATS", &database, &["total_xact_count"]).await;
    let transactions: i64 = stats.iter().map(|r| r[0].parse::<i64>().unwrap()).sum();
    assert!(transactions > 10 * report.jobs as i64, "{transactions} transactions went through PgBouncer");
    let servers = bouncer.show("SERVERS", &database, &["state"]).await;
    assert!(
        (1..=SERVER_CONNECTIONS).contains(&servers.len()),
        "PgBouncer held {} server connections: {servers:?}",
        servers.len()
    );
    env.cleanup().await;
}
