//! The Rust state enums and the Postgres enums of the same names can never drift apart: same labels, same order,
//! and the same names in JSON (the API's bodies, the result rows written from JSON).

use crate::common::TestEnv;
use scenequeue_core::states::{BatchState, JobState, MediaState, OutputFlag, RecoveryStep, SceneState, WorkerState};
use serde::Serialize;

async fn labels(env: &TestEnv, type_name: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT unnest(enum_range(NULL::{type_name}))::text"))
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// Each state's name as `as_str` spells it, checked against its JSON name on the way.
fn names<T: Copy + Serialize>(all: &[T], name: impl Fn(T) -> &'static str) -> Vec<String> {
    all.iter()
        .map(|&s| {
            assert_eq!(serde_json::to_value(s).unwrap(), name(s), "JSON and Postgres spell {} alike", name(s));
            name(s).to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_states_match_the_postgres_enums() {
    let env = TestEnv::new().await;
    assert_eq!(labels(&env, "batch_state").await, names(BatchState::ALL, BatchState::as_str));
    assert_eq!(labels(&env, "media_state").await, names(MediaState::ALL, MediaState::as_str));
    assert_eq!(labels(&env, "scene_state").await, names(SceneState::ALL, SceneState::as_str));
    assert_eq!(labels(&env, "job_state").await, names(JobState::ALL, JobState::as_str));
    assert_eq!(labels(&env, "worker_state").await, names(WorkerState::ALL, WorkerState::as_str));
    assert_eq!(labels(&env, "recovery_step").await, names(RecoveryStep::ALL, RecoveryStep::as_str));
    assert_eq!(labels(&env, "output_flag").await, names(OutputFlag::ALL, OutputFlag::as_str));
    // Binding an enum and reading it back goes through the same names.
    let back: JobState =
        sqlx::query_scalar("SELECT $1::job_state").bind(JobState::Dead).fetch_one(&env.pool).await.unwrap();
    assert_eq!(back, JobState::Dead);
    assert_eq!(JobState::Dead.to_string(), "dead");
    env.cleanup().await;
}
