//! Read resources of the JSON API, one module each.

pub mod batches;
pub mod errors;
pub mod jobs;
pub mod overview;
pub mod recordings;
pub mod scenes;
pub mod workers;
