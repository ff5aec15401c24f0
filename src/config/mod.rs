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

use std::collections::HashMap;
use std::path::PathBuf;

use secret::Secret;

/// What shapes how manifests are read: options of the command line, and the `Secret`
/// documents found in the configuration files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where `valueFromSecret` files live: `<secrets_dir>/<name>/<key>`.
    pub secrets_dir: PathBuf,
    /// `Secret` documents of the configuration, by name: their values by key. Looked up by
    /// `valueFromSecret` before `secrets_dir`.
    pub secret_documents: HashMap<String, HashMap<String, Secret>>,
}

impl LoadOptions {
    pub fn new(secrets_dir: PathBuf) -> Self {
        LoadOptions {
            secrets_dir,
            secret_documents: HashMap::new(),
        }
    }
}
