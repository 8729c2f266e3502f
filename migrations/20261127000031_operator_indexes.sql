-- Indexes for the operator's view: lists by state paged by id, a worker's recent results (its GPU memory series
-- and throughput).
CREATE INDEX jobs_state_keyset ON jobs (batch_id, state, id);
CREATE INDEX scenes_state_keyset ON scenes (batch_id, state, id);
CREATE INDEX media_batch_keyset ON media (batch_id, id);
CREATE INDEX results_worker ON results (worker_id, created_at);
