//! The operator's view over real HTTP, on the real Postgres and RabbitMQ: every read endpoint with filters and
//! pagination, every action (token required, effect visible in the database and through the API), error bodies,
//! and /metrics parsed by a Prometheus text-format parser.

use crate::common::http;
use crate::common::{TestEnv, speech_like, submit_request, write_wav};
use scenequeue_api::ApiConfig;
use scenequeue_core::ids::{BatchId, WorkerId};
use scenequeue_core::states::WorkerState;
use scenequeue_core::workers::{self, WorkerInfo};
use scenequeue_scheduler::submit;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-0123456789";

/// The server on an ephemeral port, stopped when the guard drops.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(env: &TestEnv, token: Option<&str>) -> Server {
    let config = ApiConfig::new("127.0.0.1:0".parse().unwrap(), token, None).unwrap();
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(scenequeue_api::serve(env.pool.clone(), config, stop.clone(), Some(tx)));
    Server { addr: rx.await.expect("the server binds"), stop }
}

/// Two recordings (9 s and 6 s) in jobs of 4 s, enhanced by a worker until the queue is empty.
async fn finished_batch(env: &TestEnv) -> BatchId {
    let input = env.dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("a.wav"), &speech_like(48_000, 9.0, 7), 48_000, 1);
    write_wav(&input.join("b.wav"), &speech_like(48_000, 6.0, 8), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let batch = submit(&env.pool, &publisher, &submit_request(env, vec![input], 4.0)).await.unwrap().batch;
    connection.close(200, "ok").await.ok();
    scenequeue_worker::run(env.worker_config(), env.services.clone(), CancellationToken::new().into()).await.unwrap();
    batch
}

async fn queued_batch(env: &TestEnv) -> BatchId {
    let input = env.dir.join("queued");
    std::fs::create_dir_all(&input).unwrap();
    write_wav(&input.join("c.wav"), &speech_like(48_000, 9.0, 9), 48_000, 1);
    let (connection, publisher) = env.publisher().await;
    let batch = submit(&env.pool, &publisher, &submit_request(env, vec![input], 4.0)).await.unwrap().batch;
    connection.close(200, "ok").await.ok();
    batch
}

fn assert_error(answer: &http::Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_endpoints_filter_page_and_agree_with_the_database() {
    let env = TestEnv::new().await;
    let batch = finished_batch(&env).await;
    let server = serve(&env, None).await;
    let addr = server.addr;

    let overview = http::get(addr, "/api/v1/overview").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let o = overview.json();
    assert!((o["progress"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{o}");
    let total_h = o["audio_h_total"].as_f64().unwrap();
    assert!(total_h > 10.0 / 3600.0 && total_h <= 15.0 / 3600.0, "{o}");
    assert!(o["throughput_h_per_h"].as_f64().unwrap() > 0.0, "a worker ran in the last hour: {o}");
    assert_eq!(o["throughput_by_worker"].as_array().unwrap().len(), 1);

    // Batches: the finished one and a queued one, newest first, one per page.
    let queued = queued_batch(&env).await;
    let first = http::get(addr, "/api/v1/batches?limit=1").await.json();
    assert_eq!(first["items"][0]["id"], queued.to_string());
    let next = first["next"].as_str().expect("a next page");
    let second = http::get(addr, &format!("/api/v1/batches?limit=1&after={next}")).await.json();
    assert_eq!(second["items"][0]["id"], batch.to_string());
    assert!(second["next"].is_null(), "{second}");
    let b = &second["items"][0];
    assert_eq!(b["state"], "finished");
    assert_eq!(b["progress"]["succeeded"], b["progress"]["scenes"]);
    let one = http::get(addr, &format!("/api/v1/batches/{batch}")).await.json();
    assert_eq!(one["progress"], b["progress"]);

    // Jobs by batch and state, paged: the pages together are every job, each once.
    let jobs: i64 = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1", batch).await;
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = http::get(addr, &format!("/api/v1/jobs?batch={batch}&state=succeeded&limit=2{after}")).await.json();
        for job in page["items"].as_array().unwrap() {
            assert_eq!(job["state"], "succeeded");
            seen.push(job["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, jobs);
    seen.dedup();
    assert_eq!(seen.len() as i64, jobs);
    let job = http::get(addr, &format!("/api/v1/jobs/{}", seen[0])).await.json();
    assert_eq!(job["batch_id"], batch.to_string());

    let scenes = http::get(addr, &format!("/api/v1/scenes?batch={batch}&limit=500")).await.json();
    let scene_count = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    assert_eq!(scenes["items"].as_array().unwrap().len() as i64, scene_count);
    assert!(scenes["items"].as_array().unwrap().iter().all(|s| s["has_output"] == true));
    let recordings = http::get(addr, &format!("/api/v1/recordings?batch={batch}")).await.json();
    assert_eq!(recordings["items"].as_array().unwrap().len(), 2);
    let media = recordings["items"][0]["id"].as_str().unwrap();
    let of_one = http::get(addr, &format!("/api/v1/scenes?recording={media}")).await.json();
    assert!(of_one["items"].as_array().unwrap().iter().all(|s| s["media_id"] == media));

    let workers = http::get(addr, "/api/v1/workers").await.json();
    assert_eq!(workers.as_array().unwrap().len(), 1);
    assert!(workers[0]["jobs_done"].as_i64().unwrap() >= 1, "{workers}");
    let gpu = http::get(addr, &format!("/api/v1/workers/{}/gpu", workers[0]["id"].as_str().unwrap())).await.json();
    assert_eq!(gpu.as_array().unwrap().len() as i64, jobs, "{gpu}");
    // A CPU worker has no GPU figures, but its resident memory after each job.
    assert!(
        gpu.as_array()
            .unwrap()
            .iter()
            .all(|p| p["gpu_after_mb"].is_null() && p["rss_after_mb"].as_f64().unwrap() > 10.0),
        "{gpu}"
    );
    // The dashboard reads several workers' series in one query: the same points, in the same order.
    let id: WorkerId = workers[0]["id"].as_str().unwrap().parse().unwrap();
    let nobody = WorkerId::new();
    let series = scenequeue_api::gpu_series_of(&env.pool, &[nobody, id], 100).await.unwrap();
    assert!(series[0].0 == nobody && series[0].1.is_empty());
    let ids: Vec<String> = series[1].1.iter().map(|p| p.job_id.to_string()).collect();
    let expected: Vec<String> = gpu.as_array().unwrap().iter().map(|p| p["job_id"].as_str().unwrap().into()).collect();
    assert_eq!((series[1].0, ids), (id, expected));
    assert!(http::get(addr, "/api/v1/errors").await.json().as_array().unwrap().is_empty());

    // Error bodies.
    assert_error(&http::get(addr, &format!("/api/v1/batches/{}", uuid::Uuid::new_v4())).await, 404, "not_found");
    assert_error(&http::get(addr, "/api/v1/jobs?limit=100000").await, 400, "bad_request");
    assert_error(&http::get(addr, "/api/v1/nothing-here").await, 404, "not_found");
    let bad = http::get(addr, "/api/v1/jobs?state=sleeping").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    drop(server);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_and_take_effect() {
    let env = TestEnv::new().await;
    let batch = queued_batch(&env).await;
    let worker = WorkerId::new();
    let info = WorkerInfo { id: worker, device: "cpu".into(), session_policy: "per-job".into(), gpu: None };
    workers::register(&env.pool, &info).await.unwrap();

    // A server without a token refuses every action.
    let closed = serve(&env, None).await;
    assert_error(
        &http::post(closed.addr, &format!("/api/v1/batches/{batch}/pause"), Some(TOKEN), None).await,
        403,
        "actions_disabled",
    );
    drop(closed);

    let server = serve(&env, Some(TOKEN)).await;
    let addr = server.addr;
    let pause = format!("/api/v1/batches/{batch}/pause");
    let missing = http::post(addr, &pause, None, None).await;
    assert_error(&missing, 401, "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_error(&http::post(addr, &pause, Some("test-token-012345678"), None).await, 401, "unauthorized");
    assert_error(&http::post(addr, &pause, Some("wrong"), None).await, 401, "unauthorized");
    let paused: bool =
        sqlx::query_scalar("SELECT paused FROM batches WHERE id = $1").bind(batch).fetch_one(&env.pool).await.unwrap();
    assert!(!paused, "refused actions change nothing");

    // Pause and resume.
    assert_eq!(http::post(addr, &pause, Some(TOKEN), None).await.status, 200);
    assert_eq!(http::get(addr, &format!("/api/v1/batches/{batch}")).await.json()["paused"], true);
    assert_eq!(http::post(addr, &format!("/api/v1/batches/{batch}/resume"), Some(TOKEN), None).await.status, 200);
    assert_eq!(http::get(addr, &format!("/api/v1/batches/{batch}")).await.json()["paused"], false);

    // Priority, with a checked body.
    let priority = format!("/api/v1/batches/{batch}/priority");
    assert_eq!(http::post(addr, &priority, Some(TOKEN), Some(r#"{"priority": 5}"#)).await.status, 200);
    assert_eq!(http::get(addr, &format!("/api/v1/batches/{batch}")).await.json()["priority"], 5);
    assert_error(&http::post(addr, &priority, Some(TOKEN), Some(r#"{"priority": "high"}"#)).await, 400, "bad_request");

    // Cancel: every job not yet started is dead; the overview shows it.
    let cancel = http::post(addr, &format!("/api/v1/batches/{batch}/cancel"), Some(TOKEN), None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let jobs = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1", batch).await;
    assert_eq!(cancel.json()["jobs"], jobs);
    let o = http::get(addr, &format!("/api/v1/overview?batch={batch}")).await.json();
    let dead = o["counts"]["jobs"].as_array().unwrap().iter().find(|t| t["state"] == "dead").unwrap()["count"].clone();
    assert_eq!(dead, jobs);
    let errors = http::get(addr, &format!("/api/v1/errors?batch={batch}")).await.json();
    assert!(
        errors.as_array().unwrap().iter().any(|g| g["kind"] == "scene"
            && g["class"] == "cancelled by an operator"
            && g["example"] == "cancelled by an operator"
            && g["recordings"][0].as_str().unwrap().ends_with("c.wav")),
        "{errors}"
    );

    // Retry one scene's job, then the whole batch.
    let scene: uuid::Uuid = sqlx::query_scalar("SELECT id FROM scenes WHERE batch_id = $1 LIMIT 1")
        .bind(batch)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let one = http::post(addr, &format!("/api/v1/scenes/{scene}/retry"), Some(TOKEN), None).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["jobs"], 1);
    let all = http::post(addr, &format!("/api/v1/batches/{batch}/retry"), Some(TOKEN), None).await.json();
    assert_eq!(all["jobs"], jobs - 1);
    assert_eq!(env.count("SELECT count(*) FROM jobs WHERE batch_id = $1 AND state = 'pending'", batch).await, jobs);
    let job_retry = http::post(addr, &format!("/api/v1/jobs/{}/retry", uuid::Uuid::new_v4()), Some(TOKEN), None).await;
    assert_error(&job_retry, 404, "not_found");

    // Drain: the worker's next heartbeat sees it.
    assert_eq!(http::post(addr, &format!("/api/v1/workers/{worker}/drain"), Some(TOKEN), None).await.status, 200);
    assert!(workers::beat(&env.pool, worker, WorkerState::Idle, None, None).await.unwrap());
    assert_eq!(http::get(addr, "/api/v1/workers").await.json()[0]["drain_requested"], true);
    assert_error(
        &http::post(addr, &format!("/api/v1/workers/{}/drain", WorkerId::new()), Some(TOKEN), None).await,
        404,
        "not_found",
    );
    drop(server);
    env.cleanup().await;
}

/// Two servers, each with its own pool and listener: an action through one reaches a browser of the other
/// through LISTEN/NOTIFY, as a `changed` event naming the batch followed by a snapshot that shows the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_server_reaches_the_live_view_of_another() {
    let env = TestEnv::new().await;
    let batch = queued_batch(&env).await;
    let serve_own_pool = |token: Option<&'static str>| {
        let url = env.services.database_url.clone();
        async move {
            let pool = scenequeue_core::db::connect(&url, 4).await.unwrap();
            let config = ApiConfig::new("127.0.0.1:0".parse().unwrap(), token, None).unwrap();
            let stop = CancellationToken::new();
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(scenequeue_api::serve(pool, config, stop.clone(), Some(tx)));
            Server { addr: rx.await.expect("the server binds"), stop }
        }
    };
    let (one, other) = (serve_own_pool(Some(TOKEN)).await, serve_own_pool(None).await);

    let mut live = http::EventStream::open(other.addr, "/api/v1/events").await;
    let (first, _) = live.next().await;
    assert_eq!(first, "overview");
    let (second, batches) = live.next().await;
    assert_eq!(second, "batches");
    let shown: serde_json::Value = serde_json::from_str(&batches).unwrap();
    assert_eq!(shown[0]["id"], batch.to_string());
    assert_eq!(shown[0]["paused"], false);

    let pause = http::post(one.addr, &format!("/api/v1/batches/{batch}/pause"), Some(TOKEN), None).await;
    assert_eq!(pause.status, 200, "{}", pause.body);
    let wait = async {
        loop {
            let (event, data) = live.next().await;
            if event == "changed" {
                let named: Vec<String> = serde_json::from_str(&data).unwrap();
                if named.contains(&batch.to_string()) {
                    break;
                }
            }
        }
        loop {
            let (event, data) = live.next().await;
            if event == "batches" {
                return serde_json::from_str::<serde_json::Value>(&data).unwrap();
            }
        }
    };
    let after = tokio::time::timeout(std::time::Duration::from_secs(60), wait).await.expect("the change arrives");
    assert_eq!(after[0]["paused"], true, "{after}");
    drop((one, other));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_zeros_for_empty_states() {
    let env = TestEnv::new().await;
    let server = serve(&env, None).await;
    // An empty farm: the gauges are there, at 0.
    let empty = http::get(server.addr, "/metrics").await;
    assert_eq!(empty.status, 200);
    let parsed = prometheus_parse::Scrape::parse(empty.body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a single value"),
        }
    };
    assert_eq!(value(&parsed, "scenequeue_backlog_audio_seconds", None), 0.0);
    assert_eq!(value(&parsed, "scenequeue_workers", Some(("state", "busy"))), 0.0);

    let batch = finished_batch(&env).await;
    // One job took exactly a bucket's bound (it counts in that bucket), another 20 s.
    sqlx::query(
        "UPDATE jobs SET started_at = finished_at - CASE WHEN id = (SELECT id FROM jobs ORDER BY id LIMIT 1) THEN interval '5 s'
                                                         ELSE interval '20 s' END
         WHERE id IN (SELECT id FROM jobs ORDER BY id LIMIT 2)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let body = http::get(server.addr, "/metrics").await.body;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await as f64;
    let jobs = env.count("SELECT count(*) FROM jobs WHERE batch_id = $1", batch).await as f64;
    assert_eq!(value(&scrape, "scenequeue_scenes", Some(("state", "succeeded"))), scenes);
    assert_eq!(value(&scrape, "scenequeue_scenes", Some(("state", "failed"))), 0.0);
    assert_eq!(value(&scrape, "scenequeue_jobs", Some(("state", "succeeded"))), jobs);
    let audio = value(&scrape, "scenequeue_audio_enhanced_seconds_total", None);
    assert!(audio > 10.0 && audio <= 15.0, "{audio}");
    assert_eq!(value(&scrape, "scenequeue_audio_submitted_seconds_total", None), audio);
    assert_eq!(value(&scrape, "scenequeue_backlog_audio_seconds", None), 0.0);
    assert_eq!(value(&scrape, "scenequeue_workers", Some(("state", "stopped"))), 1.0);
    let histogram =
        scrape.samples.iter().find(|s| s.metric == "scenequeue_job_duration_seconds").expect("job duration");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, jobs, "every job falls in +Inf");
            assert_eq!(buckets.iter().find(|b| b.less_than == 5.0).unwrap().count, jobs - 1.0);
            assert_eq!(buckets.iter().find(|b| b.less_than == 1.0).unwrap().count, jobs - 2.0);
            // Each bucket counts the jobs that took at most its bound, as a direct count says.
            for b in buckets.iter().filter(|b| b.less_than.is_finite()) {
                let direct: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM jobs WHERE extract(epoch FROM finished_at - started_at)::float8 <= $1",
                )
                .bind(b.less_than)
                .fetch_one(&env.pool)
                .await
                .unwrap();
                assert_eq!(b.count, direct as f64, "bucket le={}", b.less_than);
            }
        }
        other => panic!("job duration is not a histogram: {other:?}"),
    }

    // Two failures whose reasons differ only in a path are one reason class, in /metrics and in the errors list.
    sqlx::query(
        "UPDATE scenes SET state = 'failed', error = 'writing the output failed: ' || id || '.wav: disk full'
         WHERE id IN (SELECT id FROM scenes WHERE batch_id = $1 ORDER BY id LIMIT 2)",
    )
    .bind(batch)
    .execute(&env.pool)
    .await
    .unwrap();
    let body = http::get(server.addr, "/metrics").await.body;
    let failed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(value(&failed, "scenequeue_failed_scenes", Some(("reason", "writing the output failed"))), 2.0);
    assert_eq!(value(&failed, "scenequeue_scenes", Some(("state", "failed"))), 2.0);
    let groups = http::get(server.addr, &format!("/api/v1/errors?batch={batch}")).await.json();
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["class"], "writing the output failed");
    assert_eq!(groups[0]["count"], 2);
    assert!(groups[0]["example"].as_str().unwrap().ends_with(".wav: disk full"), "{groups:?}");
    assert!(groups[0]["recordings"][0].as_str().unwrap().ends_with(".wav"), "{groups:?}");

    // No label carries an id.
    for sample in &failed.samples {
        for (_, v) in sample.labels.iter() {
            assert!(uuid::Uuid::parse_str(v).is_err(), "{} has an id label", sample.metric);
        }
    }
    drop(server);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reads_print_json_for_scripts_and_sentences_for_people() {
    let env = TestEnv::new().await;
    let batch = queued_batch(&env).await;
    let worker = WorkerId::new();
    let info = WorkerInfo { id: worker, device: "cpu".into(), session_policy: "per-job".into(), gpu: None };
    workers::register(&env.pool, &info).await.unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenequeue"))
            .env("SCENEQUEUE_DATABASE_URL", &env.services.database_url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let status: serde_json::Value = serde_json::from_str(&run(&["status", &batch.to_string(), "--json"])).unwrap();
    let scenes = env.count("SELECT count(*) FROM scenes WHERE batch_id = $1", batch).await;
    let waiting = status["counts"]["scenes"].as_array().unwrap().iter().find(|t| t["state"] == "pending").unwrap();
    assert_eq!(waiting["count"], scenes, "{status}");
    assert_eq!(status["progress"], 0.0);
    let list: serde_json::Value = serde_json::from_str(&run(&["workers", "--json"])).unwrap();
    assert_eq!(list[0]["id"], worker.to_string());
    let text = run(&["workers"]);
    assert!(text.starts_with("1 worker seen in the last day\n"), "{text}");
    assert!(text.contains("0 jobs done"), "{text}");
    env.cleanup().await;
}
