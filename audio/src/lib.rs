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

/// Why a recording could not be read, or a scene written; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file cannot be opened or decoded (damaged, truncated, not audio).
    #[error("{path}: not readable as audio: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file is audio in a form no decoder here reads (codec, container, rate, channels).
    #[error("{path}: unsupported: {what}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported, and how to get it read where there is a way.
        what: String,
    },
    /// The file holds no audio frames at all.
    #[error("{path}: the recording holds no audio")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A scene's span reaches past the end of its recording (the file changed since it was cut).
    #[error("{path}: span {start_s:.3}-{end_s:.3} s lies outside the recording ({duration_s:.3} s)")]
    SpanOutOfRange {
        /// The file.
        path: PathBuf,
        /// Start of the span, seconds.
        start_s: f64,
        /// End of the span, seconds.
        end_s: f64,
        /// Length of the recording, seconds.
        duration_s: f64,
    },
    /// An output file could not be written.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Sample-rate conversion failed.
    #[error("resampling {from} Hz -> {to} Hz failed: {reason}")]
    Resample {
        /// Rate of the input, Hz.
        from: u32,
        /// Rate asked for, Hz.
        to: u32,
        /// What went wrong.
        reason: String,
    },
}
