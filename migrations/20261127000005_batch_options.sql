-- Enhancement settings chosen per submission (`scenequeue submit --atten-lim-db ... --post-filter-beta ...
-- --highpass-hz ... --loudness-lufs ...`); NULL leaves the worker's own default.
ALTER TABLE batches
    ADD COLUMN atten_lim_db real,
    ADD COLUMN post_filter_beta real,
    ADD COLUMN highpass_hz real,
    ADD COLUMN loudness_lufs real;
