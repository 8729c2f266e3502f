-- Dead-lettered messages: the broker gave up on a job's message (delivery limit reached) while the job still had
-- attempts left. The reaper publishes such a job again, at most a few times (counted here), then buries it, so a
-- message that keeps dying without ever costing an attempt cannot circle for ever.
ALTER TABLE jobs ADD COLUMN dead_letters integer NOT NULL DEFAULT 0;
