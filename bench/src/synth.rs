//! Deterministic benchmark input: a noisy speech-like source recording and a plan of scene spans in it.

/// xorshift64: the same numbers on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Harmonic, syllable-modulated bursts with pauses, plus white noise at about 10 dB SNR.
pub fn speech_like(rate: u32, seconds: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let sr = rate as f32;
    (0..(seconds * f64::from(rate)) as usize)
        .map(|i| {
            let t = i as f32 / sr;
            let cycle = t % 3.2;
            let env =
                if cycle > 0.3 && cycle < 2.7 { (std::f32::consts::PI * 4.0 * t).sin().abs() * 0.8 + 0.2 } else { 0.0 };
            let f0 = 120.0 + 20.0 * (t * 0.7).sin();
            let voiced: f32 = (1..8).map(|k| (2.0 * std::f32::consts::PI * f0 * k as f32 * t).sin() / k as f32).sum();
            0.2 * env * voiced + 0.03 * (rng.next_f64() as f32 * 2.0 - 1.0)
        })
        .collect()
}

/// `count` scene spans with log-uniform durations in [min_s, max_s], placed at random in a source of
/// `source_s` seconds (which must be at least `max_s`).
pub fn scene_plan(count: usize, min_s: f64, max_s: f64, source_s: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let d = (min_s.ln() + rng.next_f64() * (max_s.ln() - min_s.ln())).exp();
            let start = rng.next_f64() * (source_s - d).max(0.0);
            (start, start + d)
        })
        .collect()
}
