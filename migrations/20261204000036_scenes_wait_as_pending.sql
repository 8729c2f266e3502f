-- A scene waits as 'pending' until a worker hands it to the model, whether its job waits in Postgres or in the
-- broker: the job's state says which. The scene-level 'queued' cost an update of every scene of every job
-- published (a quarter of a submission's database work at backlog scale), and said nothing the job's state does
-- not.
UPDATE scenes SET state = 'pending' WHERE state = 'queued';
SELECT compact_state_counts();
UPDATE scene_counts SET state = 'pending' WHERE state = 'queued';
-- The partial indexes on failed scenes name the old type in their predicates: dropped and made again around the
-- type change.
DROP INDEX scenes_failed_reason;
DROP INDEX scenes_failed_class;
ALTER TABLE scenes ALTER COLUMN state DROP DEFAULT;
ALTER TYPE scene_state RENAME TO scene_state_with_queued;
CREATE TYPE scene_state AS ENUM ('pending', 'running', 'succeeded', 'failed');
ALTER TABLE scenes ALTER COLUMN state TYPE scene_state USING state::text::scene_state;
ALTER TABLE scenes ALTER COLUMN state SET DEFAULT 'pending';
ALTER TABLE scene_counts ALTER COLUMN state TYPE scene_state USING state::text::scene_state;
DROP TYPE scene_state_with_queued;
CREATE INDEX scenes_failed_reason ON scenes (error) WHERE state = 'failed';
CREATE INDEX scenes_failed_class ON scenes (reason_class(error), batch_id) WHERE state = 'failed';
