//! Manifests for transcription tools: one line per enhanced scene, mapping its file back to its place in the
//! source recording. JSON Lines in the shape ASR toolkits read (`audio_filepath`, `duration`, plus the source
//! and the offset), or CSV with the same columns.

use crate::export::SceneList;
use serde::Serialize;

/// One enhanced scene, as a manifest line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManifestLine<'a> {
    /// The enhanced file.
    pub audio_filepath: &'a str,
    /// Its length, seconds.
    pub duration: f64,
    /// The recording it was cut from.
    pub source: &'a str,
    /// Where it starts in the source, seconds.
    pub offset: f64,
    /// The scene's id.
    pub scene_id: String,
    /// What the output checks found (empty: it passed).
    pub flags: &'a [String],
}

/// Every enhanced scene of `list`, recordings by path and scenes in time order.
pub fn lines(list: &SceneList) -> impl Iterator<Item = ManifestLine<'_>> {
    list.recordings.iter().flat_map(|recording| {
        recording.scenes.iter().filter_map(move |scene| {
            let output = scene.output.as_deref()?;
            Some(ManifestLine {
                audio_filepath: output,
                duration: scene.end_s - scene.start_s,
                source: &recording.path,
                offset: scene.start_s,
                scene_id: scene.id.to_string(),
                flags: &scene.flags,
            })
        })
    })
}

/// JSON Lines: one object per enhanced scene.
pub fn jsonl(list: &SceneList) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for line in lines(list) {
        out.push_str(&serde_json::to_string(&line)?);
        out.push('\n');
    }
    Ok(out)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// CSV with a header row; flags joined by `;`.
pub fn csv(list: &SceneList) -> String {
    let mut out = String::from("audio_filepath,duration,source,offset,scene_id,flags\n");
    for l in lines(list) {
        out.push_str(&format!(
            "{},{:.6},{},{:.6},{},{}\n",
            field(l.audio_filepath),
            l.duration,
            field(l.source),
            l.offset,
            l.scene_id,
            field(&l.flags.join(";"))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(field("/data/a.wav"), "/data/a.wav");
        assert_eq!(field("/data/a, b.wav"), "\"/data/a, b.wav\"");
        assert_eq!(field("say \"hi\".wav"), "\"say \"\"hi\"\".wav\"");
    }
}
