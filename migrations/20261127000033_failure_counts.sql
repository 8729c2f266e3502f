-- Failures per reason class, kept as failures happen, so the errors page and /metrics never group every failed
-- scene of the farm on each request.
--
-- A raw reason names paths, ids and figures ("decoding the scene failed: /in/a.wav: corrupt frame"), so it would
-- make a group of one. Its class is its words before the first ':' or '(', lowercased, without words holding a
-- digit, at most five: "decoding the scene failed". This function is the one definition of a class.
CREATE FUNCTION reason_class(reason text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(w, ' ' ORDER BY n), 'unknown')
    FROM (
        SELECT w, n FROM regexp_split_to_table(lower(substring(coalesce(reason, '') FROM '^[^:(]*')), '\s+')
             WITH ORDINALITY AS t(w, n)
        WHERE w <> '' AND w !~ '[0-9]'
        ORDER BY n LIMIT 5
    ) words
$$;

-- kind: 'scene' (a failed scene), 'job' (a dead job) or 'recording' (a recording that could not be read).
-- Delta rows as in job_counts and scene_counts: only the triggers insert, compact_state_counts() folds.
CREATE TABLE failure_counts (
    batch_id uuid NOT NULL,
    kind     text NOT NULL,
    class    text NOT NULL,
    n        bigint NOT NULL
);
CREATE INDEX failure_counts_batch ON failure_counts (batch_id);

-- TG_ARGV[0]: the kind; TG_ARGV[1]: the state that counts as failed.
CREATE FUNCTION failure_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO failure_counts SELECT batch_id, TG_ARGV[0], reason_class(error), count(*) FROM new_rows
        WHERE state::text = TG_ARGV[1] GROUP BY 1, 3;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO failure_counts SELECT batch_id, TG_ARGV[0], reason_class(error), -count(*) FROM old_rows
        WHERE state::text = TG_ARGV[1] GROUP BY 1, 3;
    ELSE
        INSERT INTO failure_counts
        SELECT batch_id, TG_ARGV[0], reason_class(error), sum(d) FROM (
            SELECT batch_id, error, 1 AS d FROM new_rows WHERE state::text = TG_ARGV[1]
            UNION ALL SELECT batch_id, error, -1 FROM old_rows WHERE state::text = TG_ARGV[1]
        ) f GROUP BY 1, 3 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER scene_failures_insert AFTER INSERT ON scenes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('scene', 'failed');
CREATE TRIGGER scene_failures_update AFTER UPDATE ON scenes REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('scene', 'failed');
CREATE TRIGGER scene_failures_delete AFTER DELETE ON scenes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('scene', 'failed');
CREATE TRIGGER job_failures_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('job', 'dead');
CREATE TRIGGER job_failures_update AFTER UPDATE ON jobs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('job', 'dead');
CREATE TRIGGER job_failures_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('job', 'dead');
CREATE TRIGGER media_failures_insert AFTER INSERT ON media REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('recording', 'failed');
CREATE TRIGGER media_failures_update AFTER UPDATE ON media REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('recording', 'failed');
CREATE TRIGGER media_failures_delete AFTER DELETE ON media REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION failure_counts_delta('recording', 'failed');

-- Finding the recordings a class hit reads only the failed rows of that class.
CREATE INDEX scenes_failed_class ON scenes (reason_class(error), batch_id) WHERE state = 'failed';
CREATE INDEX jobs_dead_class ON jobs (reason_class(error), batch_id) WHERE state = 'dead';
CREATE INDEX media_failed_class ON media (reason_class(error), batch_id) WHERE state = 'failed';

CREATE OR REPLACE FUNCTION compact_state_counts() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM job_counts RETURNING *)
    INSERT INTO job_counts SELECT batch_id, state, sum(jobs), sum(audio_s) FROM gone GROUP BY 1, 2
        HAVING sum(jobs) <> 0;
    WITH gone AS (DELETE FROM scene_counts RETURNING *)
    INSERT INTO scene_counts SELECT batch_id, state, sum(scenes), sum(audio_s) FROM gone GROUP BY 1, 2
        HAVING sum(scenes) <> 0;
    WITH gone AS (DELETE FROM failure_counts RETURNING *)
    INSERT INTO failure_counts SELECT batch_id, kind, class, sum(n) FROM gone GROUP BY 1, 2, 3
        HAVING sum(n) <> 0;
$$;

-- What is already there.
INSERT INTO failure_counts SELECT batch_id, 'scene', reason_class(error), count(*) FROM scenes
    WHERE state = 'failed' GROUP BY 1, 3;
INSERT INTO failure_counts SELECT batch_id, 'job', reason_class(error), count(*) FROM jobs
    WHERE state = 'dead' GROUP BY 1, 3;
INSERT INTO failure_counts SELECT batch_id, 'recording', reason_class(error), count(*) FROM media
    WHERE state = 'failed' GROUP BY 1, 3;
