//! The processing users expect around an enhancer, applied to each enhanced scene in this order:
//! 1. a high-pass rumble filter (on by default at 70 Hz): neural enhancers tend to leave sub-bass rumble, which
//!    carries no speech; Butterworth, run forwards and backwards so it shifts no phase;
//! 2. optional loudness normalisation to a target in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks, absolute
//!    gate at -70 LUFS and relative gate 10 LU below);
//! 3. clipping protection: a scene whose peak would pass the ceiling (default -1 dBFS) is scaled down as a whole,
//!    which never distorts.

/// Settings of the chain; `Default` is the documented default (high-pass at 70 Hz, no normalisation, -1 dBFS).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PostProcess {
    /// Rumble high-pass cut-off, Hz (None: off).
    pub highpass_hz: Option<f32>,
    /// Loudness every output is normalised to, LUFS (None: off).
    pub loudness_lufs: Option<f32>,
    /// Peak ceiling, dBFS: a scene that would pass it is scaled down as a whole.
    pub peak_ceiling_dbfs: f32,
}

impl Default for PostProcess {
    fn default() -> Self {
        Self { highpass_hz: Some(70.0), loudness_lufs: None, peak_ceiling_dbfs: -1.0 }
    }
}

impl PostProcess {
    /// Refuses settings that cannot be applied, saying which.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(hz) = self.highpass_hz
            && (hz.is_nan() || hz <= 0.0 || hz >= 1000.0)
        {
            return Err(format!("the high-pass cut-off must be between 0 and 1000 Hz, not {hz} Hz"));
        }
        if let Some(lufs) = self.loudness_lufs
            && !(-70.0..=0.0).contains(&lufs)
        {
            return Err(format!("the loudness target must be between -70 and 0 LUFS, not {lufs}"));
        }
        if !(-60.0..=0.0).contains(&self.peak_ceiling_dbfs) {
            return Err(format!("the peak ceiling must be between -60 and 0 dBFS, not {}", self.peak_ceiling_dbfs));
        }
        Ok(())
    }

    /// Applies the chain in place.
    pub fn apply(&self, x: &mut [f32], rate: u32) {
        if let Some(hz) = self.highpass_hz.filter(|&hz| hz > 0.0 && hz < rate as f32 / 2.0) {
            highpass_zero_phase(x, rate, hz);
        }
        if let Some(target) = self.loudness_lufs
            && let Some(now) = loudness_lufs(x, rate)
        {
            let gain = 10f32.powf((target - now) / 20.0);
            x.iter_mut().for_each(|s| *s *= gain);
        }
        limit_peak(x, self.peak_ceiling_dbfs);
    }
}

/// A biquad section (direct form I), coefficients normalised by a0.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// RBJ cookbook high-pass.
    fn highpass(rate: u32, hz: f64, q: f64) -> Self {
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self {
            b: [(1.0 + cos) / 2.0 / a0, -(1.0 + cos) / a0, (1.0 + cos) / 2.0 / a0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    /// BS.1770 K-weighting, stage one (the head's shelf), from the analogue prototype so that it holds at any
    /// sample rate; at 48 kHz it reproduces the standard's coefficients.
    fn k_shelf(rate: u32) -> Self {
        let (f0, gain_db, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
        let k = (std::f64::consts::PI * f0 / f64::from(rate)).tan();
        let vh = 10f64.powf(gain_db / 20.0);
        let vb = vh.powf(0.4996667741545416);
        let a0 = 1.0 + k / q + k * k;
        Self {
            b: [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
            a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
        }
    }

    /// BS.1770 K-weighting, stage two (the RLB high-pass).
    fn k_highpass(rate: u32) -> Self {
        let (f0, q) = (38.13547087602444, 0.5003270373238773);
        let k = (std::f64::consts::PI * f0 / f64::from(rate)).tan();
        let a0 = 1.0 + k / q + k * k;
        Self { b: [1.0, -2.0, 1.0], a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0] }
    }

    /// Filters `x` in place, front to back.
    fn run_in_place<'a>(&self, x: impl Iterator<Item = &'a mut f32>) {
        let mut state = [0.0f64; 4];
        x.for_each(|s| *s = self.step(&mut state, *s));
    }

    /// One sample through the filter; `state` is (x1, x2, y1, y2).
    fn step(&self, [x1, x2, y1, y2]: &mut [f64; 4], s: f32) -> f32 {
        let s = f64::from(s);
        let y = self.b[0] * s + self.b[1] * *x1 + self.b[2] * *x2 - self.a[0] * *y1 - self.a[1] * *y2;
        (*x2, *x1, *y2, *y1) = (*x1, s, *y1, y);
        y as f32
    }
}

/// Second-order Butterworth high-pass run forwards then backwards: zero phase, 24 dB/octave in all.
pub(crate) fn highpass_zero_phase(x: &mut [f32], rate: u32, hz: f32) {
    let f = Biquad::highpass(rate, f64::from(hz), std::f64::consts::FRAC_1_SQRT_2);
    f.run_in_place(x.iter_mut());
    f.run_in_place(x.iter_mut().rev());
}

/// Integrated loudness (BS.1770-4), LUFS; None when the signal is shorter than one 400 ms block or all of it is
/// under the absolute gate. The K-weighted signal is never held whole: its last block is kept in a ring, and each
/// block's power is summed over it in order at every hop.
pub fn loudness_lufs(x: &[f32], rate: u32) -> Option<f32> {
    let block = (0.4 * f64::from(rate)) as usize;
    let hop = block / 4;
    if x.len() < block || hop == 0 {
        return None;
    }
    let (shelf, highpass) = (Biquad::k_shelf(rate), Biquad::k_highpass(rate));
    let (mut shelf_state, mut highpass_state) = ([0.0f64; 4], [0.0f64; 4]);
    let mut ring = vec![0.0f32; block];
    let mut powers: Vec<f64> = Vec::with_capacity((x.len() - block) / hop + 1);
    for (n, &s) in x.iter().enumerate() {
        ring[n % block] = highpass.step(&mut highpass_state, shelf.step(&mut shelf_state, s));
        let end = n + 1;
        if end >= block && (end - block).is_multiple_of(hop) {
            // The block [end - block, end): from its oldest sample in the ring round to its newest.
            let (newer, older) = ring.split_at(end % block);
            let sum = older.iter().chain(newer).map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            powers.push(sum / block as f64);
        }
    }
    let lufs = |p: f64| -0.691 + 10.0 * p.max(1e-20).log10();
    let gated = |min: f64| -> Option<f64> {
        let kept: Vec<f64> = powers.iter().copied().filter(|&p| lufs(p) > min).collect();
        (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
    };
    let absolute = gated(-70.0)?;
    gated(lufs(absolute) - 10.0).map(|p| lufs(p) as f32)
}

/// Scales the whole signal down if its peak passes `ceiling_dbfs`.
pub(crate) fn limit_peak(x: &mut [f32], ceiling_dbfs: f32) {
    let ceiling = 10f32.powf(ceiling_dbfs / 20.0);
    let peak = x.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
    if peak > ceiling {
        let gain = ceiling / peak;
        x.iter_mut().for_each(|s| *s *= gain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loudness as BS.1770 writes it, over the whole K-weighted signal held at once.
    fn loudness_whole(x: &[f32], rate: u32) -> Option<f32> {
        let filter = |f: Biquad, x: &[f32]| -> Vec<f32> {
            let mut state = [0.0f64; 4];
            x.iter().map(|&s| f.step(&mut state, s)).collect()
        };
        let k = filter(Biquad::k_highpass(rate), &filter(Biquad::k_shelf(rate), x));
        let (block, hop) = ((0.4 * f64::from(rate)) as usize, (0.4 * f64::from(rate)) as usize / 4);
        if k.len() < block {
            return None;
        }
        let powers: Vec<f64> = (0..=(k.len() - block) / hop)
            .map(|i| {
                k[i * hop..i * hop + block].iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / block as f64
            })
            .collect();
        let lufs = |p: f64| -0.691 + 10.0 * p.max(1e-20).log10();
        let gated = |min: f64| -> Option<f64> {
            let kept: Vec<f64> = powers.iter().copied().filter(|&p| lufs(p) > min).collect();
            (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
        };
        gated(lufs(gated(-70.0)?) - 10.0).map(|p| lufs(p) as f32)
    }

    #[test]
    fn loudness_in_a_ring_is_the_whole_signal_loudness_to_the_bit() {
        for (rate, secs) in [(48_000, 3.3), (44_100, 1.0), (16_000, 7.77), (8_000, 0.4)] {
            let mut x = sine(440.0, rate, secs, 0.3);
            x.iter_mut().enumerate().for_each(|(i, s)| *s *= 1.0 + ((i / 3000) % 5) as f32);
            let (ring, whole) = (loudness_lufs(&x, rate), loudness_whole(&x, rate));
            assert!(whole.is_some());
            assert_eq!(ring.map(f32::to_bits), whole.map(f32::to_bits), "{rate} Hz, {secs} s");
        }
    }

    fn sine(hz: f32, rate: u32, secs: f32, amp: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| amp * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn highpass_removes_rumble_and_keeps_speech_band_in_phase() {
        let mut rumble = sine(25.0, 48_000, 2.0, 0.5);
        highpass_zero_phase(&mut rumble, 48_000, 70.0);
        assert!(rms(&rumble[4800..91_200]) < 0.5 / 2f32.sqrt() * 0.1, "25 Hz down by more than 20 dB");
        let voice = sine(300.0, 48_000, 2.0, 0.5);
        let mut filtered = voice.clone();
        highpass_zero_phase(&mut filtered, 48_000, 70.0);
        let err =
            voice[4800..91_200].iter().zip(&filtered[4800..91_200]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.01, "300 Hz passes unchanged and unshifted: {err}");
    }

    #[test]
    fn loudness_matches_the_standard_reference_tone() {
        // BS.1770-4: a full-scale 997 Hz sine in one channel reads -3.01 LKFS; 20 dB quieter, -23.01.
        let x = sine(997.0, 48_000, 3.0, 1.0);
        let l = loudness_lufs(&x, 48_000).unwrap();
        assert!((l - (-3.01)).abs() < 0.1, "{l}");
        let quiet = sine(997.0, 44_100, 3.0, 0.1);
        assert!((loudness_lufs(&quiet, 44_100).unwrap() - (-23.01)).abs() < 0.1);
        assert_eq!(loudness_lufs(&vec![0.0; 48_000], 48_000), None);
    }

    #[test]
    fn the_chain_normalises_and_never_clips() {
        let mut x = sine(440.0, 16_000, 2.0, 0.05);
        PostProcess { loudness_lufs: Some(-16.0), ..PostProcess::default() }.apply(&mut x, 16_000);
        assert!((loudness_lufs(&x, 16_000).unwrap() + 16.0).abs() < 0.2);
        let mut loud = sine(440.0, 16_000, 2.0, 0.05);
        PostProcess { loudness_lufs: Some(0.0), ..PostProcess::default() }.apply(&mut loud, 16_000);
        let peak = loud.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
        assert!(peak <= 10f32.powf(-1.0 / 20.0) + 1e-6, "{peak}");
    }
}
