//! Whole-scene sample-rate conversion with rubato's FFT resampler (synchronous, fixed ratio, high quality).
//! The resampler's delay is removed, so the output is time-aligned with the input and has exactly
//! `round(len * to / from)` samples.

use crate::AudioError;
use rubato::{FftFixedIn, Resampler};

const CHUNK: usize = 1024;

/// Resamples a whole mono signal from `from` Hz to `to` Hz, time-aligned, to exactly `round(len * to / from)`
/// samples; returns a copy when the rates match.
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let err = |reason: String| AudioError::Resample { from, to, reason };
    let mut rs = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1).map_err(|e| err(e.to_string()))?;
    let wanted = ((x.len() as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from)) as usize;
    let delay = rs.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(wanted + delay + CHUNK * 4);
    let mut pos = 0;
    while x.len() - pos >= rs.input_frames_next() {
        let n = rs.input_frames_next();
        let block = rs.process(&[&x[pos..pos + n]], None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&block[0]);
        pos += n;
    }
    if pos < x.len() {
        let block = rs.process_partial(Some(&[&x[pos..]]), None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&block[0]);
    }
    // Flush what the resampler still holds; bounded, since each call yields at least one chunk.
    let mut flushes = 0;
    while out.len() < wanted + delay && flushes < 64 {
        let block = rs.process_partial::<&[f32]>(None, None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&block[0]);
        flushes += 1;
    }
    let end = (delay + wanted).min(out.len());
    let mut y = out[delay.min(end)..end].to_vec();
    y.resize(wanted, 0.0);
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, sr: u32, secs: f32) -> Vec<f32> {
        (0..(sr as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / sr as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn length_and_alignment_are_kept() {
        let x = sine(440.0, 16000, 1.3);
        let y = resample(&x, 16000, 48000).unwrap();
        assert_eq!(y.len(), x.len() * 3);
        let reference = sine(440.0, 48000, 1.3);
        // Away from the edges the upsampled sine matches the sine generated at 48 kHz.
        let err: f32 =
            y[4800..y.len() - 4800].iter().zip(&reference[4800..]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 1e-2, "max error {err}");
    }

    #[test]
    fn identity_when_rates_match() {
        let x = sine(100.0, 48000, 0.1);
        assert_eq!(resample(&x, 48000, 48000).unwrap(), x);
    }

    #[test]
    fn downsampling_44k1_to_48k_and_back_keeps_length() {
        let x = sine(300.0, 44100, 0.7);
        let y = resample(&x, 44100, 48000).unwrap();
        assert_eq!(y.len(), (x.len() as f64 * 48000.0 / 44100.0).round() as usize);
    }
}

/// Resampling of a stream that arrives in pieces of any size, with bounded memory: the same resampler as
/// `resample`, fed chunk by chunk, its delay removed and its length exact at the end.
pub(crate) struct StreamResampler {
    inner: Option<FftFixedIn<f32>>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    to_skip: usize,
    fed: u64,
    produced: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz; passes samples through unchanged when the rates match.
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let inner = if from == to {
            None
        } else {
            Some(FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1).map_err(|e| AudioError::Resample {
                from,
                to,
                reason: e.to_string(),
            })?)
        };
        let to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self { inner, from, to, pending: Vec::with_capacity(CHUNK * 2), to_skip, fed: 0, produced: 0 })
    }

    fn wanted(&self) -> u64 {
        (self.fed * u64::from(self.to) + u64::from(self.from) / 2) / u64::from(self.from)
    }

    fn emit(&mut self, block: &[f32], out: &mut Vec<f32>) {
        let skip = self.to_skip.min(block.len());
        self.to_skip -= skip;
        out.extend_from_slice(&block[skip..]);
        self.produced += (block.len() - skip) as u64;
    }

    /// Feeds samples; returns the output now available.
    pub fn push(&mut self, x: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.fed += x.len() as u64;
        let Some(rs) = self.inner.as_mut() else {
            self.produced += x.len() as u64;
            return Ok(x.to_vec());
        };
        let (from, to) = (self.from, self.to);
        let err = |e: rubato::ResampleError| AudioError::Resample { from, to, reason: e.to_string() };
        self.pending.extend_from_slice(x);
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        let mut pos = 0;
        while self.pending.len() - pos >= rs.input_frames_next() {
            let n = rs.input_frames_next();
            let block = rs.process(&[&self.pending[pos..pos + n]], None).map_err(err)?;
            blocks.push(block.into_iter().next().unwrap_or_default());
            pos += n;
        }
        self.pending.drain(..pos);
        for block in blocks {
            self.emit(&block, &mut out);
        }
        Ok(out)
    }

    /// Flushes the end of the stream; afterwards exactly round(fed * to / from) samples were produced in all.
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        let wanted = self.wanted();
        let mut out = Vec::new();
        if let Some(rs) = self.inner.as_mut() {
            let (from, to) = (self.from, self.to);
            let err = |e: rubato::ResampleError| AudioError::Resample { from, to, reason: e.to_string() };
            let mut blocks = Vec::new();
            if !self.pending.is_empty() {
                blocks.push(rs.process_partial(Some(&[&self.pending[..]]), None).map_err(err)?);
                self.pending.clear();
            }
            let mut flushes = 0;
            let mut total = self.produced + blocks.iter().map(|b| b[0].len() as u64).sum::<u64>();
            while total < wanted + self.to_skip as u64 && flushes < 64 {
                let b = rs.process_partial::<&[f32]>(None, None).map_err(err)?;
                total += b[0].len() as u64;
                blocks.push(b);
                flushes += 1;
            }
            for block in blocks {
                let block = block.into_iter().next().unwrap_or_default();
                self.emit(&block, &mut out);
            }
        }
        // Trim or pad the tail to the exact length.
        let excess = self.produced.saturating_sub(wanted) as usize;
        out.truncate(out.len().saturating_sub(excess));
        self.produced -= excess as u64;
        if self.produced < wanted {
            out.resize(out.len() + (wanted - self.produced) as usize, 0.0);
            self.produced = wanted;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn streaming_matches_whole_buffer_resampling() {
        let x: Vec<f32> = (0..44_100 * 2 + 123).map(|i| (i as f32 * 0.03).sin() * 0.4).collect();
        let whole = resample(&x, 44_100, 16_000).unwrap();
        let mut s = StreamResampler::new(44_100, 16_000).unwrap();
        let mut y = Vec::new();
        for piece in x.chunks(777) {
            y.extend(s.push(piece).unwrap());
        }
        y.extend(s.finish().unwrap());
        assert_eq!(y.len(), whole.len());
        let err = y.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "{err}");
    }
}
