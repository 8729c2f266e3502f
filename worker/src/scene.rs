//! One scene, end to end, on the calling (blocking) thread: read its span from the recording, resample to the
//! model's rate, enhance (with out-of-memory recovery), post-process (`audio::dsp`), write the output, measure.
//! A scene longer than the model's window is enhanced over its own input, so it is held once.
//! With fixed-shape batching, a group of scenes goes through the same steps together.
//!
//! Spans are read through one [`SpanReader`] per thread (the inference thread, or an isolated child's), so the
//! scenes of a job, which arrive in source order, are read from each recording in one forward pass.

use crate::asr::{self, AsrError, Language, Transcript};
use crate::batching::FixedWindows;
use crate::failure::{SceneError, SceneFailure};
use crate::memory::MemoryProbe;
use crate::model::InferenceError;
use crate::output_check::{self, OnBadOutput};
use crate::recovery::{self, Recovered, RecoveryConfig};
use crate::sessions::{EnhanceError, Sessions};
use crate::tuning::Tuning;
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::OutputFormat;
use scenequeue_audio::spans::SpanReader;
use scenequeue_audio::stream::Decoder;
use scenequeue_audio::windows::process_windowed_in_place;
use scenequeue_audio::{check, encode, level, resample};
use scenequeue_core::options::AsrOptions;
use scenequeue_core::results::Measurements;
use scenequeue_core::states::{OutputFlag, RecoveryStep};
use scenequeue_core::transcripts::{self, AsrInput};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to do for one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneTask {
    /// The recording.
    pub source: PathBuf,
    /// Start in the recording, seconds.
    pub start_s: f64,
    /// End in the recording, seconds.
    pub end_s: f64,
    /// The enhanced file to write.
    pub output: PathBuf,
    /// The batch's settings where they differ from the runner's (attenuation limit, post-filter, chain).
    #[serde(default)]
    pub tuning: Tuning,
    /// The decoder the submission read the recording with (None: the first that reads it).
    #[serde(default)]
    pub decoder: Option<Decoder>,
    /// Transcribe what was written, with this recognition model and language.
    #[serde(default)]
    pub transcribe: Option<AsrOptions>,
}

/// What one scene produced: its measurements, as its result row records them (the file is the task's output).
pub type SceneOutput = Measurements;

thread_local! {
    /// The recording being read, kept open between the scenes of a job.
    static READER: RefCell<SpanReader> = RefCell::new(SpanReader::new());
}

/// Closes the recording kept open for the next scene (at the end of a job).
pub fn release_reader() {
    READER.with_borrow_mut(SpanReader::close);
}

/// The scene's span of its recording, mono, at the model's rate.
/// A decoder that panics on a file (a recording replaced by a hostile one after submission) fails the scene
/// with the panic's message; the reader is closed, so the next scene opens its recording afresh.
fn read(task: &SceneTask, model_rate: u32) -> Result<Vec<f32>, SceneFailure> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        READER.with_borrow_mut(|reader| reader.read(&task.source, task.decoder, task.start_s, task.end_s))
    }));
    let (audio, rate) = match read {
        Ok(read) => read?,
        Err(panic) => {
            release_reader();
            let message = scenequeue_core::panics::message(panic.as_ref());
            return Err(SceneFailure::Scene(SceneError::DecoderCrashed { path: task.source.clone(), message }));
        }
    };
    if rate == model_rate {
        return Ok(audio);
    }
    Ok(resample::resample(&audio, rate, model_rate)?)
}

/// How a scene is finished: the post-processing chain, the output format, and what becomes of an output that
/// fails its checks.
pub type Finishing<'a> = (&'a PostProcess, OutputFormat, OnBadOutput);

/// A scene's input as [`finish`] sees it.
enum Input<'a> {
    /// Held beside the enhanced audio.
    Held(&'a [f32]),
    /// Overwritten by the enhanced audio (a long scene, see [`process`]): measured before, the attenuation limit
    /// already applied, read again from the recording if it is needed whole (the original written instead, or
    /// transcribed).
    Overwritten {
        /// Its level, dBFS.
        rms_db: f32,
        /// Its speech-band level, dBFS.
        speech_band_db: f32,
    },
}

impl Input<'_> {
    /// The whole input, as held or read again.
    fn whole(&self, task: &SceneTask, rate: u32) -> Result<std::borrow::Cow<'_, [f32]>, SceneFailure> {
        match self {
            Self::Held(x) => Ok(std::borrow::Cow::Borrowed(x)),
            Self::Overwritten { .. } => read(task, rate).map(std::borrow::Cow::Owned),
        }
    }
}

/// Checks, post-processes and writes the enhanced scene, then transcribes what was written when the batch asks
/// for it; `spent` is the processing time it is charged.
fn finish(
    sessions: &mut Sessions,
    task: &SceneTask,
    (input, mut out): (Input<'_>, Recovered),
    model_rate: u32,
    (post, format, on_bad_output): Finishing<'_>,
    probe: &MemoryProbe,
    spent: Duration,
) -> Result<SceneOutput, SceneFailure> {
    let started = Instant::now();
    let (rms_in_db, speech_in_db) = match input {
        Input::Held(x) => {
            task.tuning.limit_attenuation(&mut out.audio, x);
            (level::rms_db(x), check::speech_band_db(x, model_rate))
        }
        Input::Overwritten { rms_db, speech_band_db } => (rms_db, speech_band_db),
    };
    let original = |out: &mut Vec<f32>| {
        out.extend_from_slice(&input.whole(task, model_rate).map_err(|e| e.to_string())?);
        Ok(())
    };
    let checked = output_check::settle_measured(speech_in_db, &mut out.audio, model_rate, on_bad_output, original)
        .map_err(|reason| SceneFailure::Scene(SceneError::BadOutput { path: task.source.clone(), reason }))?;
    if !checked.flags.contains(&OutputFlag::Original) {
        task.tuning.post.as_ref().unwrap_or(post).apply(&mut out.audio, model_rate);
    }
    encode::write(&task.output, &out.audio, model_rate, format)?;
    if !checked.flags.is_empty() {
        tracing::warn!(source = %task.source.display(), start_s = task.start_s, flags = ?checked.flags,
            speech_in_db = checked.speech_in_db, speech_out_db = checked.speech_out_db, "enhanced scene flagged");
    }
    let transcript = match &task.transcribe {
        Some(asr) => Some(transcribe(sessions, asr, (&input, task, &out.audio), &checked.flags, model_rate)?),
        None => None,
    };
    Ok(SceneOutput {
        sample_rate: model_rate,
        duration_s: out.audio.len() as f64 / f64::from(model_rate),
        rms_in_db,
        rms_out_db: level::rms_db(&out.audio),
        processing_ms: (spent + started.elapsed()).as_secs_f64() * 1000.0,
        recovery: out.step,
        oom_count: out.ooms,
        gpu_mem_mb: probe.sample().gpu_held_mb(),
        flags: checked.flags,
        speech_in_db: checked.speech_in_db,
        speech_out_db: checked.speech_out_db,
        transcript,
    })
}

/// What the recogniser hears in the scene: the untouched input or the audio as written (post-processing
/// included), or with `auto` both, keeping the one it is surer of (`core::transcripts::surer`). An enhanced
/// output that failed its speech checks (`flags`: speech collapsed, silent) is not heard by `auto` at all.
fn transcribe(
    sessions: &mut Sessions,
    asr: &AsrOptions,
    (input, task, written): (&Input<'_>, &SceneTask, &[f32]),
    flags: &[OutputFlag],
    rate: u32,
) -> Result<Transcript, SceneFailure> {
    let language: Language = asr.language.parse().map_err(|reason: String| {
        SceneFailure::Transcription(AsrError::Invalid { path: PathBuf::from(&asr.model), reason })
    })?;
    let mut hear = |audio: &[f32], heard: AsrInput| -> Result<Transcript, SceneFailure> {
        let audio = resample::resample(audio, rate, asr::SAMPLE_RATE)?;
        let mut t = sessions.transcribe(&asr.model, &audio, &language).map_err(SceneFailure::Transcription)?;
        t.heard = Some(heard);
        Ok(t)
    };
    match asr.input {
        AsrInput::Enhanced => hear(written, AsrInput::Enhanced),
        AsrInput::Original => hear(&input.whole(task, rate)?, AsrInput::Original),
        AsrInput::Auto if flags.iter().any(|f| matches!(f, OutputFlag::SpeechCollapsed | OutputFlag::Silent)) => {
            hear(&input.whole(task, rate)?, AsrInput::Original)
        }
        AsrInput::Auto => {
            let original = hear(&input.whole(task, rate)?, AsrInput::Original)?;
            let enhanced = hear(written, AsrInput::Enhanced)?;
            let (mut kept, other) = if transcripts::surer(enhanced.avg_logprob, original.avg_logprob) {
                (enhanced, original)
            } else {
                (original, enhanced)
            };
            kept.other_logprob = Some(other.avg_logprob);
            Ok(kept)
        }
    }
}

/// One scene. A scene longer than the model's window (`recovery::long_windows`) is enhanced over its own input,
/// window by window, so it is held once instead of twice (a 30-minute scene at 48 kHz is 346 MB); if that fails
/// for lack of memory, its input is read again and recovered as any other scene.
pub fn process(
    sessions: &mut Sessions,
    model: &str,
    task: &SceneTask,
    recovery: &RecoveryConfig,
    output: Finishing<'_>,
    probe: &MemoryProbe,
) -> Result<SceneOutput, SceneFailure> {
    let started = Instant::now();
    let model_rate = sessions.get(model)?.sample_rate();
    sessions.set_post_filter(model, task.tuning.post_filter_beta)?;
    let mut audio = read(task, model_rate)?;
    let (window, fade) = match recovery::long_windows(sessions, model, model_rate, recovery)? {
        Some((window, fade)) if audio.len() > window => (window, fade),
        _ => {
            let out = recovery::enhance(sessions, model, &audio, model_rate, recovery)?;
            return finish(sessions, task, (Input::Held(&audio), out), model_rate, output, probe, started.elapsed());
        }
    };
    let input =
        Input::Overwritten { rms_db: level::rms_db(&audio), speech_band_db: check::speech_band_db(&audio, model_rate) };
    let ran = process_windowed_in_place(
        &mut audio,
        window,
        fade,
        |w| sessions.enhance(model, w),
        |out, x| task.tuning.limit_attenuation(out, x),
        |why| EnhanceError::Inference(InferenceError::Shape(why)),
    );
    match ran {
        Ok(()) => {
            let out = Recovered { audio, step: RecoveryStep::None, ooms: 0 };
            finish(sessions, task, (input, out), model_rate, output, probe, started.elapsed())
        }
        Err(e) if e.is_out_of_memory() => {
            drop(audio);
            let audio = read(task, model_rate)?;
            let out = recovery::recover(sessions, model, &audio, model_rate, recovery, e)?;
            finish(sessions, task, (Input::Held(&audio), out), model_rate, output, probe, started.elapsed())
        }
        Err(e) => Err(e.into()),
    }
}

/// A group of scenes through fixed-shape window batches (`batching`). Each scene gets its own outcome: one
/// that cannot be read fails alone. If a batched call fails, the group's scenes run one by one through
/// [`process`]'s path (out-of-memory recovery included), so a failure lands on its own scene; after an
/// out-of-memory error they run on a fresh session and are recorded as recovered. A model that
/// cannot be loaded ends the group with that one (job-level) failure. Each scene is charged the group's
/// inference time in proportion to its length.
pub fn process_group(
    sessions: &mut Sessions,
    model: &str,
    tasks: &[SceneTask],
    (fixed, recovery): (&FixedWindows, &RecoveryConfig),
    output: Finishing<'_>,
    probe: &MemoryProbe,
) -> Vec<Result<SceneOutput, SceneFailure>> {
    let (model_rate, batches) = match sessions.get(model) {
        Ok(enhancer) => (enhancer.sample_rate(), enhancer.batches()),
        Err(e) => return vec![Err(e.into())],
    };
    // A group's scenes are of one job, so of one batch: they share its settings.
    let beta = tasks.first().and_then(|t| t.tuning.post_filter_beta);
    if let Err(e) = sessions.set_post_filter(model, beta) {
        return match e {
            // The same refusal for every scene of the group.
            EnhanceError::Inference(InferenceError::Unsupported(why)) => tasks
                .iter()
                .map(|_| Err(EnhanceError::Inference(InferenceError::Unsupported(why.clone())).into()))
                .collect(),
            e => vec![Err(e.into())],
        };
    }
    // An adapter that cannot run a batch in one call gets its windows one per call: still one shape, no padding.
    let fixed = if batches { *fixed } else { FixedWindows { batch: 1, ..*fixed } };
    let mut inputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        let started = Instant::now();
        inputs.push(read(task, model_rate).map(|input| (input, started.elapsed())));
    }
    let readable: Vec<&[f32]> = inputs.iter().flatten().map(|(input, _)| input.as_slice()).collect();
    let total: usize = readable.iter().map(|x| x.len()).sum();
    let started = Instant::now();
    let mut batch_oom = false;
    let mut batched = match fixed.run(&readable, model_rate, |w| sessions.enhance_batch(model, w)) {
        Ok(outputs) => Some(outputs.into_iter()),
        Err(EnhanceError::Model(e)) => return vec![Err(e.into())],
        Err(e) => {
            tracing::warn!(error = %e, "a batched call failed; running the group's scenes one by one");
            if e.is_out_of_memory() {
                batch_oom = true;
                sessions.reset();
            }
            None
        }
    };
    let inference = started.elapsed();
    let mut oom_unbilled = batch_oom;
    let mut results = Vec::with_capacity(tasks.len());
    for (task, input) in tasks.iter().zip(inputs) {
        let result = input.and_then(|(input, read_time)| match batched.as_mut().and_then(Iterator::next) {
            Some(audio) => {
                let share = inference.mul_f64(input.len() as f64 / total.max(1) as f64);
                let out = Recovered { audio, step: RecoveryStep::None, ooms: 0 };
                finish(sessions, task, (Input::Held(&input), out), model_rate, output, probe, read_time + share)
            }
            None => {
                let started = Instant::now();
                let mut out = recovery::enhance(sessions, model, &input, model_rate, recovery)?;
                if batch_oom {
                    // Recovered from the batch's out-of-memory error by running alone on a fresh session; the
                    // error itself is counted once, on the first of them.
                    out.ooms += u32::from(std::mem::take(&mut oom_unbilled));
                    if out.step == RecoveryStep::None {
                        out.step = RecoveryStep::Recreated;
                    }
                }
                finish(
                    sessions,
                    task,
                    (Input::Held(&input), out),
                    model_rate,
                    output,
                    probe,
                    read_time + started.elapsed(),
                )
            }
        });
        let ends_job = matches!(&result, Err(e) if e.ends_job());
        results.push(result);
        if ends_job {
            break;
        }
    }
    results
}
