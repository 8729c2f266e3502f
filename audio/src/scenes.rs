//! Energy-based scene splitting in two passes: a recording becomes spans of speech-level audio separated by
//! pauses.
//!
//! 1. Pass one cuts at long pauses (`min_silence_s`, default 0.5 s) into voiced regions.
//! 2. Pass two re-cuts every region longer than `max_scene_s` (default 30 s) at shorter pauses
//!    (`split_silence_s`, default 0.2 s), grouping the pieces between them into scenes of at most the maximum.
//! 3. What still has no usable pause is cut into equal parts no longer than the maximum (the fixed-length
//!    fallback).
//!
//! Scenes keep `pad_s` (0.1 s) of context, and scenes shorter than `min_scene_s` (1 s) join a neighbour when
//! the result fits. Works on per-frame energies (see `decode::frame_energies_db`), so it is pure and cheap. The
//! silence threshold adapts to the recording: `margin_db` (6 dB) above its noise floor (10th percentile of frame
//! energies), never below `floor_db` (-60 dBFS) and never so high that the loud part (90th percentile) would
//! count as silence; a recording that never rises above `floor_db` has no scenes.

/// Splitter settings; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitParams {
    /// Analysis frame, seconds.
    pub frame_s: f64,
    /// Scenes shorter than this are merged with a neighbour when the result stays within `max_scene_s`.
    pub min_scene_s: f64,
    /// No scene is longer than this; longer voiced regions are cut into equal parts.
    pub max_scene_s: f64,
    /// Pass one: a pause must last this long to separate scenes.
    pub min_silence_s: f64,
    /// Pass two: shorter pauses at which regions longer than `max_scene_s` are cut.
    pub split_silence_s: f64,
    /// Silence is at most this far above the noise floor.
    pub margin_db: f32,
    /// Frames quieter than this are always silence, and a recording that never rises above it has no scenes.
    pub floor_db: f32,
    /// Context kept around each voiced region, seconds.
    pub pad_s: f64,
}

impl Default for SplitParams {
    fn default() -> Self {
        Self {
            frame_s: 0.01,
            min_scene_s: 1.0,
            max_scene_s: 30.0,
            min_silence_s: 0.5,
            split_silence_s: 0.2,
            margin_db: 6.0,
            floor_db: -60.0,
            pad_s: 0.1,
        }
    }
}

/// A span of the source recording, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Start, seconds from the beginning of the recording.
    pub start_s: f64,
    /// End, seconds from the beginning of the recording.
    pub end_s: f64,
}

impl Span {
    /// Length of the span, seconds.
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

fn percentile(sorted: &[f32], pct: f64) -> f32 {
    let idx = ((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The per-frame silence decision.
fn silent_frames(energies: &[f32], p: &SplitParams) -> Vec<bool> {
    let mut sorted = energies.to_vec();
    sorted.sort_by(f32::total_cmp);
    let (quiet, loud) = (percentile(&sorted, 10.0), percentile(&sorted, 90.0));
    if loud < p.floor_db {
        return vec![true; energies.len()];
    }
    let threshold = if loud - quiet < 2.0 * p.margin_db {
        // No contrast between pauses and speech: only absolute silence counts.
        p.floor_db
    } else {
        (quiet + p.margin_db).max(p.floor_db).min(loud - p.margin_db)
    };
    energies.iter().map(|&e| e < threshold).collect()
}

/// Voiced regions as frame ranges, with pauses shorter than `min_silence` frames bridged.
fn voiced_regions(silent: &[bool], min_silence: usize) -> Vec<(usize, usize)> {
    let mut regions: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < silent.len() {
        if silent[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < silent.len() && !silent[i] {
            i += 1;
        }
        match regions.last_mut() {
            Some(last) if start - last.1 < min_silence => last.1 = i,
            _ => regions.push((start, i)),
        }
    }
    regions
}

/// Pass two: splits a long region at its shorter pauses into groups of at most `max_frames` frames. A piece that
/// is longer on its own is left whole here; the fixed-length fallback cuts it later.
fn recut(silent: &[bool], min_silence: usize, max_frames: usize, offset: usize, out: &mut Vec<(usize, usize)>) {
    let mut group: Option<(usize, usize)> = None;
    for (a, b) in voiced_regions(silent, min_silence) {
        let (a, b) = (a + offset, b + offset);
        group = match group {
            Some((start, _)) if b - start <= max_frames => Some((start, b)),
            Some(done) => {
                out.push(done);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    out.extend(group);
}

/// Cuts a recording described by its frame energies into scenes.
pub fn split(energies: &[f32], duration_s: f64, p: &SplitParams) -> Vec<Span> {
    if energies.is_empty() || duration_s <= 0.0 {
        return Vec::new();
    }
    split_silent(&silent_frames(energies, p), p.frame_s, duration_s, p)
}

/// Cuts a recording described by a per-frame silence decision (frames of `frame_s` seconds) into scenes: the
/// same passes as `split`, for any detector (energy, or a voice-activity model).
pub(crate) fn split_silent(silent: &[bool], frame_s: f64, duration_s: f64, p: &SplitParams) -> Vec<Span> {
    if silent.is_empty() || duration_s <= 0.0 {
        return Vec::new();
    }
    let p = &SplitParams { frame_s, ..p.clone() };
    let frames = |s: f64| ((s / p.frame_s).round() as usize).max(1);
    let max_frames = ((p.max_scene_s / p.frame_s).floor() as usize).max(1);
    let mut regions = Vec::new();
    for (a, b) in voiced_regions(silent, frames(p.min_silence_s)) {
        if b - a <= max_frames {
            regions.push((a, b));
        } else {
            recut(&silent[a..b], frames(p.split_silence_s), max_frames, a, &mut regions);
        }
    }

    // Frames to seconds, padded into the neighbouring pauses but never past their midpoints.
    let mut spans: Vec<Span> = Vec::with_capacity(regions.len());
    for (k, &(a, b)) in regions.iter().enumerate() {
        let (a_s, b_s) = (a as f64 * p.frame_s, (b as f64 * p.frame_s).min(duration_s));
        let lo = if k == 0 { 0.0 } else { (regions[k - 1].1 as f64 * p.frame_s + a_s) / 2.0 };
        let hi = regions.get(k + 1).map_or(duration_s, |next| (b_s + next.0 as f64 * p.frame_s) / 2.0);
        spans.push(Span { start_s: (a_s - p.pad_s).max(lo), end_s: (b_s + p.pad_s).min(hi) });
    }

    // Merge short scenes into their successor while the result fits.
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last)
                if (last.duration_s() < p.min_scene_s || span.duration_s() < p.min_scene_s)
                    && span.end_s - last.start_s <= p.max_scene_s =>
            {
                last.end_s = span.end_s
            }
            _ => merged.push(span),
        }
    }

    // Cut what is still too long into equal parts.
    let mut scenes = Vec::with_capacity(merged.len());
    for span in merged {
        let parts = (span.duration_s() / p.max_scene_s).ceil().max(1.0) as usize;
        let step = span.duration_s() / parts as f64;
        // Shared boundaries, so consecutive parts meet exactly (no float gap between them).
        let boundary = |i: usize| if i == parts { span.end_s } else { span.start_s + step * i as f64 };
        for i in 0..parts {
            scenes.push(Span { start_s: boundary(i), end_s: boundary(i + 1) });
        }
    }
    scenes.retain(|s| s.duration_s() > 0.0);
    scenes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> SplitParams {
        SplitParams::default()
    }

    /// Energies for a pattern of (seconds, dB) segments at 10 ms frames.
    fn pattern(segments: &[(f64, f32)]) -> (Vec<f32>, f64) {
        let mut e = Vec::new();
        for &(secs, db) in segments {
            e.extend(std::iter::repeat_n(db, (secs * 100.0).round() as usize));
        }
        let d = e.len() as f64 / 100.0;
        (e, d)
    }

    #[test]
    fn cuts_at_pauses() {
        let (e, d) = pattern(&[(0.5, -80.0), (3.0, -20.0), (1.0, -80.0), (4.0, -20.0), (0.5, -80.0)]);
        let scenes = split(&e, d, &params());
        assert_eq!(scenes.len(), 2, "{scenes:?}");
        assert!((scenes[0].start_s - 0.4).abs() < 1e-9 && (scenes[0].end_s - 3.6).abs() < 1e-9);
        assert!((scenes[1].start_s - 4.4).abs() < 1e-9 && (scenes[1].end_s - 8.6).abs() < 1e-9);
    }

    #[test]
    fn short_pauses_do_not_cut() {
        let (e, d) = pattern(&[(3.0, -20.0), (0.1, -80.0), (3.0, -20.0)]);
        assert_eq!(split(&e, d, &params()).len(), 1);
    }

    #[test]
    fn threshold_follows_a_noisy_floor() {
        // Noise at -35 dBFS, speech at -15 dBFS: pauses are noise, not digital silence.
        let (e, d) = pattern(&[(2.0, -15.0), (1.0, -35.0), (2.0, -15.0)]);
        assert_eq!(split(&e, d, &params()).len(), 2);
    }

    #[test]
    fn silent_recording_has_no_scenes() {
        let (e, d) = pattern(&[(5.0, -90.0)]);
        assert!(split(&e, d, &params()).is_empty());
    }

    #[test]
    fn long_regions_are_recut_at_short_pauses_before_falling_back_to_fixed_cuts() {
        // 57 s of speech whose only pauses (0.25 s) are too short for pass one.
        let (e, d) = pattern(&[(20.0, -20.0), (0.25, -80.0), (20.0, -20.0), (0.25, -80.0), (17.0, -20.0)]);
        let scenes = split(&e, d, &params());
        assert_eq!(scenes.len(), 3, "{scenes:?}");
        // The cuts fall inside the pauses, not at equal parts.
        assert!(scenes[0].end_s > 20.0 && scenes[0].end_s < 20.25, "{scenes:?}");
        assert!(scenes[1].end_s > 40.25 && scenes[1].end_s < 40.5, "{scenes:?}");
    }

    #[test]
    fn long_speech_is_cut_at_max_length() {
        let (e, d) = pattern(&[(95.0, -20.0)]);
        let scenes = split(&e, d, &params());
        assert_eq!(scenes.len(), 4);
        assert!(scenes.iter().all(|s| s.duration_s() <= 30.0 + 1e-9));
        assert!((scenes[3].end_s - 95.0).abs() < 1e-9);
    }

    #[test]
    fn short_blips_merge_with_neighbours() {
        let (e, d) = pattern(&[(0.2, -20.0), (0.4, -80.0), (0.2, -20.0), (0.4, -80.0), (3.0, -20.0)]);
        let scenes = split(&e, d, &params());
        assert_eq!(scenes.len(), 1, "{scenes:?}");
    }

    proptest! {
        #[test]
        fn scenes_are_ordered_bounded_and_cover_all_voiced_frames(
            segs in prop::collection::vec((0.05f64..20.0, prop_oneof![Just(-90.0f32), Just(-40.0f32), Just(-15.0f32)]), 1..40),
            max_scene_s in 2.0f64..40.0,
        ) {
            let (e, d) = pattern(&segs);
            prop_assume!(!e.is_empty());
            let p = SplitParams { max_scene_s, ..params() };
            let scenes = split(&e, d, &p);
            for w in scenes.windows(2) {
                prop_assert!(w[0].end_s <= w[1].start_s + 1e-9);
            }
            for s in &scenes {
                prop_assert!(s.start_s >= 0.0 && s.end_s <= d + 1e-9 && s.end_s > s.start_s);
                prop_assert!(s.duration_s() <= max_scene_s + 1e-6);
            }
            let silent = silent_frames(&e, &p);
            for (i, &is_silent) in silent.iter().enumerate() {
                if !is_silent {
                    let t = (i as f64 + 0.5) * p.frame_s;
                    prop_assert!(scenes.iter().any(|s| s.start_s <= t && t <= s.end_s), "voiced frame {i} not covered");
                }
            }
        }
    }
}
