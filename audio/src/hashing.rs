//! Hashing a recording while it is decoded, so a submission reads each file once. The decoder reads through
//! [`HashingFile`]; every byte read in order extends a BLAKE3 hash. Bytes the demuxer skipped (a seek forward
//! over tags, or a decoder that stopped early) are read at the end by [`FileHash::finish`], so the hash is always
//! that of the whole file and only skipped bytes are read twice.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
struct State {
    hasher: blake3::Hasher,
    /// Bytes [0, hashed_to) are in the hash.
    hashed_to: u64,
}

/// The hash of one file, filled in by the [`HashingFile`]s that read it.
#[derive(Clone, Default)]
pub struct FileHash(Arc<Mutex<State>>);

impl FileHash {
    /// A hash of nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes what no reader reached and returns the BLAKE3 of the whole file, hex.
    pub fn finish(&self, path: &Path) -> Result<String, String> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        file.seek(SeekFrom::Start(state.hashed_to)).map_err(|e| format!("{}: {e}", path.display()))?;
        let copied = std::io::copy(&mut file, &mut state.hasher).map_err(|e| format!("{}: {e}", path.display()))?;
        state.hashed_to += copied;
        Ok(state.hasher.finalize().to_hex().to_string())
    }
}

/// A file whose bytes, read in order, extend a [`FileHash`].
pub(crate) struct HashingFile {
    file: File,
    len: u64,
    position: u64,
    hash: FileHash,
}

impl HashingFile {
    /// `file`, with every byte read from it extending `hash`.
    pub fn new(file: File, hash: FileHash) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len, position: 0, hash })
    }
}

impl Read for HashingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let end = self.position + n as u64;
        let mut state = self.hash.0.lock().unwrap_or_else(PoisonError::into_inner);
        if (self.position..end).contains(&state.hashed_to) {
            let from = (state.hashed_to - self.position) as usize;
            state.hasher.update(&buf[from..n]);
            state.hashed_to = end;
        }
        self.position = end;
        Ok(n)
    }
}

impl Seek for HashingFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.position = self.file.seek(pos)?;
        Ok(self.position)
    }
}

impl symphonia::core::io::MediaSource for HashingFile {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_hash_is_the_whole_files_however_it_was_read() {
        let path = std::env::temp_dir().join(format!("sq-hashing-{}", std::process::id()));
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let expected = blake3::hash(&bytes).to_hex().to_string();
        for pattern in [&[][..], &[(0u64, 1000usize), (500, 20_000)], &[(50_000, 10), (0, 10), (90_000, 5000)]] {
            let hash = FileHash::new();
            let mut file = HashingFile::new(File::open(&path).unwrap(), hash.clone()).unwrap();
            for &(at, n) in pattern {
                file.seek(SeekFrom::Start(at)).unwrap();
                let mut buf = vec![0; n];
                file.read_exact(&mut buf).unwrap();
            }
            assert_eq!(hash.finish(&path).unwrap(), expected, "{pattern:?}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
