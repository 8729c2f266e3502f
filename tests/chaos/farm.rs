//! A farm of real processes for the chaos suite: the scheduler and workers of the built `scenequeue` binary,
//! each in a supervised slot that starts it again whenever it exits (as systemd or Kubernetes would), with its
//! log in a file; and the faults: kill -9, RabbitMQ and PostgreSQL restarts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A command kept as its parts, so a supervisor can build it again for every start.
#[derive(Debug, Clone)]
pub struct Recipe {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

impl Recipe {
    /// The program, arguments and environment variables set on `cmd`.
    pub fn of(cmd: &Command) -> Self {
        Self {
            program: cmd.get_program().to_owned(),
            args: cmd.get_args().map(|a| a.to_owned()).collect(),
            envs: cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect(),
        }
    }

    /// The command, afresh.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args).envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `wrapper` (such as `unshare ... sh -c ...`) running the command: its program and arguments appended.
    pub fn wrapped_in(&self, mut wrapper: Command) -> Command {
        wrapper.arg(&self.program).args(&self.args).envs(self.envs.iter().map(|(k, v)| (k, v)));
        wrapper
    }
}

/// One supervised process.
pub struct Slot {
    pub name: String,
    make: Box<dyn Fn() -> Command + Send>,
    pub child: Option<Child>,
    pub starts: u32,
    pub kills: u32,
    pub log: PathBuf,
}

/// The supervised processes; a background task restarts any that exited.
#[derive(Clone)]
pub struct Farm {
    slots: Arc<Mutex<Vec<Slot>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Farm {
    pub fn new() -> Self {
        let farm = Self { slots: Arc::new(Mutex::new(Vec::new())), stop: Default::default() };
        let f = farm.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            while !f.stop.is_cancelled() {
                tick.tick().await;
                f.restart_exited();
            }
        });
        farm
    }

    /// Adds a slot whose process `make` builds; its stdout and stderr go to `log_dir/<name>.log`.
    pub fn add(&self, name: &str, log_dir: &Path, make: impl Fn() -> Command + Send + 'static) {
        let log = log_dir.join(format!("{name}.log"));
        let mut slot = Slot { name: name.into(), make: Box::new(make), child: None, starts: 0, kills: 0, log };
        start(&mut slot);
        self.slots.lock().unwrap().push(slot);
    }

    fn restart_exited(&self) {
        if self.stop.is_cancelled() {
            return;
        }
        for slot in self.slots.lock().unwrap().iter_mut() {
            let exited = slot.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                start(slot);
            }
        }
    }

    /// kill -9 of the slot's process, if it is running (not yet restarted after an earlier kill), waiting until
    /// it is gone; returns whether it was running.
    pub fn kill(&self, index: usize) -> bool {
        let mut slots = self.slots.lock().unwrap();
        let slot = &mut slots[index];
        let Some(child) = slot.child.as_mut() else {
            return false;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        child.kill().expect("kill -9");
        // Reaped before returning: until then the process could still look alive to `report`, killed but not
        // yet restarted.
        let _ = child.wait();
        slot.kills += 1;
        true
    }

    pub fn pid(&self, index: usize) -> u32 {
        self.slots.lock().unwrap()[index].child.as_ref().map_or(0, Child::id)
    }

    /// (name, starts, kills, alive) of every slot.
    pub fn report(&self) -> Vec<(String, u32, u32, bool)> {
        let mut slots = self.slots.lock().unwrap();
        slots
            .iter_mut()
            .map(|s| {
                let alive = s.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none());
                (s.name.clone(), s.starts, s.kills, alive)
            })
            .collect()
    }

    /// The last lines of every log.
    pub fn log_tails(&self, lines: usize) -> String {
        let slots = self.slots.lock().unwrap();
        slots
            .iter()
            .map(|s| {
                let text = std::fs::read_to_string(&s.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(lines).collect::<Vec<_>>().into_iter().rev().collect();
                format!("==== {} ({} starts)\n{}\n", s.name, s.starts, tail.join("\n"))
            })
            .collect()
    }

    /// Stops supervising and ends every process (SIGKILL).
    pub fn shutdown(&self) {
        self.stop.cancel();
        for slot in self.slots.lock().unwrap().iter_mut() {
            if let Some(mut c) = slot.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        if Arc::strong_count(&self.slots) <= 2 {
            self.shutdown();
        }
    }
}

fn start(slot: &mut Slot) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&slot.log).expect("log file");
    let mut cmd = (slot.make)();
    cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
    slot.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", slot.name)));
    slot.starts += 1;
}

/// Runs a service-control command, failing the test with its output.
pub fn control(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn rabbit_stop() {
    control("rabbitmqctl", &["-q", "stop_app"]);
}

pub fn rabbit_start() {
    control("rabbitmqctl", &["-q", "start_app"]);
    control("rabbitmqctl", &["-q", "await_startup"]);
}

pub fn postgres_restart() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL cluster");
    control("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "restart"]);
}

/// Seconds since `t`, for the report.
pub fn since(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10.0).round() / 10.0
}
