//! Output locations. Every component comes from an id or a sanitized name, so nothing a user put in a file name
//! can climb out of the output directory or collide with another scene.

use scenequeue_core::ids::{BatchId, MediaId};
use std::path::{Path, PathBuf};

/// Keeps `[A-Za-z0-9._-]`, replaces anything else with `_`, never starts with a dot, at most 48 characters.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(48)
        .collect();
    while s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    if s.is_empty() {
        s.push_str("recording");
    }
    s
}

/// `<output_dir>/<batch>/<stem>-<media id prefix>/scene-<index>.wav`
pub fn scene_output(output_dir: &Path, batch: BatchId, media: MediaId, source: &Path, index: i32) -> PathBuf {
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("recording");
    let media_id = media.0.simple().to_string();
    let short = &media_id[media_id.len() - 12..];
    output_dir.join(batch.to_string()).join(format!("{}-{short}", sanitize(stem))).join(format!("scene-{index:05}.wav"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn hostile_names_stay_inside() {
        assert_eq!(sanitize("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(sanitize(".hidden"), "_hidden");
        assert_eq!(sanitize(""), "recording");
        assert_eq!(sanitize("interview 3 (día 2)"), "interview_3__d_a_2_");
        let p =
            scene_output(Path::new("/out"), BatchId(Uuid::nil()), MediaId(Uuid::max()), Path::new("/in/../x y.wav"), 7);
        assert_eq!(p, Path::new("/out/00000000-0000-0000-0000-000000000000/x_y-ffffffffffff/scene-00007.wav"));
    }
}
