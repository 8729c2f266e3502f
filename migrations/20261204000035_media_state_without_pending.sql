-- A recording's row is written once it has been decoded and cut (split) or refused (failed), never before: the
-- 'pending' value was never written. The enum loses it, so a state nothing can be in is not offered to readers
-- (the API's filters, the tests that hold the Rust and Postgres enums equal).
-- The partial indexes on the column name the old type in their predicates: dropped and made again around the
-- type change.
DROP INDEX media_content_hash;
DROP INDEX media_path;
DROP INDEX media_failed_class;
ALTER TABLE media ALTER COLUMN state DROP DEFAULT;
ALTER TYPE media_state RENAME TO media_state_with_pending;
CREATE TYPE media_state AS ENUM ('split', 'failed');
ALTER TABLE media ALTER COLUMN state TYPE media_state USING state::text::media_state;
DROP TYPE media_state_with_pending;
CREATE INDEX media_content_hash ON media (content_hash) WHERE state = 'split';
CREATE INDEX media_path ON media (path) WHERE state = 'split';
CREATE INDEX media_failed_class ON media (reason_class(error), batch_id) WHERE state = 'failed';
