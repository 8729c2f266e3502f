//! The GPU worker side of scenequeue: consume jobs, run the enhancement model scene by scene, record results,
//! and restart the ONNX Runtime session between jobs so device memory cannot accumulate.
//!
//! The public surface is what a binary needs to configure and run a worker ([`run`], [`WorkerConfig`] and the
//! setting types); [`testing`] exposes the inference path to the integration tests and the benchmarks.
//!
//! # Layout
//! - `config`: worker settings (device, threads, session policy, lease), with their defaults.
//! - `shutdown`, `ctx`, `error`, `report`: the ground floor every layer above shares: how a worker is asked to
//!   stop, the handles a job shares with the consume loop, the worker's errors (each deciding its own fate) and
//!   its counts.
//! - `consume`: the consume loop: connections, deliveries, job leases, reconnection, unhealthy pauses; state
//!   changes go through `scenequeue_core`.
//! - `job`: one leased job, group by group under the watchdog, every write fenced by the lease.
//! - `settle`: an attempt's outcome written under its lease, with its costs, then the delivery acknowledged.
//! - `recorder`: a job's results recorded in batches (one transaction for many scenes).
//! - `disposition`: the five answers to what becomes of the work a failure interrupted (fail the scene, retry the
//!   job, reconnect, unhealthy worker, fatal).
//! - `failure`: why a scene produced no output, each failure with its disposition.
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

pub mod asr;
mod batching;
mod config;
mod consume;
mod ctx;
mod disposition;
mod error;
mod failure;
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
mod report;
mod runner;
mod runtime;
mod scene;
mod sessions;
mod settle;
mod shutdown;
mod simulated;
mod tuning;
mod vad;
mod watchdog;

pub use batching::FixedWindows;
pub use config::{MIN_LEASE, ModelFiles, WorkerConfig};
pub use consume::run;
pub use disposition::Disposition;
pub use error::WorkerError;
pub use faults::FaultPlan;
pub use isolation::child_main;
pub use model::{AdapterKind, Manifest, ModelError, manifest};
pub use output_check::OnBadOutput;
pub use recovery::RecoveryConfig;
pub use report::WorkerReport;
pub use runtime::{ArenaExtend, ConvSearch, CudaSettings, Device, Runtime, RuntimeError, RuntimeOptions};
pub use sessions::SessionPolicy;
pub use shutdown::Shutdown;
pub use vad::SileroVad;

/// The inference path below the consume loop, for the integration tests and the benchmarks: runners built as
/// a worker builds them, model adapters, scene tasks and memory probes.
pub mod testing {
    pub use crate::failure::SceneFailure;
    pub use crate::inference::runner;
    pub use crate::memory::{MemoryProbe, MemorySample};
    pub use crate::model::{Enhancer, InferenceError};
    pub use crate::runner::{InferenceOptions, JobTelemetry, Runner};
    pub use crate::scene::{SceneOutput, SceneTask};
    pub use crate::tuning::Tuning;

    /// Model manifests and loading.
    pub mod model {
        pub use crate::model::{Enhancer, InferenceError, Manifest, ModelError, load, manifest};
    }
}
