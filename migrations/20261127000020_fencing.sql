-- Reliability: fencing, retry back-off, crash counting and worker health.
--
-- lease_token: a fresh token per lease; every result, scene-state and job-state write of a worker is
--   conditional on the token it was granted, so a worker that lost its lease cannot write anything.
-- not_before: a job released for a retry waits in `pending` until then (exponential back-off with jitter).
-- crashes: leases that expired (the worker died or hung); a job with two of them runs scene by scene, each in
--   a child process of its own, so the scene that kills its runner is failed alone.
-- handbacks: times a worker gave a job back because the worker itself was at fault (no attempt spent); bounded.
-- queued_at: when the broker confirmed the job's message, so queued jobs it lost can be published again.
ALTER TABLE jobs
    ADD COLUMN lease_token uuid,
    ADD COLUMN not_before  timestamptz,
    ADD COLUMN crashes     integer NOT NULL DEFAULT 0,
    ADD COLUMN handbacks   integer NOT NULL DEFAULT 0,
    ADD COLUMN queued_at   timestamptz;
CREATE INDEX jobs_pending_not_before ON jobs (not_before) WHERE state = 'pending';
CREATE INDEX jobs_queued_at ON jobs (queued_at) WHERE state = 'queued';

-- unhealthy: the worker's own environment failed (model, device, output directory) and it takes no jobs until
-- its self-check passes; lost: it stopped heartbeating without saying goodbye.
ALTER TYPE worker_state ADD VALUE 'unhealthy';
ALTER TYPE worker_state ADD VALUE 'lost';
ALTER TABLE workers
    ADD COLUMN current_job uuid,
    ADD COLUMN health      text;
