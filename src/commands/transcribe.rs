//! `scenequeue transcribe`: Whisper on local files, with the worker's runtime and no services. A file that
//! cannot be read or transcribed is reported and the others still are; the exit status says whether any failed.

use crate::args::TranscribeArgs;
use anyhow::{Context, bail};
use scenequeue_audio::decode;
use scenequeue_core::transcripts::{self, Cue, TextFormat, Transcript};
use scenequeue_worker::Runtime;
use scenequeue_worker::asr::{self, Whisper};
use std::io::Write;
use std::path::Path;

pub fn run(args: &TranscribeArgs) -> anyhow::Result<()> {
    let stdout_subtitles = args.out.is_none() && args.format != TextFormat::Jsonl;
    if stdout_subtitles && args.inputs.len() > 1 {
        bail!("{} files as {}: give --out DIR to write one file each", args.inputs.len(), args.format.extension());
    }
    let runtime = Runtime::init(&args.files.ort_library, args.device, args.threads)?;
    let mut model = Whisper::load(&runtime, &args.files.model_dir, &args.asr_model)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut jsonl: Box<dyn Write> = match (&args.out, args.format) {
        (Some(dir), TextFormat::Jsonl) => {
            let path = dir.join("transcripts.jsonl");
            Box::new(std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        _ => Box::new(std::io::stdout()),
    };
    let mut failed = 0;
    for input in &args.inputs {
        let transcript = match transcribe(&mut model, input, &args.language) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e:#}", input.display());
                failed += 1;
                continue;
            }
        };
        let cues: Vec<Cue> = transcript.segments.iter().map(|s| Cue::placed(s, 0.0)).collect();
        let text = match args.format {
            TextFormat::Jsonl => {
                let line = serde_json::json!({ "audio_filepath": input, "text": transcript.text,
                    "language": transcript.language, "segments": transcript.segments });
                writeln!(jsonl, "{line}")?;
                continue;
            }
            TextFormat::Srt => transcripts::srt(&cues),
            TextFormat::Vtt => transcripts::vtt(&cues),
            TextFormat::Txt => transcripts::txt(&cues),
        };
        match &args.out {
            Some(dir) => {
                let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let path = dir.join(format!("{stem}.{}", args.format.extension()));
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => print!("{text}"),
        }
    }
    jsonl.flush()?;
    if failed > 0 {
        bail!("{failed} of {} files could not be transcribed", args.inputs.len());
    }
    Ok(())
}

fn transcribe(model: &mut Whisper, path: &Path, language: &asr::Language) -> anyhow::Result<Transcript> {
    let samples = decode::read_all_at(path, asr::SAMPLE_RATE)?;
    Ok(model.transcribe(&samples, language)?)
}
