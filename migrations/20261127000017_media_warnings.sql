-- A recording that was read, but with something the user should know: non-finite samples replaced by silence.
ALTER TABLE media ADD COLUMN warning text;
