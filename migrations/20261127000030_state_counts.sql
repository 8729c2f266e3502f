-- Counts per state, kept as states change, so the operator's view never counts a million scenes per request.
--
-- Statement-level triggers on jobs and scenes write, in the same transaction as the change, one delta row per
-- (batch, state) the statement touched: +n for the rows' new state, -n for their old one, with their audio
-- seconds. Rows are only ever inserted by the triggers, so concurrent transactions never wait on each other or
-- deadlock on a shared counter row; `compact_state_counts()` (run by the scheduler) folds them into one row per
-- (batch, state) and drops groups that sum to nothing. A count is the sum of its group's rows.
CREATE TABLE job_counts (
    batch_id uuid NOT NULL,
    state    job_state NOT NULL,
    jobs     bigint NOT NULL,
    audio_s  double precision NOT NULL
);
CREATE INDEX job_counts_batch ON job_counts (batch_id, state);

CREATE TABLE scene_counts (
    batch_id uuid NOT NULL,
    state    scene_state NOT NULL,
    scenes   bigint NOT NULL,
    audio_s  double precision NOT NULL
);
CREATE INDEX scene_counts_batch ON scene_counts (batch_id, state);

CREATE FUNCTION job_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_counts SELECT batch_id, state, count(*), sum(audio_s) FROM new_rows GROUP BY 1, 2;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO job_counts SELECT batch_id, state, -count(*), -sum(audio_s) FROM old_rows GROUP BY 1, 2;
    ELSE
        INSERT INTO job_counts
        SELECT batch_id, state, sum(n), sum(a) FROM (
            SELECT batch_id, state, 1 AS n, audio_s AS a FROM new_rows
            UNION ALL SELECT batch_id, state, -1, -audio_s FROM old_rows
        ) d GROUP BY 1, 2 HAVING sum(n) <> 0 OR sum(a) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION scene_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scene_counts SELECT batch_id, state, count(*), sum(end_s - start_s) FROM new_rows GROUP BY 1, 2;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO scene_counts SELECT batch_id, state, -count(*), -sum(end_s - start_s) FROM old_rows GROUP BY 1, 2;
    ELSE
        INSERT INTO scene_counts
        SELECT batch_id, state, sum(n), sum(a) FROM (
            SELECT batch_id, state, 1 AS n, end_s - start_s AS a FROM new_rows
            UNION ALL SELECT batch_id, state, -1, -(end_s - start_s) FROM old_rows
        ) d GROUP BY 1, 2 HAVING sum(n) <> 0 OR sum(a) <> 0;
    END IF;
    RETURN NULL;
END $$;

-- A trigger with transition tables takes one event each.
CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION job_counts_delta();
CREATE TRIGGER job_counts_update AFTER UPDATE ON jobs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION job_counts_delta();
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION job_counts_delta();
CREATE TRIGGER scene_counts_insert AFTER INSERT ON scenes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scene_counts_delta();
CREATE TRIGGER scene_counts_update AFTER UPDATE ON scenes REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scene_counts_delta();
CREATE TRIGGER scene_counts_delete AFTER DELETE ON scenes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scene_counts_delta();

-- Folds the delta rows into one row per (batch, state); groups that sum to nothing (a deleted batch) go.
-- Rows inserted while it runs are not seen by its DELETE and stay for the next run.
CREATE FUNCTION compact_state_counts() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM job_counts RETURNING *)
    INSERT INTO job_counts SELECT batch_id, state, sum(jobs), sum(audio_s) FROM gone GROUP BY 1, 2
        HAVING sum(jobs) <> 0;
    WITH gone AS (DELETE FROM scene_counts RETURNING *)
    INSERT INTO scene_counts SELECT batch_id, state, sum(scenes), sum(audio_s) FROM gone GROUP BY 1, 2
        HAVING sum(scenes) <> 0;
$$;

-- What is already there.
INSERT INTO job_counts SELECT batch_id, state, count(*), sum(audio_s) FROM jobs GROUP BY 1, 2;
INSERT INTO scene_counts SELECT batch_id, state, count(*), sum(end_s - start_s) FROM scenes GROUP BY 1, 2;

-- Operator controls: a paused batch's pending jobs are not dispatched; a worker asked to drain finishes its job
-- and stops taking more. Throughput reads recent results by time.
ALTER TABLE batches ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE workers ADD COLUMN drain_requested boolean NOT NULL DEFAULT false;
CREATE INDEX results_created ON results (created_at);
CREATE INDEX jobs_batch_id_keyset ON jobs (batch_id, id);
CREATE INDEX scenes_batch_id_keyset ON scenes (batch_id, id);
CREATE INDEX batches_created_keyset ON batches (created_at DESC, id DESC);
