//! Configuration's decoding pieces, shared by every component's config: a JSON tree walker that
//! collects every problem ([`decode`]), durations, secrets, `spec.auth`, and the fields all kinds
//! share (`metadata`, `spec.sink`, `spec.delivery`).
//!
//! This module is a leaf: it imports nothing from the rest of the crate, so every layer above
//! (components, clients, the manifest loader) can use it without a cycle. Which kinds exist and
//! how files and the environment are read is [`crate::manifest`]'s job.

pub mod auth;
pub mod common;
pub mod decode;
pub mod duration;
pub mod pem;
pub mod secret;

use std::path::PathBuf;

/// Options given on the command line that shape how manifests are read.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where `valueFromSecret` files live: `<secrets_dir>/<name>/<key>`.
    pub secrets_dir: PathBuf,
}
