//! Whole-scene sample-rate conversion with rubato's FFT resampler (synchronous, fixed ratio, high quality).
//! The resampler's delay is removed, so the output is time-aligned with the input and has exactly
//! `round(len * to / from)` samples.

use crate::AudioError;
use rubato::{FftFixedIn, Resampler};

const CHUNK: usize = 1024;

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
