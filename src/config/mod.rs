//! Configuration: multi-document YAML files of Kubernetes-style manifests, exactly as TriggerMesh
//! users have them, decoded into the components to run.
//!
//! Every document is decoded by its `kind`; every problem of every document is collected, so
//! `validate` shows them all at once.

pub mod common;
pub mod decode;
pub mod duration;
pub mod secret;

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::source::s3::config::S3SourceConfig;
use decode::{Obj, Problem, Problems};

/// Everything the `run` command starts.
#[derive(Debug, Default)]
pub struct Config {
    pub s3_sources: Vec<S3SourceConfig>,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.s3_sources.is_empty()
    }
}

/// Options given on the command line that shape how manifests are read.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where `valueFromSecret` files live: `<secrets_dir>/<name>/<key>`.
    pub secrets_dir: PathBuf,
}

/// Reads and decodes every file; returns all problems when there is any.
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Config, Vec<Problem>> {
    let mut config = Config::default();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => load_text(
                &text,
                &path.display().to_string(),
                options,
                &mut config,
                &mut problems,
            ),
            Err(err) => problems.push(Problem {
                document: path.display().to_string(),
                path: String::new(),
                message: format!("cannot read the file: {err}"),
            }),
        }
    }
    check_unique_names(&config, &mut problems);
    if problems.is_empty() && config.is_empty() {
        problems.push(Problem {
            document: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            path: String::new(),
            message: "no component to run: expected at least one AWSS3Source document".into(),
        });
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Decodes the documents of one file into `config`, appending problems.
pub fn load_text(
    text: &str,
    file: &str,
    options: &LoadOptions,
    config: &mut Config,
    problems: &mut Vec<Problem>,
) {
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = match Value::deserialize(document) {
            Ok(Value::Null) => continue, // an empty document, e.g. a trailing `---`
            Ok(value) => value,
            Err(err) => {
                problems.push(Problem {
                    document: format!("{file}: document {number}"),
                    path: String::new(),
                    message: format!("not valid YAML: {err}"),
                });
                // The YAML stream cannot be resumed after a syntax error.
                break;
            }
        };
        let label = document_label(file, number, &value);
        let mut doc_problems = Problems::default();
        decode_document(&value, options, config, &mut doc_problems);
        problems.extend(doc_problems.into_located(&label));
    }
}

/// `file.yaml: document 2 (AWSS3Source "uploads")`
fn document_label(file: &str, number: usize, value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str);
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    match (kind, name) {
        (Some(kind), Some(name)) => format!("{file}: document {number} ({kind} {name:?})"),
        (Some(kind), None) => format!("{file}: document {number} ({kind})"),
        _ => format!("{file}: document {number}"),
    }
}

/// The kinds this loader knows, with their API group.
const SOURCES_API: &str = "sources.triggermesh.io/v1alpha1";
const TARGETS_API: &str = "targets.triggermesh.io/v1alpha1";

fn decode_document(
    value: &Value,
    options: &LoadOptions,
    config: &mut Config,
    problems: &mut Problems,
) {
    let Some(mut doc) = Obj::new(value, "", problems) else {
        return;
    };
    let kind = doc.require_string("kind", problems);
    let api_version = doc.require_string("apiVersion", problems);
    doc.get("status"); // exported manifests carry it; it is the controller's, not ours.
    let expected_api = match kind.as_deref() {
        Some("AWSS3Source") => SOURCES_API,
        Some("AWSSQSTarget" | "AWSS3Target") => TARGETS_API,
        Some(other) => {
            problems.add(
                "kind",
                format!(
                    "unknown kind {other:?}: expected AWSS3Source, AWSSQSTarget or AWSS3Target"
                ),
            );
            return;
        }
        None => return,
    };
    if let Some(api_version) = &api_version
        && api_version != expected_api
    {
        problems.add(
            "apiVersion",
            format!("expected {expected_api:?}, found {api_version:?}"),
        );
    }
    match kind.as_deref() {
        Some("AWSS3Source") => {
            if let Some(source) = S3SourceConfig::decode(&mut doc, options, problems) {
                config.s3_sources.push(source);
            }
        }
        Some(kind) => {
            doc.get("metadata");
            doc.get("spec");
            problems.add(
                "kind",
                format!("{kind} is not supported by this version yet (only AWSS3Source is)"),
            );
        }
        None => {}
    }
    doc.finish(problems);
}

/// Names are serving paths and metric labels: two components cannot share one.
fn check_unique_names(config: &Config, problems: &mut Vec<Problem>) {
    let mut names: Vec<&str> = config
        .s3_sources
        .iter()
        .map(|s| s.metadata.name.as_str())
        .collect();
    names.sort_unstable();
    for pair in names.windows(2) {
        if pair[0] == pair[1] {
            problems.push(Problem {
                document: format!("component {:?}", pair[0]),
                path: "metadata.name".into(),
                message: "two components share this name; names must be unique".into(),
            });
        }
    }
}
