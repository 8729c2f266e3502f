//! Audio for scenequeue: reading recordings, cutting them into scenes, resampling, the STFT that spectral models
//! use, levels, and writing enhanced scenes. Pure functions where possible; file I/O only in `decode` and
//! `encode`. Everything here is blocking work: callers run it off the async runtime.
//!
//! # Layout
//! - [`check`]: checks on an enhanced scene (non-finite samples, silence, speech-band collapse).
//! - [`decode`]: probe a recording (any common container and codec), stream its frame energies, read a span.
//! - [`stream`]: which decoder reads a recording (Rust or ffmpeg), and an opened recording on either route.
//! - [`native`]: the Rust route: symphonia, and Opus through libopus.
//! - [`ffmpeg`]: the ffmpeg route, for codecs no Rust decoder covers, through a pipe.
//! - [`spans`]: many spans of one recording in a single forward pass (the worker's reader).
//! - [`hashing`]: hashing a file with the bytes the decoder reads, so a submission reads it once.
//! - [`dsp`]: the post-processing chain: rumble high-pass, loudness normalisation, clipping protection.
//! - [`mixdown`]: interleaved frames to mono on every route; non-finite samples replaced and counted, cancelling
//!   channels told from silence.
//! - [`encode`]: write a scene as WAV, atomically.
//! - [`scenes`]: the energy-based scene splitter.
//! - [`resample`]: sample-rate conversion of a whole scene.
//! - [`stft`]: short-time Fourier analysis and weighted overlap-add synthesis.
//! - [`level`]: RMS, noise floor and SNR measurements.
//! - [`vad`]: scene detection driven by a voice-activity model (streamed).
//! - [`windows`]: overlapping windows with crossfades, for bounded-memory processing of long scenes.

pub mod check;
pub mod decode;
pub mod dsp;
pub mod encode;
pub mod ffmpeg;
pub mod hashing;
pub mod level;
pub mod mixdown;
pub(crate) mod native;
pub mod resample;
pub mod scenes;
pub mod spans;
pub mod stft;
pub mod stream;
pub mod vad;
pub mod windows;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: not readable as audio: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: the recording holds no audio")]
    Empty { path: PathBuf },
    #[error("{path}: span {start_s:.3}-{end_s:.3} s lies outside the recording ({duration_s:.3} s)")]
    SpanOutOfRange { path: PathBuf, start_s: f64, end_s: f64, duration_s: f64 },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("resampling {from} Hz -> {to} Hz failed: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}
