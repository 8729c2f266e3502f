//! Level measurements used for result rows and for showing that enhancement worked.

/// Power (mean square) to dBFS, floored at -150 dB so silence stays finite.
pub(crate) fn power_to_db(power: f64) -> f32 {
    (10.0 * power.max(1e-15).log10()) as f32
}

/// RMS level of a signal in dBFS.
pub fn rms_db(x: &[f32]) -> f32 {
    if x.is_empty() {
        return power_to_db(0.0);
    }
    let p = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64;
    power_to_db(p)
}

/// Noise floor: the `pct` percentile (0-100) of the energies of `frame`-sample frames, in dBFS.
/// Speech pauses dominate the low percentiles, so this tracks the background that enhancement should remove.
pub fn noise_floor_db(x: &[f32], frame: usize, pct: f64) -> f32 {
    let mut energies: Vec<f32> = x.chunks(frame.max(1)).map(rms_db).collect();
    if energies.is_empty() {
        return power_to_db(0.0);
    }
    energies.sort_by(f32::total_cmp);
    let idx = ((pct / 100.0) * (energies.len() - 1) as f64).round() as usize;
    energies[idx.min(energies.len() - 1)]
}

/// Signal-to-noise ratio of `estimate` against the clean `reference`, in dB, over their common length.
pub fn snr_db(reference: &[f32], estimate: &[f32]) -> f32 {
    let n = reference.len().min(estimate.len());
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (&r, &e) in reference[..n].iter().zip(&estimate[..n]) {
        sig += f64::from(r) * f64::from(r);
        err += f64::from(r - e) * f64::from(r - e);
    }
    (10.0 * (sig.max(1e-20) / err.max(1e-20)).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_square_is_zero_db() {
        assert!((rms_db(&[1.0, -1.0, 1.0, -1.0]) - 0.0).abs() < 1e-6);
        assert!((rms_db(&[0.5; 8]) - (-6.0206)).abs() < 1e-3);
    }

    #[test]
    fn snr_of_known_mix() {
        let clean: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.05).sin()).collect();
        let noisy: Vec<f32> = clean.iter().enumerate().map(|(i, &c)| c + if i % 2 == 0 { 0.1 } else { -0.1 }).collect();
        // Clean power 0.5, noise power 0.01 -> 17 dB.
        assert!((snr_db(&clean, &noisy) - 16.99).abs() < 0.1);
    }

    #[test]
    fn noise_floor_finds_the_quiet_part() {
        let mut x = vec![0.001f32; 4800];
        x.extend(std::iter::repeat_n(0.5f32, 4800));
        assert!((noise_floor_db(&x, 480, 10.0) - (-60.0)).abs() < 0.01);
    }
}
