-- Resumable submissions: a recording is known by the hash of its bytes, so submitting the same files again
-- (after a crash, or by mistake) does not process them twice.
ALTER TABLE media ADD COLUMN content_hash text;
CREATE INDEX media_content_hash ON media (content_hash) WHERE state = 'split';
