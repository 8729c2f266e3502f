-- The run of a submission that owns a batch while it is ingesting: set when it creates or resumes the batch,
-- checked by its heartbeat, every stored chunk and its activation, so a stalled run that another run took over
-- cannot store recordings twice.
ALTER TABLE batches ADD COLUMN ingest_owner uuid;
