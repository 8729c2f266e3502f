//! Process isolation: every job runs in a child process (`scenequeue inference-child`) with its own ONNX
//! Runtime and CUDA context. When the job ends the child exits and the driver takes back everything it held,
//! whatever the allocator did. The price is a process start and CUDA initialisation per job.
//!
//! Protocol: one JSON request per line on the child's stdin, one JSON response per line on its stdout; the
//! settings travel in the `SCENEQUEUE_CHILD_SPEC` environment variable. Closing stdin ends the child.

use crate::disposition::Disposition;
use crate::failure::SceneFailure;
use crate::in_process::InProcess;
use crate::memory::MemoryProbe;
use crate::runner::{InferenceOptions, JobTelemetry, KillSwitch, Runner, max_opt, one_by_one};
use crate::runtime::Runtime;
use crate::scene::{SceneOutput, SceneTask};
use crate::sessions::SessionPolicy;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub const SPEC_ENV: &str = "SCENEQUEUE_CHILD_SPEC";
/// How long a child may take to exit once its stdin is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Warm { model: String },
    Scene { model: String, task: SceneTask },
}

#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Warmed,
    Done(SceneOutput),
    Failed { message: String, disposition: Disposition },
}

/// The pipes of the running child; the child itself sits in the kill switch, where the watchdog can reach it.
struct ChildProc {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Runs every job in a child process of its own.
pub struct Isolated {
    options: InferenceOptions,
    program: Option<PathBuf>,
    child: Option<ChildProc>,
    probe: MemoryProbe,
    created: u64,
    create_ms: f64,
    peak: Option<f32>,
    kill: KillSwitch,
}

impl Isolated {
    /// A runner that starts `program` (default: this executable) as `scenequeue inference-child` per job.
    pub fn new(options: InferenceOptions, program: Option<PathBuf>) -> Self {
        Self::with_kill_switch(options, program, KillSwitch::default())
    }

    /// The same, with the children it starts placed in `kill`, where a watchdog can kill them.
    pub fn with_kill_switch(options: InferenceOptions, program: Option<PathBuf>, kill: KillSwitch) -> Self {
        let probe = MemoryProbe::new(options.runtime.device);
        Self { options, program, child: None, probe, created: 0, create_ms: 0.0, peak: None, kill }
    }

    /// Starts a child and warms `model` in it; a failure comes with its disposition (the child's own, or
    /// `Unhealthy` when no child could be started at all).
    fn spawn(&mut self, model: &str) -> Result<(), (String, Disposition)> {
        let unhealthy = |message: String| (message, Disposition::Unhealthy);
        if self.kill.fired() {
            return Err(("the runner was abandoned by the watchdog".into(), Disposition::RetryJob));
        }
        let started = Instant::now();
        let program = match &self.program {
            Some(p) => p.clone(),
            None => {
                std::env::current_exe().map_err(|e| unhealthy(format!("cannot find the scenequeue binary: {e}")))?
            }
        };
        let spec = serde_json::to_string(&self.options).map_err(|e| unhealthy(e.to_string()))?;
        let mut child = Command::new(&program)
            .arg("inference-child")
            .env(SPEC_ENV, spec)
            // The child needs neither service: it never sees their URLs (with passwords), the API token or the
            // configuration file that may hold them; its whole job comes in SPEC_ENV.
            .env_remove("SCENEQUEUE_DATABASE_URL")
            .env_remove("SCENEQUEUE_AMQP_URL")
            .env_remove("SCENEQUEUE_API_TOKEN")
            .env_remove("SCENEQUEUE_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| unhealthy(format!("cannot start {}: {e}", program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(unhealthy("child process has no pipes".into()));
        };
        *self.kill.child() = Some(child);
        self.child = Some(ChildProc { stdin, stdout: BufReader::new(stdout) });
        match self.exchange(&Request::Warm { model: model.to_string() }).map_err(unhealthy)? {
            Response::Warmed => {}
            Response::Failed { message, disposition } => return Err((message, disposition)),
            Response::Done(_) => return Err(("child answered a warm-up with a scene".into(), Disposition::RetryJob)),
        }
        self.created += 1;
        self.create_ms += started.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    /// One request and its response; on any I/O failure the child is reaped and the error says how it ended.
    fn exchange(&mut self, request: &Request) -> Result<Response, String> {
        let Some(proc_) = self.child.as_mut() else {
            return Err("no inference process".into());
        };
        let line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let io = writeln!(proc_.stdin, "{line}")
            .and_then(|()| proc_.stdin.flush())
            .and_then(|()| proc_.stdout.read_line(&mut answer));
        match io {
            Ok(n) if n > 0 => {
                serde_json::from_str(&answer).map_err(|e| format!("bad answer from the inference process: {e}"))
            }
            other => {
                let reason = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "closed its output".into(),
                };
                let status = self.reap();
                Err(format!("inference process failed ({reason}; exit: {status})"))
            }
        }
    }

    /// Ends the child (politely, then by force) and says how it exited.
    fn reap(&mut self) -> String {
        let Some(proc_) = self.child.take() else {
            return "not running".into();
        };
        drop(proc_);
        let Some(mut child) = self.kill.child().take() else {
            return "killed by the watchdog".into();
        };
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    return child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                }
            }
        }
    }

    /// One scene in the child; a child that dies mid-scene is replaced once, a second death fails the scene
    /// with how the child ended (exit code or signal): that scene is what kills it.
    fn one(&mut self, model: &str, task: &SceneTask) -> Result<SceneOutput, SceneFailure> {
        let mut last = String::new();
        for _ in 0..2 {
            if self.child.is_none()
                && let Err((message, disposition)) = self.spawn(model)
            {
                return Err(SceneFailure::Isolated { message, disposition });
            }
            match self.exchange(&Request::Scene { model: model.to_string(), task: task.clone() }) {
                Ok(Response::Done(out)) => {
                    self.peak = max_opt(self.peak, out.gpu_mem_mb);
                    return Ok(out);
                }
                Ok(Response::Failed { message, disposition }) => {
                    return Err(SceneFailure::Isolated { message, disposition });
                }
                Ok(Response::Warmed) => {
                    let message = "unexpected answer from the inference process".into();
                    return Err(SceneFailure::Isolated { message, disposition: Disposition::RetryJob });
                }
                Err(e) => last = e,
            }
        }
        let message = format!("{}: the scene killed its inference process twice: {last}", task.source.display());
        Err(SceneFailure::Isolated { message, disposition: Disposition::FailScene })
    }
}

impl Runner for Isolated {
    fn warm(&mut self, model: &str) -> Result<(), SceneFailure> {
        if self.child.is_none() {
            self.spawn(model).map_err(|(message, disposition)| SceneFailure::Isolated { message, disposition })?;
        }
        Ok(())
    }

    fn scenes(&mut self, model: &str, tasks: &[SceneTask]) -> Vec<Result<SceneOutput, SceneFailure>> {
        one_by_one(tasks, |task| self.one(model, task))
    }

    fn job_done(&mut self) -> JobTelemetry {
        let was_running = self.child.is_some();
        self.reap();
        let telemetry = JobTelemetry {
            sessions_created: self.created,
            session_create_ms: self.create_ms,
            gpu_peak_mb: self.peak.take(),
            after: self.probe.sample(),
            session_dropped: was_running,
        };
        self.created = 0;
        self.create_ms = 0.0;
        telemetry
    }

    fn kill_switch(&self) -> KillSwitch {
        self.kill.clone()
    }
}

/// The child's side: serves requests until stdin closes. Returns an error only if the settings are unusable.
pub fn child_main() -> Result<(), String> {
    let spec =
        std::env::var(SPEC_ENV).map_err(|_| format!("{SPEC_ENV} is not set: this command is started by a worker"))?;
    let options: InferenceOptions = serde_json::from_str(&spec).map_err(|e| format!("bad {SPEC_ENV}: {e}"))?;
    let runtime = Runtime::with_options(options.runtime.clone()).map_err(|e| e.to_string())?;
    let mut runner = InProcess::new(runtime, &options, SessionPolicy::Persistent);
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Warm { model }) => match runner.warm(&model) {
                Ok(()) => Response::Warmed,
                Err(e) => Response::Failed { message: e.to_string(), disposition: e.disposition() },
            },
            Ok(Request::Scene { model, task }) => match runner.scene(&model, &task) {
                Ok(out) => Response::Done(out),
                Err(e) => Response::Failed { message: e.to_string(), disposition: e.disposition() },
            },
            Err(e) => Response::Failed { message: format!("bad request: {e}"), disposition: Disposition::Fatal },
        };
        let text = serde_json::to_string(&response).map_err(|e| e.to_string())?;
        writeln!(stdout, "{text}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    }
    Ok(())
}
