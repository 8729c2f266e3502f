//! Running a processor over long signals in overlapping windows, joined with linear crossfades. Bounds the
//! memory of one model call whatever the scene length; the crossfade hides the seams. Two forms:
//! [`process_windowed`] (one signal, the last window shorter) and [`process_fixed`] (many signals, every window
//! the same length and every call the same number of windows: the fixed-shape batches of the worker).

use std::borrow::Cow;

/// Where the windows of a signal of `len` samples start: every `window - overlap` samples until one reaches
/// the end.
pub(crate) fn window_starts(len: usize, window: usize, overlap: usize) -> Vec<usize> {
    let hop = window.saturating_sub(overlap).max(1);
    let mut starts = vec![0];
    while starts.last().is_some_and(|&s| s + window < len) {
        starts.push(starts.last().copied().unwrap_or(0) + hop);
    }
    starts
}

/// Writes one window's output `y` at `start` of `out`: its first `skip` samples are dropped (what the previous
/// window left there stays), the next `fade_in` are crossfaded linearly with it (the previous window's tail
/// fades out by the complement, so the weights sum to one), the rest replace it.
fn blend(out: &mut [f32], start: usize, y: &[f32], skip: usize, fade_in: usize) {
    let start = start.min(out.len());
    for (i, (o, &v)) in out[start..].iter_mut().zip(y).enumerate().skip(skip) {
        let i = i - skip;
        *o = if i < fade_in {
            let w = (i as f32 + 0.5) / fade_in as f32;
            *o * (1.0 - w) + v * w
        } else {
            v
        };
    }
}

/// Clamps the window to at least 2 samples and the overlap to at most half of it.
fn clamp(window: usize, overlap: usize) -> (usize, usize) {
    let window = window.max(2);
    (window, overlap.min(window / 2))
}

/// Applies `f` to windows of `window` samples overlapping by `overlap` and crossfades the results. `f` must
/// return as many samples as it gets. With `x.len() <= window` it is a single call.
pub fn process_windowed<E>(
    x: &[f32],
    window: usize,
    overlap: usize,
    mut f: impl FnMut(&[f32]) -> Result<Vec<f32>, E>,
) -> Result<Vec<f32>, E> {
    let (window, overlap) = clamp(window, overlap);
    if x.len() <= window {
        return f(x);
    }
    let mut out = vec![0.0f32; x.len()];
    for start in window_starts(x.len(), window, overlap) {
        let y = f(&x[start..(start + window).min(x.len())])?;
        blend(&mut out, start, &y, 0, if start == 0 { 0 } else { overlap });
    }
    Ok(out)
}

/// [`process_windowed`] writing the output over the input, so a long signal is held once, not twice: each window's
/// input is copied out (one window's worth) before the previous window's output reaches it. `x` ends with the same
/// bits `process_windowed` would return. `finalize(out, input)` is called once for every stretch of the output
/// as it becomes final (no later window touches it), with that stretch's input: per-sample work that needs the
/// input (an attenuation limit) is done there. `f` must return as many samples as it gets (else
/// `shape_error`). On an error, `x` holds part output, part input.
pub fn process_windowed_in_place<E>(
    x: &mut [f32],
    window: usize,
    overlap: usize,
    mut f: impl FnMut(&[f32]) -> Result<Vec<f32>, E>,
    mut finalize: impl FnMut(&mut [f32], &[f32]),
    mut shape_error: impl FnMut(String) -> E,
) -> Result<(), E> {
    let (window, overlap) = clamp(window, overlap);
    let starts = window_starts(x.len(), window, overlap);
    // The input of the part of the next window that this window's output overwrites.
    let mut carried: Vec<f32> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = (start + window).min(x.len());
        let mut input = std::mem::take(&mut carried);
        input.extend_from_slice(&x[start + input.len()..end]);
        let y = f(&input)?;
        if y.len() != input.len() {
            return Err(shape_error(format!("a window of {} samples returned {}", input.len(), y.len())));
        }
        let next = starts.get(k + 1).copied().unwrap_or(x.len());
        carried = input.get(next - start..).map(<[f32]>::to_vec).unwrap_or_default();
        blend(x, start, &y, 0, if start == 0 { 0 } else { overlap });
        finalize(&mut x[start..next], &input[..next - start]);
    }
    Ok(())
}

/// Fixed-shape batching: cuts every signal of `signals` into windows of exactly `window` samples (overlapping by
/// `overlap`, the last one zero-padded), runs them through `f` in calls of exactly `batch` windows (the last
/// call filled up with silent windows), and joins each signal's outputs. In each overlap the later window's
/// output is a warm-up for its first `overlap - fade` samples (dropped: a recurrent model starts cold at a
/// window's start) and crossfades in over the last `fade`. `f` gets `batch` windows of `window` samples and must
/// return as many, each as long. A signal shorter than one window costs one window. Windows are gathered across
/// signals, so short signals share calls.
pub fn process_fixed<E>(
    signals: &[&[f32]],
    window: usize,
    (overlap, fade): (usize, usize),
    batch: usize,
    mut f: impl FnMut(&[&[f32]]) -> Result<Vec<Vec<f32>>, E>,
    mut shape_error: impl FnMut(String) -> E,
) -> Result<Vec<Vec<f32>>, E> {
    let (window, overlap) = clamp(window, overlap);
    let fade = fade.min(overlap);
    let batch = batch.max(1);
    let mut outputs: Vec<Vec<f32>> = signals.iter().map(|s| vec![0.0; s.len()]).collect();
    let plan: Vec<(usize, usize)> = signals
        .iter()
        .enumerate()
        .flat_map(|(i, s)| window_starts(s.len(), window, overlap).into_iter().map(move |start| (i, start)))
        .collect();
    let silence = vec![0.0f32; window];
    for calls in plan.chunks(batch) {
        let windows: Vec<Cow<'_, [f32]>> = calls
            .iter()
            .map(|&(i, start)| match signals[i].get(start..start + window) {
                Some(w) => Cow::Borrowed(w),
                None => {
                    let mut w = signals[i][start..].to_vec();
                    w.resize(window, 0.0);
                    Cow::Owned(w)
                }
            })
            .chain(std::iter::repeat(Cow::Borrowed(&silence[..])))
            .take(batch)
            .collect();
        let inputs: Vec<&[f32]> = windows.iter().map(|w| w.as_ref()).collect();
        let ys = f(&inputs)?;
        if ys.len() != batch || ys.iter().any(|y| y.len() != window) {
            return Err(shape_error(format!(
                "a call of {batch} windows of {window} samples returned {} windows of {:?} samples",
                ys.len(),
                ys.iter().map(Vec::len).collect::<std::collections::BTreeSet<_>>()
            )));
        }
        for (&(i, start), y) in calls.iter().zip(&ys) {
            let (skip, fade) = if start == 0 { (0, 0) } else { (overlap - fade, fade) };
            blend(&mut outputs[i], start, y, skip, fade);
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_err(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
    }

    #[test]
    fn identity_is_preserved_exactly_enough() {
        let x: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let y = process_windowed(&x, 1000, 200, |w| Ok::<_, ()>(w.to_vec())).unwrap();
        assert!(max_err(&x, &y) < 1e-6);
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

    #[test]
    fn in_place_gives_the_same_bits_and_finalizes_every_sample_once_with_its_input() {
        // A processor whose output depends on the whole window and its position in it, as a recurrent model's.
        let f = |w: &[f32]| -> Result<Vec<f32>, String> {
            let mut state = 0.0f32;
            Ok(w.iter()
                .map(|&v| {
                    state = 0.9 * state + v;
                    state * 0.37 + v
                })
                .collect())
        };
        for (len, window, overlap) in [(10_000, 1000, 200), (1000, 1000, 100), (999, 1000, 100), (2501, 1000, 500)] {
            let x: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
            let expected = process_windowed(&x, window, overlap, f).unwrap();
            let mut y = x.clone();
            let mut seen = Vec::new();
            process_windowed_in_place(
                &mut y,
                window,
                overlap,
                f,
                |out, input| seen.push((out.to_vec(), input.to_vec())),
                |e| e,
            )
            .unwrap();
            assert!(y.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "len {len}");
            let (outs, ins): (Vec<Vec<f32>>, Vec<Vec<f32>>) = seen.into_iter().unzip();
            assert_eq!(outs.concat(), expected);
            assert_eq!(ins.concat(), x, "each final stretch came with its own input");
        }
        let mut x = vec![0.5f32; 3000];
        let short = process_windowed_in_place(&mut x, 1000, 100, |w| Ok(w[1..].to_vec()), |_, _| {}, |e| e);
        assert_eq!(short.unwrap_err(), "a window of 1000 samples returned 999");
    }

    #[test]
    fn starts_cover_the_signal() {
        assert_eq!(window_starts(100, 100, 10), vec![0]);
        assert_eq!(window_starts(101, 100, 10), vec![0, 90]);
        assert_eq!(window_starts(10, 100, 10), vec![0]);
        assert_eq!(window_starts(300, 100, 20), vec![0, 80, 160, 240]);
    }

    #[test]
    fn fixed_batches_have_one_shape_and_preserve_every_signal() {
        let signals: Vec<Vec<f32>> =
            [50, 1000, 999, 1, 3333].iter().map(|&n| (0..n).map(|i| ((i * 7 % 13) as f32) - 6.0).collect()).collect();
        let refs: Vec<&[f32]> = signals.iter().map(Vec::as_slice).collect();
        let mut calls = 0;
        let out = process_fixed(
            &refs,
            400,
            (100, 30),
            3,
            |ws| {
                calls += 1;
                assert_eq!(ws.len(), 3);
                assert!(ws.iter().all(|w| w.len() == 400));
                Ok::<_, String>(ws.iter().map(|w| w.to_vec()).collect())
            },
            |e| e,
        )
        .unwrap();
        // 1 + 4 + 4 + 1 + 11 windows = 21 windows in 7 calls of 3.
        assert_eq!(calls, 7);
        for (x, y) in signals.iter().zip(&out) {
            assert!(max_err(x, y) < 1e-5);
        }
    }

    #[test]
    fn fixed_batches_check_what_the_processor_returns() {
        let x = vec![0.5f32; 10];
        let short = process_fixed(&[&x], 8, (2, 1), 2, |ws| Ok(ws.iter().map(|w| w[..4].to_vec()).collect()), |e| e);
        assert!(short.unwrap_err().contains("returned 2 windows of {4} samples"));
        let fails = process_fixed(&[&x], 8, (2, 1), 2, |_| Err("boom".to_string()), |e| e);
        assert_eq!(fails.unwrap_err(), "boom");
    }
}
