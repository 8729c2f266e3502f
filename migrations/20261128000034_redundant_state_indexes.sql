-- The (batch_id, state) indexes of scenes and jobs are prefixes of the keyset indexes (batch_id, state, id)
-- added later, which answer every query they answered. Each scene changes state three times (queued, running,
-- succeeded), and every change wrote both: dropping the prefix saves an index entry per change.
DROP INDEX IF EXISTS scenes_batch_state;
DROP INDEX IF EXISTS jobs_batch_state;
