//! Checks on an enhanced scene before it counts as done. An enhancer can fail quietly: non-finite samples, an
//! output that is silent although its input held speech, or speech-band energy that collapsed far below the
//! input's (the model removed the speech with the noise). Each check measures; what happens to a scene that
//! fails one is the caller's setting.
//!
//! Speech-band level: the 90th percentile of the energies, between 300 and 3400 Hz, of 21 ms Hann-windowed
//! frames (1024 samples at 48 kHz, scaled to the rate). The high percentile follows the speech and ignores the
//! pauses an enhancer rightly empties.

use realfft::RealFftPlanner;

/// Lower and upper edges of the speech band, Hz.
const BAND_HZ: (f32, f32) = (300.0, 3400.0);
/// Frame length, seconds.
const FRAME_S: f32 = 1024.0 / 48_000.0;
/// An input whose speech-band level reaches this holds speech worth keeping, dBFS.
pub(crate) const SPEECH_PRESENT_DB: f32 = -50.0;
/// An output at or below this RMS level is silent, dBFS.
pub(crate) const SILENT_DB: f32 = -90.0;
/// Speech-band loss beyond which an output's speech counts as removed, dB.
pub(crate) const COLLAPSE_DB: f32 = 30.0;

/// What a check found wrong with an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputProblem {
    /// The output held NaN or infinite samples.
    NonFinite,
    /// The output is silent although its input held speech.
    Silent,
    /// The output's speech-band level fell more than [`COLLAPSE_DB`] below the input's.
    SpeechCollapsed,
}

/// Speech-band level of a signal at `rate` Hz, dBFS (see the module's note); non-finite samples count as 0.
pub fn speech_band_db(x: &[f32], rate: u32) -> f32 {
    let frame = ((FRAME_S * rate as f32) as usize).next_power_of_two().max(64);
    let mut planner = RealFftPlanner::<f32>::new();
    let fft = planner.plan_fft_forward(frame);
    let window: Vec<f32> = (0..frame).map(|i| (std::f32::consts::PI * i as f32 / frame as f32).sin().powi(2)).collect();
    let bin_hz = rate as f32 / frame as f32;
    let (lo, hi) = ((BAND_HZ.0 / bin_hz).ceil() as usize, ((BAND_HZ.1 / bin_hz).floor() as usize).min(frame / 2));
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut energies = Vec::with_capacity(x.len() / frame + 1);
    for chunk in x.chunks(frame) {
        for (i, slot) in input.iter_mut().enumerate() {
            let s = chunk.get(i).copied().filter(|s| s.is_finite()).unwrap_or(0.0);
            *slot = s * window[i];
        }
        if fft.process(&mut input, &mut spectrum).is_err() {
            continue;
        }
        // Energy per sample of the band, comparable with a mean square (Parseval, Hann power 3/8).
        let band: f64 = spectrum[lo..=hi.max(lo)].iter().map(|c| f64::from(c.norm_sqr())).sum();
        energies.push(2.0 * band / (frame as f64 * frame as f64 * 0.375));
    }
    if energies.is_empty() {
        return crate::level::power_to_db(0.0);
    }
    energies.sort_by(f64::total_cmp);
    let p90 = energies[((energies.len() - 1) as f64 * 0.9).round() as usize];
    crate::level::power_to_db(p90)
}

/// Replaces non-finite samples by 0 in place; returns how many there were.
pub fn replace_non_finite(x: &mut [f32]) -> usize {
    let mut n = 0;
    for s in x.iter_mut().filter(|s| !s.is_finite()) {
        *s = 0.0;
        n += 1;
    }
    n
}

/// The problems of `output` against an input whose speech-band level was `input_speech_db`: non-finite samples
/// first (the other checks treat them as 0), then silence, then speech-band collapse.
pub fn problems(input_speech_db: f32, output: &[f32], rate: u32) -> (Vec<OutputProblem>, f32) {
    let mut found = Vec::new();
    if output.iter().any(|s| !s.is_finite()) {
        found.push(OutputProblem::NonFinite);
    }
    let output_speech_db = speech_band_db(output, rate);
    if input_speech_db >= SPEECH_PRESENT_DB {
        let finite_power = output.iter().filter(|s| s.is_finite()).map(|&s| f64::from(s) * f64::from(s)).sum::<f64>()
            / output.len().max(1) as f64;
        if crate::level::power_to_db(finite_power) <= SILENT_DB {
            found.push(OutputProblem::Silent);
        } else if output_speech_db < input_speech_db - COLLAPSE_DB {
            found.push(OutputProblem::SpeechCollapsed);
        }
    }
    (found, output_speech_db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amplitude: f32, seconds: f32, rate: u32) -> Vec<f32> {
        (0..(seconds * rate as f32) as usize)
            .map(|i| amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn speech_band_level_follows_in_band_energy_and_ignores_rumble() {
        // A full-scale sine has a mean square of 0.5: -3 dBFS.
        let in_band = speech_band_db(&tone(1000.0, 1.0, 1.0, 48_000), 48_000);
        assert!((in_band + 3.0).abs() < 0.5, "{in_band}");
        let rumble = speech_band_db(&tone(50.0, 1.0, 1.0, 48_000), 48_000);
        assert!(rumble < -40.0, "50 Hz lies outside the band: {rumble}");
        let at_16k = speech_band_db(&tone(1000.0, 0.1, 1.0, 16_000), 16_000);
        assert!((at_16k + 23.0).abs() < 0.5, "{at_16k}");
    }

    #[test]
    fn each_problem_is_found_and_a_good_output_passes() {
        let speech = tone(800.0, 0.3, 1.0, 48_000);
        let input_db = speech_band_db(&speech, 48_000);
        assert_eq!(problems(input_db, &speech, 48_000).0, vec![]);
        let quieter: Vec<f32> = speech.iter().map(|s| s * 0.1).collect();
        assert_eq!(problems(input_db, &quieter, 48_000).0, vec![], "20 dB quieter is still speech");
        assert_eq!(problems(input_db, &vec![0.0; 48_000], 48_000).0, vec![OutputProblem::Silent]);
        let gutted: Vec<f32> = speech.iter().map(|s| s * 1e-3).collect();
        assert_eq!(problems(input_db, &gutted, 48_000).0, vec![OutputProblem::SpeechCollapsed]);
        let mut broken = speech.clone();
        broken[10] = f32::NAN;
        broken[20] = f32::INFINITY;
        assert_eq!(problems(input_db, &broken, 48_000).0, vec![OutputProblem::NonFinite]);
        assert_eq!(replace_non_finite(&mut broken), 2);
        assert!(broken.iter().all(|s| s.is_finite()));
        // Without speech in the input, an emptied output is what an enhancer should give.
        let hiss_db = speech_band_db(&tone(1000.0, 0.001, 1.0, 48_000), 48_000);
        assert!(hiss_db < SPEECH_PRESENT_DB);
        assert_eq!(problems(hiss_db, &vec![0.0; 48_000], 48_000).0, vec![]);
    }
}
