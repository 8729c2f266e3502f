//! The inference thread: one OS thread owns the runner (the sessions, or the isolated child process) and runs
//! every model call, so inference never blocks the async runtime and at most one session exists per worker.
//! The async side talks to it through a channel of capacity one and awaits each reply.

use crate::in_process::InProcess;
use crate::isolation::Isolated;
use crate::runner::{InferenceOptions, JobTelemetry, Runner};
use crate::runtime::{Runtime, RuntimeError};
use crate::scene::{SceneFailure, SceneOutput, SceneTask};
use crate::sessions::SessionPolicy;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Builds the runner for `policy`: a child process per job for `process`, sessions in this process otherwise.
pub fn runner(
    options: &InferenceOptions,
    policy: SessionPolicy,
    child_program: Option<PathBuf>,
) -> Result<Box<dyn Runner + Send>, RuntimeError> {
    let runtime = Runtime::with_options(options.runtime.clone())?;
    Ok(match policy {
        SessionPolicy::Process => Box::new(Isolated::new(options.clone(), child_program)),
        _ => Box::new(InProcess::new(runtime, options, policy)),
    })
}

/// The inference thread ended (it panicked or its runner was dropped).
#[derive(Debug, thiserror::Error)]
#[error("the inference thread has stopped")]
pub struct ThreadGone;

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Warm { model: String, reply: Reply<Result<(), SceneFailure>> },
    Scenes { model: String, tasks: Vec<SceneTask>, reply: Reply<Vec<Result<SceneOutput, SceneFailure>>> },
    JobDone { reply: Reply<JobTelemetry> },
}

/// The async side's handle on the inference thread.
#[derive(Clone)]
pub struct InferenceHandle {
    tx: mpsc::Sender<Command>,
}

impl InferenceHandle {
    /// Starts the thread that owns `runner`.
    pub fn start(mut runner: Box<dyn Runner + Send>) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(1);
        std::thread::Builder::new().name("inference".into()).spawn(move || {
            while let Some(command) = rx.blocking_recv() {
                match command {
                    Command::Warm { model, reply } => {
                        let _ = reply.send(runner.warm(&model));
                    }
                    Command::Scenes { model, tasks, reply } => {
                        let _ = reply.send(runner.scenes(&model, &tasks));
                    }
                    Command::JobDone { reply } => {
                        let _ = reply.send(runner.job_done());
                    }
                }
            }
        })?;
        Ok(Self { tx })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ThreadGone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ThreadGone)?;
        answer.await.map_err(|_| ThreadGone)
    }

    /// See [`Runner::warm`].
    pub async fn warm(&self, model: &str) -> Result<Result<(), SceneFailure>, ThreadGone> {
        self.call(|reply| Command::Warm { model: model.to_string(), reply }).await
    }

    /// See [`Runner::scenes`].
    pub async fn scenes(
        &self,
        model: &str,
        tasks: Vec<SceneTask>,
    ) -> Result<Vec<Result<SceneOutput, SceneFailure>>, ThreadGone> {
        self.call(|reply| Command::Scenes { model: model.to_string(), tasks, reply }).await
    }

    /// See [`Runner::job_done`].
    pub async fn job_done(&self) -> Result<JobTelemetry, ThreadGone> {
        self.call(|reply| Command::JobDone { reply }).await
    }
}
