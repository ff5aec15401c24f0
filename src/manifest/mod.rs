//! Manifests: multi-document YAML files of Kubernetes-style manifests, exactly as TriggerMesh
//! users have them — or TriggerMesh's environment variables ([`env`]) — decoded into the
//! components to run.
//!
//! This module owns the list of kinds: it sits above the components (each decodes its own
//! `spec` with [`crate::config`]'s pieces) and below the commands that start them. Every
//! document is decoded by its `kind`; every problem of every document is collected, so
//! `validate` shows them all at once.

pub mod env;
mod secret_document;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::config::LoadOptions;
use crate::config::decode::{Obj, Problem, Problems};
use crate::sources::s3::config::S3SourceConfig;
use crate::targets::s3::config::S3TargetConfig;
use crate::targets::sqs::config::SqsTargetConfig;

/// Everything the `run` command starts.
#[derive(Debug, Default)]
pub struct Config {
    pub s3_sources: Vec<S3SourceConfig>,
    pub sqs_targets: Vec<SqsTargetConfig>,
    pub s3_targets: Vec<S3TargetConfig>,
    /// Each component's name and the document that defined it, for messages.
    pub(crate) documents: Vec<(String, String)>,
    /// One line per document that is not ours to run (see [`skipped`]), and per destination
    /// given by `ref` (resolved at run time).
    pub skipped: Vec<String>,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.component_count() == 0
    }

    pub fn component_count(&self) -> usize {
        self.s3_sources.len() + self.sqs_targets.len() + self.s3_targets.len()
    }

    /// Number of targets (served over HTTP).
    pub fn target_count(&self) -> usize {
        self.sqs_targets.len() + self.s3_targets.len()
    }
}

/// The manifest files of `--config` arguments: a file as it is; a folder's `*.yaml`, `*.yml`
/// and `*.json` files (not its subfolders), in name order, like `kubectl apply -f DIR`.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Problem>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(err) => {
                problems.push(Problem {
                    document: path.display().to_string(),
                    path: String::new(),
                    message: format!("cannot read the folder: {err}"),
                });
                continue;
            }
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|file| {
                file.is_file()
                    && file
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        found.sort();
        if found.is_empty() {
            problems.push(Problem {
                document: path.display().to_string(),
                path: String::new(),
                message: "the folder holds no *.yaml, *.yml or *.json file".into(),
            });
        }
        files.extend(found);
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// Reads and decodes every file (folders expanded by [`expand_paths`]); returns all problems
/// when there is any. `Secret` documents of any file serve `valueFromSecret` in every file.
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Config, Vec<Problem>> {
    let files = expand_paths(paths)?;
    let mut problems = Vec::new();
    let mut documents = Vec::new();
    for path in &files {
        match std::fs::read_to_string(path) {
            Ok(text) => documents.extend(parse_documents(
                &text,
                &path.display().to_string(),
                &mut problems,
            )),
            Err(err) => problems.push(Problem {
                document: path.display().to_string(),
                path: String::new(),
                message: format!("cannot read the file: {err}"),
            }),
        }
    }
    let mut config = Config::default();
    decode_documents(&documents, options, &mut config, &mut problems);
    check_unique_names(&config, &mut problems);
    if problems.is_empty() && config.is_empty() {
        problems.push(Problem {
            document: files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            path: String::new(),
            message:
                "no component to run: expected an AWSS3Source, AWSSQSSource, AWSSQSTarget or AWSS3Target document"
                    .into(),
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
    let documents = parse_documents(text, file, problems);
    decode_documents(&documents, options, config, problems);
}

/// One parsed document and its label for messages.
struct Document {
    label: String,
    value: Value,
}

/// The YAML documents of one file, as JSON trees.
fn parse_documents(text: &str, file: &str, problems: &mut Vec<Problem>) -> Vec<Document> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        // Through serde_yaml_ng's own Value first: it rejects duplicate keys, which a direct
        // deserialization into serde_json's map would silently overwrite (last one wins).
        let value = match serde_yaml_ng::Value::deserialize(document)
            .and_then(|yaml| serde_json::to_value(yaml).map_err(serde::de::Error::custom))
        {
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
        documents.push(Document { label, value });
    }
    documents
}

/// Decodes parsed documents: first every `Secret` (so that a component may come before the
/// Secret it reads), then the components; other kinds are skipped, with a line each.
fn decode_documents(
    documents: &[Document],
    options: &LoadOptions,
    config: &mut Config,
    problems: &mut Vec<Problem>,
) {
    let mut options = options.clone();
    let (secrets, components): (Vec<&Document>, Vec<&Document>) = documents
        .iter()
        .partition(|d| secret_document::is_secret(&d.value));
    for document in secrets {
        let mut doc_problems = Problems::default();
        if let Some((name, values)) = secret_document::decode(&document.value, &mut doc_problems) {
            options.secret_documents.insert(name, values);
        }
        problems.extend(doc_problems.into_located(&document.label));
    }
    for document in components {
        if let Some(skip) = skipped(&document.value) {
            config.skipped.push(skip);
            continue;
        }
        let mut doc_problems = Problems::default();
        if let Some(name) = decode_document(&document.value, &options, config, &mut doc_problems) {
            config
                .documents
                .push((name.clone(), document.label.clone()));
            if let Some(source) = config.s3_sources.last().filter(|s| s.metadata.name == name) {
                let namespace = source
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or("(the pod's)");
                let refs = [
                    ("spec.sink.ref", source.sink_ref.as_ref()),
                    (
                        "spec.delivery.deadLetterSink.ref",
                        source.delivery.dead_letter_ref.as_ref(),
                    ),
                ];
                for (field, reference) in refs {
                    if let Some(reference) = reference {
                        config.skipped.push(format!(
                            "note: {}: {field} {} is resolved at run time, through the Kubernetes API",
                            document.label,
                            reference.describe(namespace)
                        ));
                    }
                }
            }
        }
        problems.extend(doc_problems.into_located(&document.label));
    }
}

/// `skipped: Trigger "aws-sample-sqs-trigger" (not an adapter component)` for a document whose
/// API group is not TriggerMesh's (Knative's `Trigger` and `Broker`, `ConfigMap`, ...).
fn skipped(value: &Value) -> Option<String> {
    let api_version = value.get("apiVersion").and_then(Value::as_str)?;
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    if matches!(group, "sources.triggermesh.io" | "targets.triggermesh.io") {
        return None;
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("(no kind)");
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    Some(format!(
        "skipped: {kind} {name:?} (not an adapter component)"
    ))
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

/// Decodes one document into `config`; returns the component's name when it was added.
fn decode_document(
    value: &Value,
    options: &LoadOptions,
    config: &mut Config,
    problems: &mut Problems,
) -> Option<String> {
    let mut doc = Obj::new(value, "", problems)?;
    let kind = doc.require_string("kind", problems);
    let api_version = doc.require_string("apiVersion", problems);
    doc.get("status"); // exported manifests carry it; it is the controller's, not ours.
    let expected_api = match kind.as_deref() {
        Some("AWSS3Source" | "AWSSQSSource") => SOURCES_API,
        Some("AWSSQSTarget" | "AWSS3Target") => TARGETS_API,
        Some(other) => {
            problems.add(
                "kind",
                format!(
                    "unknown kind {other:?}: expected AWSS3Source, AWSSQSSource, AWSSQSTarget or AWSS3Target"
                ),
            );
            return None;
        }
        None => return None,
    };
    if let Some(api_version) = &api_version
        && api_version != expected_api
    {
        problems.add(
            "apiVersion",
            format!("expected {expected_api:?}, found {api_version:?}"),
        );
    }
    let name = match kind.as_deref() {
        Some("AWSS3Source") => S3SourceConfig::decode(&mut doc, options, problems).map(|c| {
            let name = c.metadata.name.clone();
            config.s3_sources.push(c);
            name
        }),
        Some("AWSSQSSource") => crate::sources::sqs::config::decode(&mut doc, options, problems)
            .map(|c| {
                let name = c.metadata.name.clone();
                config.s3_sources.push(c);
                name
            }),
        Some("AWSSQSTarget") => SqsTargetConfig::decode(&mut doc, options, problems).map(|c| {
            let name = c.metadata.name.clone();
            config.sqs_targets.push(c);
            name
        }),
        Some("AWSS3Target") => S3TargetConfig::decode(&mut doc, options, problems).map(|c| {
            let name = c.metadata.name.clone();
            config.s3_targets.push(c);
            name
        }),
        _ => None,
    };
    doc.finish(problems);
    name
}

/// Names are serving paths and metric labels: two components cannot share one.
fn check_unique_names(config: &Config, problems: &mut Vec<Problem>) {
    let mut first_seen: HashMap<&str, &str> = HashMap::new();
    for (name, document) in &config.documents {
        if let Some(first) = first_seen.insert(name, document) {
            problems.push(Problem {
                document: document.clone(),
                path: "metadata.name".into(),
                message: format!("{name:?} is already the name of {first}; names must be unique"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, Vec<Problem>> {
        let mut config = Config::default();
        let mut problems = Vec::new();
        let options = LoadOptions::new(PathBuf::from("/nonexistent"));
        load_text(text, "f.yaml", &options, &mut config, &mut problems);
        let mut located = Vec::new();
        check_unique_names(&config, &mut located);
        problems.extend(located);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    const SOURCE: &str = r#"
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: uploads }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  sink: { uri: "http://127.0.0.1:9/" }
"#;

    #[test]
    fn duplicate_keys_are_an_error_not_last_one_wins() {
        let text = SOURCE.replace(
            "  arn: arn:aws:s3:::media-uploads\n",
            "  arn: arn:aws:s3:::media-uploads\n  arn: arn:aws:s3:::other\n",
        );
        let problems = load_str(&text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("duplicate"), "{}", problems[0]);
    }

    #[test]
    fn duplicate_names_say_where_both_are() {
        let text = format!("{SOURCE}---{SOURCE}");
        let problems = load_str(&text).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "f.yaml: document 2 (AWSS3Source \"uploads\"): metadata.name: \"uploads\" is already the name of f.yaml: document 1 (AWSS3Source \"uploads\"); names must be unique"
        );
    }
}
