//! The integration tests, one module per area, in one test binary (linked once): each test talks to the real
//! PostgreSQL and RabbitMQ on localhost in a database and queues of its own, and runs the real models.
//! The chaos suite, which restarts those services, is a binary of its own (`tests/chaos`), run alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../shared/mod.rs"]
mod shared;

mod api;
mod config;
mod controls;
mod dashboard;
mod decoders;
mod deepfilternet;
mod deploy;
mod formats;
mod integrity;
mod models;
mod operations;
mod options;
mod pipeline;
mod pooler;
mod recovery;
mod reliability;
mod states;
mod transcription;
mod vad;
mod waveform;
