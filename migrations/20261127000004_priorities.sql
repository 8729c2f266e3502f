-- Batch priorities. Jobs wait in Postgres (pending) and are released to the broker in priority order, keeping
-- only a bounded number queued there, so a large low-priority batch never stands in front of an urgent one.
ALTER TABLE batches ADD COLUMN priority smallint NOT NULL DEFAULT 0;
CREATE INDEX jobs_pending ON jobs (batch_id) WHERE state = 'pending';
CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';
