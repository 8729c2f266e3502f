//! Many nodes: the farm (the scheduler and three supervised workers) on a three-node RabbitMQ cluster and a
//! PostgreSQL failover pair (`scripts/cluster.sh`), while the quorum queue's leader node is killed, a broker
//! node is partitioned from the other two and healed, the PostgreSQL primary is killed (the standby is promoted,
//! and the old primary comes back as the standby), and every broker node is killed and started again. The
//! workers' list of broker nodes also names an address where nothing answers and a broker of another cluster,
//! and a submission pointed at that broker alone is refused by name. Each fault meets a batch of its own in flight;
//! after each, every scene has exactly one result and its file, and at the end every process is still the one
//! first started. The recovery time of each fault is printed: from the fault to the next completed job.

use super::cluster::Cluster;
use super::farm::{Farm, Recipe, since};
use super::shared::{self, TestEnv, speech_like, write_wav};
use scenequeue_core::ids::{BatchId, JobId};
use scenequeue_core::mq::{self, Publisher, Topology};
use scenequeue_core::states::{BatchState, SceneState};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKERS: usize = 3;
/// Recordings of 20 s per batch: enough work to span a fault and its recovery.
const RECORDINGS: usize = 48;

fn scenequeue(env: &TestEnv, cluster: &Cluster) -> Command {
    let mut cmd = shared::scenequeue(env);
    cmd.env("SCENEQUEUE_AMQP_CLUSTER", &cluster.amqp_cluster).env("SCENEQUEUE_MAX_QUEUED", "6").env("RUST_LOG", "info");
    cmd
}

/// A batch submitted for one fault.
struct Phase {
    batch: BatchId,
    scenes: i64,
    out: PathBuf,
}

async fn submit(env: &TestEnv, cluster: &Cluster, name: &str, seed: u64) -> Phase {
    let (input, out) = (env.dir.join(name).join("in"), env.dir.join(name).join("out"));
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..RECORDINGS {
        write_wav(&input.join(format!("{name}-{i:03}.wav")), &speech_like(48_000, 20.0, seed + i as u64), 48_000, 1);
    }
    let cmd = scenequeue(env, cluster)
        .args(["submit", "--model", "nsnet2-48k", "--job-seconds", "10", "--max-attempts", "10", "--out"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert!(cmd.status.success(), "{}", String::from_utf8_lossy(&cmd.stderr));
    let batch: BatchId = sqlx::query_scalar("SELECT id FROM batches ORDER BY created_at DESC LIMIT 1")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    Phase { batch, scenes, out }
}

/// Jobs of the test's database that succeeded; asked again while the database fails over.
async fn jobs_done(env: &TestEnv) -> i64 {
    loop {
        match sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetch_one(&env.pool).await {
            Ok(n) => return n,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until more than `before` jobs succeeded; seconds since `fault`.
async fn until_more_jobs(env: &TestEnv, farm: &Farm, before: i64, fault: Instant) -> f64 {
    loop {
        if jobs_done(env).await > before {
            return since(fault);
        }
        assert!(fault.elapsed() < Duration::from_secs(240), "no job completed after the fault\n{}", farm.log_tails(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the batch has a completed job (it is flowing).
async fn until_flowing(env: &TestEnv, farm: &Farm, phase: &Phase) {
    let started = Instant::now();
    loop {
        let done =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = 'succeeded'")
                .bind(phase.batch)
                .fetch_one(&env.pool)
                .await
                .unwrap_or(0);
        if done > 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "batch not flowing\n{}", farm.log_tails(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the batch to finish, then checks every scene succeeded with exactly one result and its file; the
/// report's line about it.
async fn check(env: &TestEnv, farm: &Farm, phase: &Phase, name: &str) -> String {
    let started = Instant::now();
    while scenequeue_core::db::batch_state(&env.pool, phase.batch).await.ok().flatten() != Some(BatchState::Finished) {
        assert!(started.elapsed() < Duration::from_secs(300), "{name}: batch not finished\n{}", farm.log_tails(40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Vec<(SceneState, Option<String>, f64, f64, i64)> = sqlx::query_as(
        "SELECT s.state, r.output_path, s.start_s, s.end_s,
                (SELECT count(*) FROM results r2 WHERE r2.scene_id = s.id)
         FROM scenes s LEFT JOIN results r ON r.scene_id = s.id WHERE s.batch_id = $1",
    )
    .bind(phase.batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as i64, phase.scenes, "{name}: one row per scene");
    for (state, output, start, end, results) in rows {
        assert_eq!((state, results), (SceneState::Succeeded, 1), "{name}: every scene once");
        let output = output.expect("a result");
        assert!(output.starts_with(&*phase.out.to_string_lossy()), "{output}");
        let wav = hound::WavReader::open(&output).expect(&output);
        let seconds = f64::from(wav.duration()) / f64::from(wav.spec().sample_rate);
        assert!((seconds - (end - start)).abs() < 0.05, "{output}: {seconds} s for a {} s scene", end - start);
    }
    let dead = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = 'dead'", phase.batch).await;
    assert_eq!(dead, 0, "{name}: no job ran out of attempts");
    // Jobs that ran more than once: a retry after a lost lease or connection.
    let reruns = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND attempts > 1", phase.batch).await;
    format!("  {} scenes, each one result and file; jobs run more than once: {reruns}", phase.scenes)
}

/// The answer of the scheduler's HTTP server to `GET path`, or why there is none.
async fn http_get(port: u16, path: &str) -> Result<String, String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    match tokio::time::timeout(Duration::from_secs(15), fetch).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(format!("no answer: {e}")),
        Err(_) => Err("no answer within 15 s".into()),
    }
}

/// The status line and the `scenequeue_workers` lines of the scheduler's `/metrics`, or why there are none.
async fn metrics(port: u16) -> String {
    match http_get(port, "/metrics").await {
        Ok(body) => {
            let status = body.lines().next().unwrap_or_default().to_string();
            let workers: Vec<&str> = body.lines().filter(|l| l.starts_with("scenequeue_workers{")).collect();
            format!("{status}; {}", workers.join(", "))
        }
        Err(e) => e,
    }
}

/// The test database's clock and its count of succeeded jobs, read just before a fault.
async fn before_fault(env: &TestEnv) -> (f64, i64) {
    let now: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8").fetch_one(&env.pool).await.unwrap();
    (now, jobs_done(env).await)
}

/// Waits until a job started after `clock` (the database's, before the fault) succeeded: the queue delivers
/// again, beyond jobs that were already running. Seconds since `fault`.
async fn until_fresh_job(env: &TestEnv, farm: &Farm, clock: f64, fault: Instant) -> f64 {
    loop {
        let fresh = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND extract(epoch FROM started_at) > $1",
        )
        .bind(clock)
        .fetch_one(&env.pool)
        .await
        .unwrap_or(0);
        if fresh > 0 {
            return since(fault);
        }
        assert!(fault.elapsed() < Duration::from_secs(240), "no job delivered after the fault\n{}", farm.log_tails(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_on_a_cluster_loses_nothing_when_nodes_fail() {
    let cluster = Cluster::start();
    // The workers' list also names an address where nothing answers and the single local broker, which is not
    // in the cluster: both are passed over.
    let stray = scenequeue_core::config::Services::default().amqp_url;
    let env = TestEnv::on(cluster.database_url.clone(), cluster.amqp_url.clone()).await;
    let worker_list = format!("{},{},{}", cluster.amqp_url, cluster.nowhere(), stray);
    let logs = env.dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let farm = Farm::new();
    let port = free_port();
    let scheduler = Recipe::of(
        scenequeue(&env, &cluster).args(super::SCHEDULER_ARGS).args(["--http-addr", &format!("127.0.0.1:{port}")]),
    );
    farm.add("scheduler", &logs, move || scheduler.command());
    for w in 0..WORKERS {
        let worker = Recipe::of(scenequeue(&env, &cluster).env("SCENEQUEUE_AMQP_URL", &worker_list).args([
            "worker",
            "--model",
            "nsnet2-48k",
            "--threads",
            "1",
            "--lease-s",
            "8",
            "--grace-s",
            "2",
            "--retry-backoff-s",
            "1",
        ]));
        farm.add(&format!("worker-{w}"), &logs, move || worker.command());
    }
    let mut report = Vec::new();

    // A node of another cluster is refused by name: the submission stores its batch and says why it published
    // nothing; the farm's scheduler publishes it.
    let refused = scenequeue(&env, &cluster)
        .env("SCENEQUEUE_AMQP_URL", &stray)
        .args(["submit", "--model", "nsnet2-48k", "--out"])
        .arg(env.dir.join("stray-out"))
        .arg({
            let input = env.dir.join("stray-in");
            std::fs::create_dir_all(&input).unwrap();
            write_wav(&input.join("one.wav"), &speech_like(48_000, 8.0, 7), 48_000, 1);
            input
        })
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("belongs to cluster"), "{said}");
    report.push(format!(
        "a node of another cluster: {}",
        said.lines().find(|l| l.contains("belongs to cluster")).unwrap_or_default().trim()
    ));

    // 1. The quorum queue's leader node is killed, then started again.
    let phase = submit(&env, &cluster, "leader", 1000).await;
    until_flowing(&env, &farm, &phase).await;
    let leader = cluster.ctl(&["mq-leader", &env.services.queue]);
    let (clock, before) = before_fault(&env).await;
    cluster.ctl(&["kill-mq", &leader]);
    let fault = Instant::now();
    let during = metrics(port).await;
    let recovered = until_more_jobs(&env, &farm, before, fault).await;
    let fresh = until_fresh_job(&env, &farm, clock, fault).await;
    report.push(format!(
        "broker node {leader}, the queue's leader, killed: the next job completed {recovered} s later, the first job started after it {fresh} s"
    ));
    report.push(format!("  /metrics during it: {during}"));
    cluster.ctl(&["start-mq", &leader]);
    report.push(check(&env, &farm, &phase, "leader killed").await);

    // 2. A broker node (the leader again) is cut off from the other two, then joined again. A publish on the
    // minority side is never confirmed.
    let phase = submit(&env, &cluster, "partition", 2000).await;
    until_flowing(&env, &farm, &phase).await;
    let probe = Topology::new(&format!("{}.probe", env.services.queue));
    {
        let c = mq::connect(&cluster.amqp_url).await.unwrap();
        probe.declare(&c.create_channel().await.unwrap()).await.unwrap();
        c.close(200, "ok").await.ok();
    }
    let cut = cluster.ctl(&["mq-leader", &env.services.queue]);
    let (clock, before) = before_fault(&env).await;
    cluster.ctl(&["cut-mq", &cut]);
    let fault = Instant::now();
    let minority = tokio::time::timeout(Duration::from_secs(30), async {
        let c = mq::connect(&cluster.amqp_node(&cut)).await?;
        let publisher = Publisher::new(&c, &probe).await?;
        publisher.publish_jobs(&[JobId::new()]).await
    })
    .await;
    let minority = match minority {
        Ok(Ok(confirmed)) => {
            assert!(confirmed.is_empty(), "the minority side confirmed a publish: split brain");
            "not confirmed".to_string()
        }
        Ok(Err(e)) => format!("refused: {e}"),
        Err(_) => "no confirm within 30 s".into(),
    };
    let during = metrics(port).await;
    let recovered = until_more_jobs(&env, &farm, before, fault).await;
    let fresh = until_fresh_job(&env, &farm, clock, fault).await;
    report.push(format!(
        "broker node {cut} partitioned from the other two: the next job completed {recovered} s later, the first job started after it {fresh} s"
    ));
    report.push(format!("  a publish on the minority side: {minority}"));
    report.push(format!("  /metrics during it: {during}"));
    // Held until the node has noticed it is in the minority (pause_minority: it stops serving clients).
    let held = Instant::now();
    while cluster.ctl(&["mq-running", &cut]) != "0" {
        assert!(held.elapsed() < Duration::from_secs(120), "node {cut} never paused\n{}", farm.log_tails(20));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.push(format!("  node {cut} paused itself {} s after the cut", since(fault)));
    cluster.ctl(&["heal-mq", &cut]);
    let healed = Instant::now();
    while cluster.ctl(&["mq-running", &cut]) != "3" {
        assert!(healed.elapsed() < Duration::from_secs(180), "node {cut} never rejoined\n{}", farm.log_tails(20));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.push(format!("  healed: node {cut} back in the cluster {} s later", since(healed)));
    report.push(check(&env, &farm, &phase, "partition").await);
    let probe_depth = {
        let c = mq::connect(&cluster.amqp_url).await.unwrap();
        let depth = mq::queue_depth(&c, &probe.queue).await.unwrap();
        probe.delete(&c.create_channel().await.unwrap()).await.ok();
        c.close(200, "ok").await.ok();
        depth.messages
    };
    report.push(format!("  the minority's unconfirmed publish in the queue after healing: {probe_depth} message(s)"));

    // 3. The PostgreSQL primary is killed: the standby is promoted; the old primary comes back as the standby.
    let phase = submit(&env, &cluster, "failover", 3000).await;
    until_flowing(&env, &farm, &phase).await;
    let primary = cluster.ctl(&["pg-primary"]);
    let (clock, before) = before_fault(&env).await;
    cluster.ctl(&["kill-pg", &primary]);
    let fault = Instant::now();
    let during = metrics(port).await;
    let recovered = until_more_jobs(&env, &farm, before, fault).await;
    let fresh = until_fresh_job(&env, &farm, clock, fault).await;
    let promoted = cluster.ctl(&["pg-primary"]);
    assert!(!promoted.is_empty() && promoted != primary, "the standby was promoted: {promoted:?}, was {primary}");
    report.push(format!(
        "PostgreSQL primary (node {primary}) killed: node {promoted} promoted, the next job completed {recovered} s later, the first job started after it {fresh} s"
    ));
    report.push(format!("  /metrics during it: {during}"));
    let back = Instant::now();
    cluster.ctl(&["start-pg", &primary]);
    report.push(format!("  the old primary back as the standby after {} s", since(back)));
    report.push(check(&env, &farm, &phase, "failover").await);

    // 4. Every broker node down: the workers wait and say so on the dashboard; once the nodes are back, the batch
    // finishes with nothing lost.
    let phase = submit(&env, &cluster, "all-down", 4000).await;
    until_flowing(&env, &farm, &phase).await;
    for n in ["1", "2", "3"] {
        cluster.ctl(&["kill-mq", n]);
    }
    let down = Instant::now();
    let page = loop {
        let page = http_get(port, "/").await.unwrap_or_default();
        if page.matches("RabbitMQ unreachable").count() >= WORKERS {
            break page;
        }
        assert!(
            down.elapsed() < Duration::from_secs(120),
            "the dashboard never said so\n{page}\n{}",
            farm.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let said = page.lines().find(|l| l.contains("RabbitMQ unreachable")).unwrap_or_default();
    let said = said.split("RabbitMQ unreachable").nth(1).and_then(|t| t.split('<').next()).unwrap_or_default();
    report.push(format!(
        "every broker node down: every worker's row on the dashboard says \"RabbitMQ unreachable{said}\" {} s later",
        since(down)
    ));
    let (clock, _) = before_fault(&env).await;
    cluster.ctl(&["start-mq", "all"]);
    let back = Instant::now();
    let fresh = until_fresh_job(&env, &farm, clock, back).await;
    report.push(format!(
        "  nodes started again after {} s: the first job started after that completed {fresh} s later",
        since(down)
    ));
    report.push(check(&env, &farm, &phase, "all down").await);

    // The stray submission's batch was published by the scheduler and finished too.
    let stray_batch: BatchId =
        sqlx::query_scalar("SELECT id FROM batches ORDER BY created_at LIMIT 1").fetch_one(&env.pool).await.unwrap();
    let stray_phase = Phase {
        batch: stray_batch,
        scenes: env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", stray_batch).await,
        out: env.dir.join("stray-out"),
    };
    report.push(check(&env, &farm, &stray_phase, "stray submission").await);

    let processes = farm.report();
    let tails = farm.log_tails(30);
    farm.shutdown();
    assert!(
        processes.iter().all(|(_, starts, _, alive)| *alive && *starts == 1),
        "every process lives: {processes:?}\n{tails}"
    );
    let passed_over = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .map(|log| log.lines().filter(|l| l.contains("broker node passed over")).count())
        .sum::<usize>();
    for line in report {
        println!("nodes: {line}");
    }
    println!("nodes: every process alive and never restarted: {processes:?}; broker nodes passed over: {passed_over}");
    drop(env);
    drop(cluster);
}
