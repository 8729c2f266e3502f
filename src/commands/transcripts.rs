//! `scenequeue transcripts`: a transcribed batch written out, a recording at a time.

use anyhow::{Context, bail};
use scenequeue_core::config::Services;
use scenequeue_core::ids::BatchId;
use scenequeue_core::transcripts::{self, Cue, TextFormat};
use scenequeue_scheduler::transcripts::{Recording, asked, per_recording};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub async fn run(services: &Services, batch: BatchId, format: TextFormat, out: Option<PathBuf>) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 1).await?;
    match asked(&pool, batch).await? {
        None => bail!("no batch {batch}"),
        Some(false) => bail!("batch {batch} was not submitted with --transcribe"),
        Some(true) => {}
    }
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if format == TextFormat::Jsonl {
        let mut sink: Box<dyn Write> = match &out {
            Some(dir) => {
                let path = dir.join("transcripts.jsonl");
                Box::new(std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?)
            }
            None => Box::new(std::io::stdout().lock()),
        };
        per_recording(&pool, batch, |recording: Recording| -> anyhow::Result<()> {
            for line in recording.scenes.iter().filter_map(|s| s.line()) {
                writeln!(sink, "{}", serde_json::to_string(&line)?)?;
            }
            Ok(())
        })
        .await?;
        sink.flush()?;
        return Ok(());
    }
    let Some(dir) = out else {
        bail!("--format {} writes one file per recording: give --out DIR", format.extension());
    };
    let mut taken = HashSet::new();
    let mut written = 0usize;
    per_recording(&pool, batch, |recording: Recording| -> anyhow::Result<()> {
        let cues: Vec<Cue> = recording.scenes.iter().flat_map(|s| s.cues()).collect();
        let text = match format {
            TextFormat::Srt => transcripts::srt(&cues),
            TextFormat::Vtt => transcripts::vtt(&cues),
            TextFormat::Txt | TextFormat::Jsonl => transcripts::txt(&cues),
        };
        let path = file_for(&dir, &recording, format, &mut taken);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
        Ok(())
    })
    .await?;
    eprintln!("{written} transcripts written to {}", dir.display());
    Ok(())
}

/// `DIR/<recording's stem>.<ext>`, or with the recording's id added when another recording took that name.
fn file_for(dir: &Path, recording: &Recording, format: TextFormat, taken: &mut HashSet<String>) -> PathBuf {
    let stem = Path::new(&recording.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name = format!("{stem}.{}", format.extension());
    if !taken.insert(name.clone()) {
        name = format!("{stem}-{}.{}", recording.media_id, format.extension());
        taken.insert(name.clone());
    }
    dir.join(name)
}
