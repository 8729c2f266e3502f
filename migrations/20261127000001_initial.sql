-- The whole state of a scenequeue farm: what was submitted, how it was cut and packed,
-- who is working on what, and every result. Every state is an enum mirrored in core/src/states.rs.

CREATE TYPE batch_state AS ENUM ('ingesting', 'active', 'finished');
CREATE TYPE media_state AS ENUM ('pending', 'split', 'failed');
CREATE TYPE scene_state AS ENUM ('pending', 'queued', 'running', 'succeeded', 'failed');
CREATE TYPE job_state AS ENUM ('pending', 'queued', 'running', 'succeeded', 'dead');
CREATE TYPE worker_state AS ENUM ('idle', 'busy', 'stopped');

CREATE TABLE batches (
    id            uuid PRIMARY KEY,
    state         batch_state NOT NULL DEFAULT 'ingesting',
    model         text NOT NULL,
    output_dir    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE TABLE media (
    id            uuid PRIMARY KEY,
    batch_id      uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    path          text NOT NULL,
    state         media_state NOT NULL DEFAULT 'pending',
    sample_rate   integer,
    channels      smallint,
    duration_s    double precision,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_batch ON media (batch_id);

CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    batch_id      uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    state         job_state NOT NULL DEFAULT 'pending',
    audio_s       double precision NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 3,
    lease_owner   uuid,
    lease_expires timestamptz,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX jobs_batch_state ON jobs (batch_id, state);
CREATE INDEX jobs_running_lease ON jobs (lease_expires) WHERE state = 'running';

CREATE TABLE scenes (
    id            uuid PRIMARY KEY,
    media_id      uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    batch_id      uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    job_id        uuid REFERENCES jobs (id) ON DELETE SET NULL,
    idx           integer NOT NULL,
    start_s       double precision NOT NULL,
    end_s         double precision NOT NULL,
    state         scene_state NOT NULL DEFAULT 'pending',
    error         text,
    UNIQUE (media_id, idx),
    CHECK (end_s > start_s)
);
CREATE INDEX scenes_job ON scenes (job_id);
CREATE INDEX scenes_batch_state ON scenes (batch_id, state);

CREATE TABLE workers (
    id            uuid PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    device        text NOT NULL,
    state         worker_state NOT NULL DEFAULT 'idle',
    jobs_done     bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);

-- One row per scene, whatever the number of attempts: a retry overwrites, never duplicates.
CREATE TABLE results (
    scene_id      uuid PRIMARY KEY REFERENCES scenes (id) ON DELETE CASCADE,
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    worker_id     uuid NOT NULL,
    attempt       integer NOT NULL,
    output_path   text NOT NULL,
    sample_rate   integer NOT NULL,
    duration_s    double precision NOT NULL,
    rms_in_db     double precision NOT NULL,
    rms_out_db    double precision NOT NULL,
    processing_ms double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX results_job ON results (job_id);
