-- Interrupted submissions: a batch whose submitter stopped (Ctrl-C, kill, lost database) before storing every
-- recording is `interrupted`, not left `ingesting`; submitting the same command again resumes it. The
-- submitter renews `ingest_seen` while it works, so the scheduler can tell a stopped one from a slow one.
ALTER TYPE batch_state ADD VALUE 'interrupted';
ALTER TABLE batches
    ADD COLUMN submission_key text,
    ADD COLUMN ingest_seen    timestamptz;
CREATE INDEX batches_submission_key ON batches (submission_key) WHERE submission_key IS NOT NULL;
