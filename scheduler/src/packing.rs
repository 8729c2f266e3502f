//! Packing scenes into jobs. A job is the unit a worker processes between two session restarts, so its size
//! trades restart overhead (small jobs) against retry cost and broker ack time-outs (large jobs).
//!
//! Scenes are taken in order (recording by recording, so a job reads few files) and a job is closed when the
//! next scene would take it over the budget. A scene longer than the budget gets a job of its own.

/// Groups scene durations into jobs; returns, per job, the indices of its scenes. Deterministic.
pub fn pack(durations_s: &[f64], budget_s: f64) -> Vec<Vec<usize>> {
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_s = 0.0;
    for (i, &d) in durations_s.iter().enumerate() {
        if !current.is_empty() && current_s + d > budget_s {
            jobs.push(std::mem::take(&mut current));
            current_s = 0.0;
        }
        current.push(i);
        current_s += d;
    }
    if !current.is_empty() {
        jobs.push(current);
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fills_up_to_the_budget() {
        assert_eq!(pack(&[100.0, 100.0, 100.0, 50.0], 300.0), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn long_scene_gets_its_own_job() {
        assert_eq!(pack(&[10.0, 400.0, 10.0], 300.0), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn empty_input_gives_no_jobs() {
        assert!(pack(&[], 300.0).is_empty());
    }

    proptest! {
        #[test]
        fn every_scene_once_and_budget_kept(durs in prop::collection::vec(0.01f64..500.0, 0..300), budget in 1.0f64..600.0) {
            let jobs = pack(&durs, budget);
            let mut seen: Vec<usize> = jobs.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..durs.len()).collect::<Vec<_>>());
            for job in &jobs {
                prop_assert!(!job.is_empty());
                let total: f64 = job.iter().map(|&i| durs[i]).sum();
                prop_assert!(total <= budget + 1e-9 || job.len() == 1);
            }
            prop_assert_eq!(pack(&durs, budget), jobs);
        }
    }
}
