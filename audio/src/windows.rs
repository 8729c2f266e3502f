//! Running a processor over a long signal in overlapping windows, joined with linear crossfades. Bounds the
//! memory of one model call whatever the scene length; the crossfade hides the seams.

/// Applies `f` to windows of `window` samples overlapping by `overlap` and crossfades the results. `f` must
/// return as many samples as it gets. With `x.len() <= window` it is a single call.
pub fn process_windowed<E>(
    x: &[f32],
    window: usize,
    overlap: usize,
    mut f: impl FnMut(&[f32]) -> Result<Vec<f32>, E>,
) -> Result<Vec<f32>, E> {
    let window = window.max(2);
    let overlap = overlap.min(window / 2);
    if x.len() <= window {
        return f(x);
    }
    let hop = window - overlap;
    let mut out = vec![0.0f32; x.len()];
    let mut start = 0;
    loop {
        let end = (start + window).min(x.len());
        let y = f(&x[start..end])?;
        let fade_in = if start == 0 { 0 } else { overlap };
        for (i, &v) in y.iter().enumerate().take(end - start) {
            let w = if i < fade_in { (i as f32 + 0.5) / fade_in as f32 } else { 1.0 };
            // The previous window's tail fades out by the complement, so the weights sum to one.
            out[start + i] = if i < fade_in { out[start + i] * (1.0 - w) + v * w } else { v };
        }
        if end == x.len() {
            return Ok(out);
        }
        start += hop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_preserved_exactly_enough() {
        let x: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let y = process_windowed(&x, 1000, 200, |w| Ok::<_, ()>(w.to_vec())).unwrap();
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-6, "{err}");
    }

    #[test]
    fn every_call_is_bounded_and_errors_propagate() {
        let x = vec![1.0f32; 5000];
        let mut longest = 0;
        let y = process_windowed(&x, 800, 100, |w| {
            longest = longest.max(w.len());
            Ok::<_, ()>(w.iter().map(|v| v * 0.5).collect())
        })
        .unwrap();
        assert!(longest <= 800);
        assert!(y.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        assert_eq!(process_windowed(&x, 800, 100, |_| Err::<Vec<f32>, _>("boom")), Err("boom"));
    }
}
