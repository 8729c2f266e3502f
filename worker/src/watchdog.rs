//! The watchdog's bound: how long a group of scenes may run without an answer before it is abandoned as hung.
//! The bound is a floor (session creation, a cold GPU) plus ten times what the audio should take at the speed
//! measured on this worker so far; before the first measurement, real time is assumed.

use std::time::Duration;

/// How many times the expected processing time a scene may take before it counts as hung.
const SLACK: f64 = 10.0;

/// The measured speed and the floor of the bound.
#[derive(Debug, Clone)]
pub struct Watchdog {
    floor: Duration,
    /// Processing seconds per second of audio, smoothed (None before any scene finished).
    seconds_per_second: Option<f64>,
}

impl Watchdog {
    /// A watchdog with `floor` as the least bound.
    pub fn new(floor: Duration) -> Self {
        Self { floor, seconds_per_second: None }
    }

    /// The bound for `audio_s` seconds of audio.
    pub fn bound(&self, audio_s: f64) -> Duration {
        let speed = self.seconds_per_second.unwrap_or(1.0);
        self.floor + Duration::from_secs_f64((audio_s.max(0.0) * speed * SLACK).min(86_400.0))
    }

    /// Takes in one finished scene: `audio_s` seconds of audio processed in `processing_ms`.
    pub fn observe(&mut self, audio_s: f64, processing_ms: f64) {
        if audio_s <= 0.0 || !processing_ms.is_finite() {
            return;
        }
        let r = (processing_ms / 1000.0 / audio_s).max(0.001);
        self.seconds_per_second = Some(match self.seconds_per_second {
            None => r,
            Some(s) => 0.8 * s + 0.2 * r,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_follows_the_measured_speed_above_the_floor() {
        let mut w = Watchdog::new(Duration::from_secs(60));
        assert_eq!(w.bound(10.0), Duration::from_secs(160), "real time assumed before any measurement");
        w.observe(10.0, 200.0);
        assert_eq!(w.bound(10.0), Duration::from_secs(62));
        assert_eq!(w.bound(0.0), Duration::from_secs(60));
    }
}
