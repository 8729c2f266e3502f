//! The inference thread: one OS thread owns the runner (the sessions, or the isolated child process) and runs
//! every model call, so inference never blocks the async runtime and at most one session exists per worker.
//! The async side talks to it through a channel of capacity one and awaits each reply, within a bound: the
//! watchdog. A call that overruns its bound abandons the thread (its child process, if any, is killed) and a
//! fresh thread with a fresh runner takes its place; a thread that died is replaced the same way. Abandoned
//! threads are bounded: past [`MAX_ABANDONED`] the worker must be restarted.

use crate::failure::SceneFailure;
use crate::in_process::InProcess;
use crate::isolation::Isolated;
use crate::runner::{InferenceOptions, JobTelemetry, KillSwitch, Runner};
use crate::runtime::{Runtime, RuntimeError};
use crate::scene::{SceneOutput, SceneTask};
use crate::sessions::SessionPolicy;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Hung inference threads a worker abandons before it asks to be restarted (each may hold a session).
pub const MAX_ABANDONED: u32 = 3;

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

/// Why a call to the inference thread returned no answer.
#[derive(Debug, thiserror::Error)]
pub enum ThreadGone {
    /// The thread ended (it panicked outside a scene, or its runner was dropped); a fresh one replaced it.
    #[error("the inference thread stopped; a fresh one replaced it")]
    Died,
    /// The call overran its bound; the thread was abandoned (its child killed) and a fresh one replaced it.
    #[error("no progress for {0:.0} s")]
    Hung(f64),
    /// Too many threads were abandoned, or a fresh runner could not be built: the worker must restart.
    #[error("the inference side cannot go on: {0}")]
    Broken(String),
}

type Reply<T> = oneshot::Sender<T>;
type Outcomes = Vec<Result<SceneOutput, SceneFailure>>;

enum Command {
    Warm {
        model: String,
        reply: Reply<Result<(), SceneFailure>>,
    },
    Scenes {
        model: String,
        tasks: Vec<SceneTask>,
        reply: Reply<Outcomes>,
    },
    /// One scene in a child process of its own, started for it and ended after it.
    Isolated {
        model: String,
        task: SceneTask,
        reply: Reply<Result<SceneOutput, SceneFailure>>,
    },
    JobDone {
        reply: Reply<JobTelemetry>,
    },
}

/// What builds a fresh runner when a thread is replaced.
pub type MakeRunner = Box<dyn Fn() -> Result<Box<dyn Runner + Send>, RuntimeError> + Send + Sync>;

struct Thread {
    tx: mpsc::Sender<Command>,
    kill: KillSwitch,
}

/// The async side's handle on the inference thread.
pub struct InferenceHandle {
    make: MakeRunner,
    options: InferenceOptions,
    child_program: Option<PathBuf>,
    current: Mutex<Thread>,
    abandoned: AtomicU32,
}

impl InferenceHandle {
    /// Starts the thread with a runner from `make`; `options` and `child_program` start the child processes of
    /// scenes run one by one in isolation.
    pub fn start(
        make: MakeRunner,
        options: InferenceOptions,
        child_program: Option<PathBuf>,
    ) -> Result<Self, RuntimeError> {
        let thread = spawn(make()?, &options, &child_program).map_err(RuntimeError::Thread)?;
        Ok(Self { make, options, child_program, current: Mutex::new(thread), abandoned: AtomicU32::new(0) })
    }

    fn sender(&self) -> (mpsc::Sender<Command>, KillSwitch) {
        let t = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (t.tx.clone(), t.kill.clone())
    }

    /// Abandons the current thread (killing its child) and starts a fresh one.
    fn replace(&self, kill: &KillSwitch) -> Result<(), ThreadGone> {
        kill.fire();
        let abandoned = self.abandoned.fetch_add(1, Ordering::SeqCst) + 1;
        if abandoned > MAX_ABANDONED {
            return Err(ThreadGone::Broken(format!("{abandoned} inference threads hung or died")));
        }
        let runner = (self.make)().map_err(|e| ThreadGone::Broken(e.to_string()))?;
        let thread =
            spawn(runner, &self.options, &self.child_program).map_err(|e| ThreadGone::Broken(e.to_string()))?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = thread;
        Ok(())
    }

    async fn call<T>(&self, bound: Option<Duration>, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ThreadGone> {
        let (tx, kill) = self.sender();
        let (reply, answer) = oneshot::channel();
        let answered = match tx.send(make(reply)).await {
            Err(_) => None,
            Ok(()) => match bound {
                None => Some(answer.await),
                Some(bound) => match tokio::time::timeout(bound, answer).await {
                    Ok(answer) => Some(answer),
                    Err(_) => {
                        self.replace(&kill)?;
                        return Err(ThreadGone::Hung(bound.as_secs_f64()));
                    }
                },
            },
        };
        match answered {
            Some(Ok(value)) => Ok(value),
            _ => {
                self.replace(&kill)?;
                Err(ThreadGone::Died)
            }
        }
    }

    /// See [`Runner::warm`].
    pub async fn warm(&self, model: &str) -> Result<Result<(), SceneFailure>, ThreadGone> {
        self.call(None, |reply| Command::Warm { model: model.to_string(), reply }).await
    }

    /// See [`Runner::scenes`]; abandoned after `bound` without an answer.
    pub async fn scenes(&self, model: &str, tasks: Vec<SceneTask>, bound: Duration) -> Result<Outcomes, ThreadGone> {
        self.call(Some(bound), |reply| Command::Scenes { model: model.to_string(), tasks, reply }).await
    }

    /// One scene alone in a child process started for it (a job that crashed its workers runs this way, so a
    /// segfault or abort is contained); the child is killed after `bound` without an answer.
    pub async fn isolated(
        &self,
        model: &str,
        task: SceneTask,
        bound: Duration,
    ) -> Result<Result<SceneOutput, SceneFailure>, ThreadGone> {
        self.call(Some(bound), |reply| Command::Isolated { model: model.to_string(), task, reply }).await
    }

    /// See [`Runner::job_done`].
    pub async fn job_done(&self) -> Result<JobTelemetry, ThreadGone> {
        self.call(None, |reply| Command::JobDone { reply }).await
    }
}

fn spawn(
    mut runner: Box<dyn Runner + Send>,
    options: &InferenceOptions,
    child_program: &Option<PathBuf>,
) -> std::io::Result<Thread> {
    let (tx, mut rx) = mpsc::channel::<Command>(1);
    let kill = runner.kill_switch();
    let (options, program, thread_kill) = (options.clone(), child_program.clone(), kill.clone());
    std::thread::Builder::new().name("inference".into()).spawn(move || {
        while let Some(command) = rx.blocking_recv() {
            match command {
                Command::Warm { model, reply } => {
                    let _ = reply.send(runner.warm(&model));
                }
                Command::Scenes { model, tasks, reply } => {
                    let _ = reply.send(runner.scenes(&model, &tasks));
                }
                Command::Isolated { model, task, reply } => {
                    let mut alone = Isolated::with_kill_switch(options.clone(), program.clone(), thread_kill.clone());
                    let result = alone.scene(&model, &task);
                    alone.job_done();
                    let _ = reply.send(result);
                }
                Command::JobDone { reply } => {
                    let _ = reply.send(runner.job_done());
                }
            }
        }
    })?;
    Ok(Thread { tx, kill })
}
