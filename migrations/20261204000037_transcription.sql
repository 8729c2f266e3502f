-- Transcription: a batch may ask for its scenes to be transcribed (the recognition model and the language), and a
-- scene's result then holds what the recogniser heard: text, timed segments, language, average log-probability,
-- no-speech probability, as one JSON value written in the same statement as the rest of the result.
ALTER TABLE batches ADD COLUMN asr_model text, ADD COLUMN asr_language text;
ALTER TABLE batches ADD CONSTRAINT batches_asr_language CHECK ((asr_model IS NULL) = (asr_language IS NULL));
ALTER TABLE results ADD COLUMN transcript jsonb;
