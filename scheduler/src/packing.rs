//! Packing scenes into jobs. A job is the unit a worker processes between two session restarts, so its size
//! trades restart overhead (small jobs) against retry cost and broker ack time-outs (large jobs).
//!
//! Within each recording, scenes are packed first-fit-decreasing into bins of the budget (few, full jobs);
//! each bin lists its scenes in time order, so a worker reads the file front to back. Across recordings, a
//! recording's first bin joins the job left open by the previous recording when it fits, so many short
//! recordings still make full jobs while every job touches as few files as possible. A scene longer than the
//! budget gets a job of its own. Deterministic: the same scenes always give the same plan.
//!
//! In fixed-window mode a scene costs whole windows (its duration rounded up to the window length), which is
//! what a worker running fixed-shape windows actually computes.

/// How a scene's cost against the budget is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PackMode {
    /// Its duration.
    Duration,
    /// Its duration rounded up to whole windows of this many seconds.
    FixedWindows {
        /// Window length, seconds; at 0 or below, a scene costs its plain duration.
        window_s: f64,
    },
}

impl PackMode {
    /// Budget cost, in seconds, of a scene lasting `duration_s` seconds.
    pub fn cost(self, duration_s: f64) -> f64 {
        match self {
            Self::Duration => duration_s,
            Self::FixedWindows { window_s } if window_s > 0.0 => (duration_s / window_s).ceil().max(1.0) * window_s,
            Self::FixedWindows { .. } => duration_s,
        }
    }
}

/// A job: (recording, scene) pairs and their total cost in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedJob {
    /// (recording index, scene index) of each scene, in recording order then time order.
    pub scenes: Vec<(usize, usize)>,
    /// Total cost of its scenes against the budget, seconds.
    pub cost_s: f64,
}

/// First-fit-decreasing over one recording's scenes; bins come back ordered by their first scene, each with
/// its scene indices ascending.
fn pack_recording(durations_s: &[f64], budget_s: f64, mode: PackMode) -> Vec<(Vec<usize>, f64)> {
    let mut order: Vec<usize> = (0..durations_s.len()).collect();
    // Decreasing cost; ties keep time order, so the result is deterministic.
    order.sort_by(|&a, &b| mode.cost(durations_s[b]).total_cmp(&mode.cost(durations_s[a])).then(a.cmp(&b)));
    let mut bins: Vec<(Vec<usize>, f64)> = Vec::new();
    for i in order {
        let c = mode.cost(durations_s[i]);
        match bins.iter_mut().find(|(_, load)| load + c <= budget_s) {
            Some((scenes, load)) => {
                scenes.push(i);
                *load += c;
            }
            None => bins.push((vec![i], c)),
        }
    }
    for (scenes, _) in &mut bins {
        scenes.sort_unstable();
    }
    bins.sort_by_key(|(scenes, _)| scenes[0]);
    bins
}

/// Packs recordings one after another, so a submission of any size is planned with bounded memory: only the
/// job left open for the next recording is held.
#[derive(Debug)]
pub struct Packer {
    budget_s: f64,
    mode: PackMode,
    open: Option<PackedJob>,
}

impl Packer {
    /// A packer filling jobs of `budget_s` seconds (costed by `mode`).
    pub fn new(budget_s: f64, mode: PackMode) -> Self {
        Self { budget_s, mode, open: None }
    }

    /// Adds recording `recording` with its scene durations; returns the jobs this closed.
    pub fn add_recording(&mut self, recording: usize, durations_s: &[f64]) -> Vec<PackedJob> {
        let mut closed = Vec::new();
        for (scenes, cost_s) in pack_recording(durations_s, self.budget_s, self.mode) {
            let bin = PackedJob { scenes: scenes.into_iter().map(|s| (recording, s)).collect(), cost_s };
            self.open = match self.open.take() {
                Some(mut open) if open.cost_s + bin.cost_s <= self.budget_s => {
                    open.scenes.extend(bin.scenes);
                    open.cost_s += bin.cost_s;
                    Some(open)
                }
                Some(open) => {
                    closed.push(open);
                    Some(bin)
                }
                None => Some(bin),
            };
        }
        closed
    }

    /// Closes the open job, if any (at the end, or to make a chunk of the plan self-contained).
    pub fn flush(&mut self) -> Option<PackedJob> {
        self.open.take()
    }
}

/// Plans all recordings at once (tests and benchmarks).
pub fn pack(recordings: &[Vec<f64>], budget_s: f64, mode: PackMode) -> Vec<PackedJob> {
    let mut packer = Packer::new(budget_s, mode);
    let mut jobs: Vec<PackedJob> =
        recordings.iter().enumerate().flat_map(|(r, d)| packer.add_recording(r, d)).collect();
    jobs.extend(packer.flush());
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(jobs: &[PackedJob]) -> Vec<Vec<(usize, usize)>> {
        jobs.iter().map(|j| j.scenes.clone()).collect()
    }

    #[test]
    fn first_fit_decreasing_fills_jobs_and_keeps_time_order() {
        // 250 + 50 fill one job; 200 + 100 another.
        let jobs = pack(&[vec![200.0, 250.0, 100.0, 50.0]], 300.0, PackMode::Duration);
        assert_eq!(ids(&jobs), vec![vec![(0, 0), (0, 2)], vec![(0, 1), (0, 3)]]);
    }

    #[test]
    fn short_recordings_share_jobs() {
        let jobs = pack(&[vec![100.0], vec![100.0], vec![150.0]], 300.0, PackMode::Duration);
        assert_eq!(ids(&jobs), vec![vec![(0, 0), (1, 0)], vec![(2, 0)]]);
    }

    #[test]
    fn long_scene_gets_its_own_job() {
        let jobs = pack(&[vec![10.0, 400.0, 10.0]], 300.0, PackMode::Duration);
        assert_eq!(ids(&jobs), vec![vec![(0, 0), (0, 2)], vec![(0, 1)]]);
    }

    #[test]
    fn fixed_windows_count_whole_windows() {
        let mode = PackMode::FixedWindows { window_s: 4.0 };
        assert_eq!(mode.cost(0.5), 4.0);
        assert_eq!(mode.cost(8.0), 8.0);
        assert_eq!(mode.cost(8.1), 12.0);
        // Three 5 s scenes cost 8 s each: only two fit in 20 s.
        assert_eq!(pack(&[vec![5.0, 5.0, 5.0]], 20.0, mode).len(), 2);
    }

    #[test]
    fn empty_input_gives_no_jobs() {
        assert!(pack(&[], 300.0, PackMode::Duration).is_empty());
        assert!(pack(&[vec![], vec![]], 300.0, PackMode::Duration).is_empty());
    }

    proptest! {
        #[test]
        fn every_scene_once_budget_kept_deterministic_and_local(
            recs in prop::collection::vec(prop::collection::vec(0.01f64..500.0, 0..40), 0..20),
            budget in 1.0f64..600.0,
            window in prop::option::of(0.5f64..10.0),
        ) {
            let mode = window.map_or(PackMode::Duration, |w| PackMode::FixedWindows { window_s: w });
            let jobs = pack(&recs, budget, mode);
            let mut seen: Vec<(usize, usize)> = jobs.iter().flat_map(|j| j.scenes.clone()).collect();
            seen.sort_unstable();
            let all: Vec<(usize, usize)> = recs.iter().enumerate().flat_map(|(r, d)| (0..d.len()).map(move |s| (r, s))).collect();
            prop_assert_eq!(seen, all);
            for job in &jobs {
                prop_assert!(!job.scenes.is_empty());
                let cost: f64 = job.scenes.iter().map(|&(r, s)| mode.cost(recs[r][s])).sum();
                prop_assert!((cost - job.cost_s).abs() < 1e-6);
                prop_assert!(cost <= budget + 1e-9 || job.scenes.len() == 1);
                // Locality: a job's scenes are in recording order and time order within a recording.
                prop_assert!(job.scenes.windows(2).all(|w| w[0] < w[1]));
            }
            prop_assert_eq!(pack(&recs, budget, mode), jobs);
        }
    }
}
