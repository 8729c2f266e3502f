-- Memory telemetry and out-of-memory recovery, per scene and per job. Memory figures are MiB; NULL where the
-- worker has no GPU (or NVML is unavailable). `mem_source` says what was measured.

CREATE TYPE recovery_step AS ENUM ('none', 'recreated', 'windowed', 'cpu');

ALTER TABLE results
    ADD COLUMN recovery      recovery_step NOT NULL DEFAULT 'none',
    ADD COLUMN oom_count     integer NOT NULL DEFAULT 0,
    ADD COLUMN gpu_mem_mb    real;

ALTER TABLE jobs
    ADD COLUMN gpu_peak_mb   real,
    ADD COLUMN gpu_after_mb  real,
    ADD COLUMN rss_after_mb  real,
    ADD COLUMN session_create_ms real;

ALTER TABLE workers
    ADD COLUMN session_policy text NOT NULL DEFAULT 'per-job',
    ADD COLUMN gpu_name      text,
    ADD COLUMN gpu_total_mb  real;
