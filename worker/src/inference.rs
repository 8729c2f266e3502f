//! The inference thread: one OS thread owns the sessions and runs every model call, so inference never blocks
//! the async runtime and at most one session exists per worker. The async side talks to it through a channel
//! of capacity one and awaits each reply.

use crate::model::ModelError;
use crate::runtime::Runtime;
use crate::scene::{SceneError, SceneOutput, SceneTask, process};
use crate::sessions::{SessionPolicy, Sessions};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Why a scene produced no output.
#[derive(Debug, thiserror::Error)]
pub enum SceneFailure {
    /// The model could not be loaded: a problem of this worker, not of the scene; the job is retried.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The scene itself failed (unreadable span, inference error): recorded on the scene.
    #[error(transparent)]
    Scene(#[from] SceneError),
}

#[derive(Debug, thiserror::Error)]
#[error("the inference thread has stopped")]
pub struct ThreadGone;

enum Command {
    Warm { model: String, reply: oneshot::Sender<Result<(), ModelError>> },
    Scene { model: String, task: Box<SceneTask>, reply: oneshot::Sender<Result<SceneOutput, SceneFailure>> },
    JobDone { reply: oneshot::Sender<(u64, Duration)> },
}

#[derive(Clone)]
pub struct InferenceHandle {
    tx: mpsc::Sender<Command>,
}

impl InferenceHandle {
    pub fn start(runtime: Runtime, model_dir: PathBuf, policy: SessionPolicy) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(1);
        std::thread::Builder::new().name("inference".into()).spawn(move || {
            let mut sessions = Sessions::new(runtime, model_dir, policy);
            while let Some(command) = rx.blocking_recv() {
                match command {
                    Command::Warm { model, reply } => {
                        let _ = reply.send(sessions.get(&model).map(|_| ()));
                    }
                    Command::Scene { model, task, reply } => {
                        let result = sessions
                            .get(&model)
                            .map_err(SceneFailure::from)
                            .and_then(|enhancer| process(enhancer, &task).map_err(SceneFailure::from));
                        let _ = reply.send(result);
                    }
                    Command::JobDone { reply } => {
                        sessions.job_done();
                        let _ = reply.send(sessions.created());
                    }
                }
            }
        })?;
        Ok(Self { tx })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, ThreadGone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ThreadGone)?;
        answer.await.map_err(|_| ThreadGone)
    }

    /// Creates the session for `model` now (checks the model at start-up and pays CUDA initialisation early).
    pub async fn warm(&self, model: &str) -> Result<Result<(), ModelError>, ThreadGone> {
        self.call(|reply| Command::Warm { model: model.to_string(), reply }).await
    }

    pub async fn scene(&self, model: &str, task: SceneTask) -> Result<Result<SceneOutput, SceneFailure>, ThreadGone> {
        self.call(|reply| Command::Scene { model: model.to_string(), task: Box::new(task), reply }).await
    }

    /// Applies the session policy after a job; returns sessions created so far and the time spent creating them.
    pub async fn job_done(&self) -> Result<(u64, Duration), ThreadGone> {
        self.call(|reply| Command::JobDone { reply }).await
    }
}
