//! Graphs with their batch axis opened (see `batch_axis`), rewritten once per process rather than at every
//! session creation: under the default per-job policy a worker creates sessions for every job, and reading and
//! rewriting DeepFilterNet3's three graphs each time was work done again for the same bytes. An entry is keyed
//! by the file's path and checked against its length and modification time, so a replaced model file is read
//! anew.

use super::batch_axis::open_batch_axis;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Model files kept; past this the cache starts over (a worker uses a handful).
const MAX_ENTRIES: usize = 16;

struct Entry {
    len: u64,
    modified: Option<SystemTime>,
    inputs: Vec<String>,
    model: Arc<Vec<u8>>,
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Entry>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The graph at `path` with the batch axis of `inputs` opened, from the cache when the file is unchanged.
pub(super) fn batch_opened(path: &Path, inputs: &[&str]) -> Result<Arc<Vec<u8>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let (len, modified) = (meta.len(), meta.modified().ok());
    let fresh = |e: &Entry| e.len == len && e.modified == modified && e.inputs.iter().eq(inputs.iter().copied());
    {
        let cache = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = cache.get(path).filter(|e| fresh(e)) {
            return Ok(Arc::clone(&entry.model));
        }
    }
    let started = std::time::Instant::now();
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let model = Arc::new(open_batch_axis(&bytes, inputs).map_err(|e| e.to_string())?);
    tracing::debug!(path = %path.display(), ms = started.elapsed().as_secs_f64() * 1000.0, "graph read and rewritten");
    let mut cache = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() >= MAX_ENTRIES {
        cache.clear();
    }
    let inputs = inputs.iter().map(|s| (*s).to_string()).collect();
    cache.insert(path.to_path_buf(), Entry { len, modified, inputs, model: Arc::clone(&model) });
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_is_rewritten_once_and_again_when_its_file_changes() {
        let dir = std::env::temp_dir().join(format!("sq-graph-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.onnx");
        // An empty model is a valid protobuf with nothing to rewrite.
        std::fs::write(&path, b"").unwrap();
        let first = batch_opened(&path, &["x"]).unwrap();
        let again = batch_opened(&path, &["x"]).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "an unchanged file comes from the cache");
        std::fs::write(&path, b"\x08\x07").unwrap();
        let changed = batch_opened(&path, &["x"]).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed), "a changed file is read again");
        assert_eq!(changed.as_slice(), b"\x08\x07");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
