//! The GPU worker side of scenequeue: consume jobs, run the enhancement model scene by scene, record results,
//! and restart the ONNX Runtime session between jobs so device memory cannot accumulate.
//!
//! # Layout
//! - [`config`]: worker settings (device, threads, session policy, lease).
//! - [`runtime`]: the process-wide ONNX Runtime environment and per-session options (CPU or CUDA).
//! - [`model`]: model manifests and the adapters that turn audio into model tensors and back.
//! - [`sessions`]: the session policy: when an enhancer is created and dropped.
//! - [`inference`]: the dedicated inference thread, its async handle, and the in-process runner.
//! - [`isolation`]: the process-per-job runner and the child process's side.
//! - [`recovery`]: out-of-memory recovery (fresh session, windows, CPU).
//! - [`batching`]: fixed-shape window batching across the scenes of a job (optional).
//! - [`faults`]: injected out-of-memory errors, for testing recovery without a GPU.
//! - [`memory`]: GPU (NVML) and process memory telemetry.
//! - [`scene`]: one scene (or a group, when batching) end to end: read (a job's scenes of a recording in one
//!   forward pass, with the decoder the submission used), resample, enhance, write, measure (blocking).
//! - [`paths`]: output file names derived from ids and sanitized names.
//! - [`vad`]: the Silero voice-activity detector the scheduler can cut scenes with.
//! - [`consume`]: the consume loop, job leases and acks.
//! - [`registry`]: this worker's row in the `workers` table.

pub mod batching;
pub mod config;
pub mod consume;
pub mod faults;
pub mod inference;
pub mod isolation;
pub mod memory;
pub mod model;
pub mod paths;
pub mod recovery;
pub mod registry;
pub mod runtime;
pub mod scene;
pub mod sessions;
pub mod vad;

pub use config::WorkerConfig;
pub use consume::{WorkerError, WorkerReport, run};
