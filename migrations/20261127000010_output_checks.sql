-- Checks on every enhanced scene before it counts as done (worker/src/output_check.rs): what they found and the
-- speech-band levels they measured, in dBFS.
CREATE TYPE output_flag AS ENUM ('non_finite', 'silent', 'speech_collapsed', 'original');

ALTER TABLE results
    ADD COLUMN flags          output_flag[] NOT NULL DEFAULT '{}',
    ADD COLUMN speech_in_db   real,
    ADD COLUMN speech_out_db  real;
CREATE INDEX results_flagged ON results (job_id) WHERE flags <> '{}';
