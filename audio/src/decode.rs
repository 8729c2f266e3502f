//! Reading recordings. A recording is never loaded whole: the splitter streams frame energies, the worker
//! seeks to one span. Multichannel input is mixed down to mono by averaging the channels, since the enhancement
//! models are single-channel and speech is what matters.

use crate::AudioError;
use hound::{SampleFormat, WavReader};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// What a recording holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub frames: u64,
}

impl AudioInfo {
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }
}

type Reader = WavReader<BufReader<File>>;

fn open(path: &Path) -> Result<(Reader, AudioInfo), AudioError> {
    let reader = WavReader::open(path)
        .map_err(|e| AudioError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let spec = reader.spec();
    let supported = match spec.sample_format {
        SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
        SampleFormat::Float => spec.bits_per_sample == 32,
    };
    if !supported {
        return Err(AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!("{:?} samples of {} bits", spec.sample_format, spec.bits_per_sample),
        });
    }
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(AudioError::Unsupported {
            path: path.to_path_buf(),
            what: format!("{} channels at {} Hz", spec.channels, spec.sample_rate),
        });
    }
    let info =
        AudioInfo { sample_rate: spec.sample_rate, channels: spec.channels, frames: u64::from(reader.duration()) };
    if info.frames == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok((reader, info))
}

/// Reads the header only.
pub fn probe(path: &Path) -> Result<AudioInfo, AudioError> {
    open(path).map(|(_, info)| info)
}

/// Feeds every sample of the reader, converted to f32 in [-1, 1], to `sink` in file order.
fn for_each_sample(path: &Path, reader: &mut Reader, limit: u64, mut sink: impl FnMut(f32)) -> Result<u64, AudioError> {
    let spec = reader.spec();
    let bad = |e: hound::Error| AudioError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
    let mut n = 0u64;
    match spec.sample_format {
        SampleFormat::Float => {
            for s in reader.samples::<f32>() {
                if n == limit {
                    break;
                }
                sink(s.map_err(bad)?);
                n += 1;
            }
        }
        SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for s in reader.samples::<i32>() {
                if n == limit {
                    break;
                }
                sink(s.map_err(bad)? as f32 * scale);
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Streams the recording once and returns the energy (mean square of the mono mix, in dBFS) of consecutive
/// frames of `frame_s` seconds. Memory is one float per frame: 1.4 MB for ten hours at 10 ms.
pub fn frame_energies_db(path: &Path, frame_s: f64) -> Result<(AudioInfo, Vec<f32>), AudioError> {
    let (mut reader, info) = open(path)?;
    let channels = usize::from(info.channels);
    let frame_len = ((frame_s * f64::from(info.sample_rate)).round() as usize).max(1);
    let mut energies = Vec::with_capacity((info.frames as usize).div_ceil(frame_len));
    let (mut acc, mut frame_acc, mut ch, mut in_frame) = (0.0f32, 0.0f64, 0usize, 0usize);
    let total = info.frames * u64::from(info.channels);
    let read = for_each_sample(path, &mut reader, total, |s| {
        acc += s;
        ch += 1;
        if ch == channels {
            let mono = f64::from(acc / channels as f32);
            frame_acc += mono * mono;
            acc = 0.0;
            ch = 0;
            in_frame += 1;
            if in_frame == frame_len {
                energies.push(crate::level::power_to_db(frame_acc / frame_len as f64));
                frame_acc = 0.0;
                in_frame = 0;
            }
        }
    })?;
    if read < total {
        return Err(AudioError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("truncated: header promises {total} samples, file holds {read}"),
        });
    }
    if in_frame > 0 {
        energies.push(crate::level::power_to_db(frame_acc / in_frame as f64));
    }
    Ok((info, energies))
}

/// Reads `[start_s, end_s)` of the recording as mono f32 at its own sample rate.
pub fn read_span_mono(path: &Path, start_s: f64, end_s: f64) -> Result<(Vec<f32>, u32), AudioError> {
    let (mut reader, info) = open(path)?;
    let sr = f64::from(info.sample_rate);
    let start = (start_s * sr).round().max(0.0) as u64;
    let end = ((end_s * sr).round() as u64).min(info.frames);
    if start >= end {
        return Err(AudioError::SpanOutOfRange {
            path: path.to_path_buf(),
            start_s,
            end_s,
            duration_s: info.duration_s(),
        });
    }
    let start32 = u32::try_from(start)
        .map_err(|_| AudioError::Unsupported { path: path.to_path_buf(), what: "offset beyond 2^32 frames".into() })?;
    reader.seek(start32).map_err(|e| AudioError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let channels = usize::from(info.channels);
    let frames = (end - start) as usize;
    let mut out = Vec::with_capacity(frames);
    let (mut acc, mut ch) = (0.0f32, 0usize);
    let wanted = (frames * channels) as u64;
    let read = for_each_sample(path, &mut reader, wanted, |s| {
        acc += s;
        ch += 1;
        if ch == channels {
            out.push(acc / channels as f32);
            acc = 0.0;
            ch = 0;
        }
    })?;
    if read < wanted {
        return Err(AudioError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("truncated: span needs {wanted} samples from frame {start}, file holds {read}"),
        });
    }
    Ok((out, info.sample_rate))
}
