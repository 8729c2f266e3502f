-- The worker that finished a job (its lease owner at completion), so throughput per worker and the GPU memory
-- series read jobs (ten thousand rows) rather than results (a million); indexes for the operator's view at
-- backlog scale: recent jobs by time and by worker, failed scenes by reason, and the rare results that needed an
-- out-of-memory recovery.
ALTER TABLE jobs ADD COLUMN finished_by uuid;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_finished_by ON jobs (finished_by, finished_at) WHERE finished_by IS NOT NULL;
CREATE INDEX scenes_failed_reason ON scenes (error) WHERE state = 'failed';
CREATE INDEX results_oom ON results (scene_id) WHERE oom_count > 0;
CREATE INDEX results_recovered ON results (recovery) WHERE recovery <> 'none';
