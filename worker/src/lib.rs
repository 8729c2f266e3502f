//! The GPU worker side of scenequeue: consume jobs, run the enhancement model scene by scene, record results,
//! and restart the ONNX Runtime session between jobs so device memory cannot accumulate.
//!
//! The public surface is what a binary needs to configure and run a worker ([`run`], [`WorkerConfig`] and the
//! setting types); [`testing`] exposes the inference path to the integration tests and the benchmarks.
//!
//! # Layout
//! - `config`: worker settings (device, threads, session policy, lease), with their defaults.
//! - `consume`: the consume loop, job leases and acks, reconnection, unhealthy pauses; state changes go through
//!   `scenequeue_core`.
//! - `job`: one leased job, group by group under the watchdog, every write fenced by the lease.
//! - `recorder`: a job's results recorded in batches (one transaction for many scenes).
//! - `disposition`: the one place a failure is given what becomes of it (fail the scene, retry the job,
//!   reconnect, unhealthy worker, fatal).
//! - `heartbeat`: the worker's row and the job's lease, refreshed every few seconds while the job progresses.
//! - `watchdog`: how long a scene may run without an answer, from its length and the measured speed.
//! - `health`: the self-check an unhealthy worker runs before it takes jobs again.
//! - `runner`: the runner contract (trait, options, per-job telemetry).
//! - `in_process`: the runner over this process's sessions.
//! - `isolation`: the process-per-job runner and the child process's side.
//! - `inference`: the dedicated inference thread that owns the runner, and its async handle.
//! - `sessions`: the session policy: when an enhancer is created and dropped.
//! - `simulated`: the model-free runner of farm simulations (no model, no audio, a set time per scene).
//! - `tuning`: a batch's enhancement settings over the worker's defaults; the attenuation limit.
//! - `scene`: one scene (or a group, when batching) end to end: read (a job's scenes of a recording in one
//!   forward pass, with the decoder the submission used), resample, enhance, write, measure (blocking).
//! - `output_check`: what becomes of an enhanced scene that fails its checks (fail, flag, keep the original).
//! - `recovery`: long-scene windows and out-of-memory recovery (fresh session, windows, CPU).
//! - `batching`: fixed-shape window batching across the scenes of a job (optional).
//! - `runtime`: the process-wide ONNX Runtime environment and per-session options (CPU or CUDA).
//! - `model`: model manifests and the adapters that turn audio into model tensors and back.
//! - `faults`: injected out-of-memory errors, for testing recovery without a GPU.
//! - `memory`: GPU (NVML) and process memory telemetry.
//! - `paths`: output file names derived from ids and sanitized names.
//! - `vad`: the Silero voice-activity detector the scheduler can cut scenes with.

mod batching;
mod config;
mod consume;
mod disposition;
mod faults;
mod health;
mod heartbeat;
mod in_process;
mod inference;
mod isolation;
mod job;
mod memory;
mod model;
mod output_check;
mod paths;
mod recorder;
mod recovery;
mod runner;
mod runtime;
mod scene;
mod sessions;
mod simulated;
mod tuning;
mod vad;
mod watchdog;

pub use batching::FixedWindows;
pub use config::{MIN_LEASE, ModelFiles, WorkerConfig};
pub use consume::{Shutdown, WorkerError, WorkerReport, run};
pub use disposition::Disposition;
pub use faults::FaultPlan;
pub use isolation::child_main;
pub use model::{AdapterKind, Manifest, ModelError, manifest};
pub use output_check::OnBadOutput;
pub use recovery::RecoveryConfig;
pub use runtime::{ArenaExtend, ConvSearch, CudaSettings, Device, Runtime, RuntimeError, RuntimeOptions};
pub use sessions::SessionPolicy;
pub use vad::SileroVad;

/// The inference path below the consume loop, for the integration tests and the benchmarks: runners built as
/// a worker builds them, model adapters, scene tasks and memory probes.
pub mod testing {
    pub use crate::inference::runner;
    pub use crate::memory::{MemoryProbe, MemorySample};
    pub use crate::model::{Enhancer, InferenceError};
    pub use crate::runner::{InferenceOptions, JobTelemetry, Runner};
    pub use crate::scene::{SceneFailure, SceneOutput, SceneTask};
    pub use crate::tuning::Tuning;

    /// Model manifests and loading.
    pub mod model {
        pub use crate::model::{Enhancer, InferenceError, Manifest, ModelError, load, manifest};
    }
}
