-- Which decoder read each recording at submission: 'symphonia' (in process, in Rust) or 'ffmpeg' (codecs no
-- Rust decoder covers). Workers read the recording with the same one. NULL for a recording that failed.
ALTER TABLE media ADD COLUMN decoder text CHECK (decoder IN ('symphonia', 'ffmpeg'));
UPDATE media SET decoder = 'symphonia' WHERE state = 'split';
-- A submission looks a path up to decide whether to hash it before decoding (likely a duplicate) or while.
CREATE INDEX media_path ON media (path) WHERE state = 'split';
