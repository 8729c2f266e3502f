//! The dashboard in a real headless Chromium (Debian's `chromium`, driven over the DevTools protocol): it loads
//! with no console error, a running batch's progress changes on the open page while a worker runs (server-sent
//! events), an action works from the page, and the scene page draws both spectrograms. Screenshots go to
//! target/dashboard-screenshots/.

mod cdp;

use crate::common;
use crate::common::http;
use crate::common::{TestEnv, speech_like, submit_request, write_wav};
use scenequeue_api::ApiConfig;
use scenequeue_core::ids::BatchId;
use scenequeue_scheduler::submit;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "dashboard-test-token";

fn screenshots() -> PathBuf {
    common::root().join("target/dashboard-screenshots")
}

async fn batch_of(env: &TestEnv, name: &str, seconds: &[f64]) -> BatchId {
    let input = env.dir.join(name);
    std::fs::create_dir_all(&input).unwrap();
    for (i, s) in seconds.iter().enumerate() {
        write_wav(&input.join(format!("{name}-{i}.wav")), &speech_like(48_000, *s, 11 + i as u64), 48_000, 1);
    }
    let (connection, publisher) = env.publisher().await;
    let batch = submit(&env.pool, &publisher, &submit_request(env, vec![input], 4.0)).await.unwrap().batch;
    connection.close(200, "ok").await.ok();
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_progress_runs_actions_and_plays_scenes() {
    let env = TestEnv::new().await;
    let running = batch_of(&env, "talks", &[9.0, 9.0, 6.0]).await;
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let config = ApiConfig::new("127.0.0.1:0".parse().unwrap(), Some(TOKEN), None).unwrap();
    tokio::spawn(scenequeue_api::serve(env.pool.clone(), config, stop.clone(), Some(tx)));
    let addr = rx.await.unwrap();
    let base = format!("http://{addr}");

    let browser = cdp::Browser::launch().await;
    let mut tab = browser.tab().await;
    tab.open(&format!("{base}/")).await;
    tab.wait_for("Number(document.body.dataset.snapshots || 0) >= 1").await;
    assert_eq!(tab.eval("document.querySelector('[data-field=progress]').getAttribute('aria-valuenow')").await, "0");
    tab.screenshot(&screenshots().join("overview-queued.png")).await;

    // A worker runs while the page stays open: its progress bar moves without a reload.
    tab.eval("window.__loaded = performance.timeOrigin").await;
    let worker = tokio::spawn({
        let (config, services) = (env.worker_config(), env.services.clone());
        async move { scenequeue_worker::run(config, services, CancellationToken::new().into()).await.unwrap() }
    });
    tab.wait_for("Number(document.querySelector('[data-field=progress]').getAttribute('aria-valuenow')) > 0").await;
    tab.wait_for("document.querySelector('[data-field=progress]').getAttribute('aria-valuenow') === '100'").await;
    // The batch's own row follows too: its bar, its audio done and its state.
    let row = format!("batch-{running}");
    tab.wait_for(&format!(
        "document.querySelector('.bar[data-field=\"{row}\"]').getAttribute('aria-valuenow') === '100'"
    ))
    .await;
    tab.wait_for(&format!("document.querySelector('[data-field=\"{row}-state\"]').textContent === 'finished'")).await;
    assert_eq!(
        tab.eval(&format!("document.querySelector('[data-field=\"{row}-done\"]').textContent")).await,
        tab.eval("document.querySelector('[data-field=done]').textContent").await,
        "the only batch's audio done is the farm's"
    );
    assert!(
        tab.eval("window.__loaded === performance.timeOrigin").await.as_bool().unwrap(),
        "the page was not reloaded"
    );
    assert_eq!(tab.eval("document.querySelector('[data-job-state=running]').textContent").await, "0");
    worker.await.unwrap();
    tab.screenshot(&screenshots().join("overview-finished.png")).await;

    // Pausing live updates stops them; resuming brings a fresh snapshot.
    let before = tab.eval("Number(document.body.dataset.snapshots)").await.as_f64().unwrap();
    tab.eval("document.getElementById('live-toggle').click()").await;
    assert_eq!(tab.eval("document.getElementById('live-status').textContent").await, "paused");
    tab.eval("document.getElementById('live-toggle').click()").await;
    tab.wait_for(&format!("Number(document.body.dataset.snapshots) > {before}")).await;

    // An action from the page: pause a waiting batch with the token typed in.
    let waiting = batch_of(&env, "later", &[6.0]).await;
    tab.open(&format!("{base}/")).await;
    // The worker's row charts its resident memory after each job (a CPU worker has no GPU figures).
    let charted = tab.eval("document.querySelector('svg[aria-label^=\"host memory after each job\"]') !== null").await;
    assert_eq!(charted, true, "the worker row charts its memory after each job");
    tab.eval(&format!(
        "(() => {{ const t = document.getElementById('api-token'); t.value = '{TOKEN}';
             t.dispatchEvent(new Event('change'));
             document.querySelector('[data-action=\"/api/v1/batches/{waiting}/pause\"]').click(); }})()"
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let paused: bool = sqlx::query_scalar("SELECT paused FROM batches WHERE id = $1")
            .bind(waiting)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        if paused {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pause from the page took effect");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tab.wait_for(&format!("document.querySelector('[data-action=\"/api/v1/batches/{waiting}/resume\"]') !== null"))
        .await;
    tab.screenshot(&screenshots().join("overview-action.png")).await;

    // The batch page and a scene page with both spectrograms drawn.
    tab.open(&format!("{base}/batches/{running}")).await;
    tab.wait_for("Number(document.body.dataset.snapshots || 0) >= 1").await;
    tab.screenshot(&screenshots().join("batch.png")).await;
    let scene: uuid::Uuid = sqlx::query_scalar("SELECT id FROM scenes WHERE batch_id = $1 ORDER BY id LIMIT 1")
        .bind(running)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    tab.open(&format!("{base}/scenes/{scene}")).await;
    tab.wait_for("[...document.querySelectorAll('canvas.spectrogram')].every(c => c.dataset.drawn)").await;
    assert_eq!(
        tab.eval("[...document.querySelectorAll('canvas.spectrogram')].map(c => c.dataset.drawn).join()").await,
        "true,true"
    );
    tab.screenshot(&screenshots().join("scene.png")).await;

    assert!(tab.errors.is_empty(), "console errors: {:#?}", tab.errors);
    // A file the database does not know is never served, whatever the path asks for.
    let outside = http::get(addr, "/files/scenes/..%2F..%2Fetc%2Fpasswd/original").await;
    assert_eq!(outside.status, 400, "{}", outside.body);
    let unknown = http::get(addr, &format!("/files/scenes/{}/enhanced", uuid::Uuid::new_v4())).await;
    assert_eq!(unknown.status, 404);
    drop(browser);
    stop.cancel();
    env.cleanup().await;
}
