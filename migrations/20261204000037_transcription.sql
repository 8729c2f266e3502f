-- Transcription: a batch may ask for its scenes to be transcribed (the recognition model, the language, and which
-- audio the recogniser gets: the enhanced scene, the untouched one, or per scene whichever it is surer of), and a
-- scene's result then holds what the recogniser heard: text, timed segments, language, average log-probability,
-- no-speech probability and which audio it was, as one JSON value written in the same statement as the rest of the
-- result.
ALTER TABLE batches ADD COLUMN asr_model text, ADD COLUMN asr_language text, ADD COLUMN asr_input text;
ALTER TABLE batches ADD CONSTRAINT batches_asr_settings
    CHECK ((asr_model IS NULL) = (asr_language IS NULL) AND (asr_model IS NULL) = (asr_input IS NULL));
ALTER TABLE batches ADD CONSTRAINT batches_asr_input CHECK (asr_input IN ('auto', 'enhanced', 'original'));
ALTER TABLE results ADD COLUMN transcript jsonb;
