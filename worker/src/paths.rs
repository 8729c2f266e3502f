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

/// Removes what earlier attempts left beside the final files of `finals` (a worker killed between writing a
/// scene and recording it): `scene-00007.<token>.<ext>` and `.partial` files of the same scene. The final file
/// itself stays. Called by the attempt that now holds the job's lease, so no live attempt can still need them: a
/// fenced-out one records nothing and moves nothing. Each directory is read once. Returns how many were removed.
pub fn remove_stale_attempts(finals: &[PathBuf]) -> usize {
    let mut by_dir: std::collections::BTreeMap<&Path, Vec<String>> = std::collections::BTreeMap::new();
    for path in finals {
        if let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) {
            by_dir.entry(dir).or_default().push(format!("{stem}."));
        }
    }
    let mut removed = 0;
    for (dir, prefixes) in by_dir {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // `scene-00007.` followed by something: an attempt's token or `.partial`; `scene-00007.wav` itself has
            // the extension alone after the stem, and is kept.
            let stale =
                prefixes.iter().any(|prefix| name.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.contains('.')));
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
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

    #[test]
    fn what_killed_attempts_left_is_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("sq-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "scene-00007.wav",
            "scene-00007.1a2b3c4d.wav",
            "scene-00007.1a2b3c4d.wav.partial",
            "scene-00008.1a2b3c4d.wav",
            "scene-00070.1a2b3c4d.wav",
        ];
        for name in names {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_attempts(&[dir.join("scene-00007.wav")]), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["scene-00007.wav", "scene-00008.1a2b3c4d.wav", "scene-00070.1a2b3c4d.wav"]);
        std::fs::remove_dir_all(dir).ok();
    }
}
