//! Kubernetes `Secret` documents (`apiVersion: v1`, `kind: Secret`) in the configuration files:
//! TriggerMesh's samples ship their keys this way, next to the component. Their `stringData`
//! and `data` (base64) values serve `valueFromSecret` before `--secrets-dir` is looked at. The
//! values become [`Secret`]s at once, so they are never printed.

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;

use crate::config::decode::{Obj, Problems};
use crate::config::secret::Secret;

/// Whether a document is a Kubernetes Secret.
pub fn is_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// The Secret's name and its values by key; problems name keys, never values.
pub fn decode(value: &Value, problems: &mut Problems) -> Option<(String, HashMap<String, Secret>)> {
    let mut doc = Obj::new(value, "", problems)?;
    doc.get("kind");
    doc.get("apiVersion");
    doc.get("type"); // Opaque, kubernetes.io/basic-auth, ...: the values are read alike.
    doc.get("immutable");
    let name = doc.obj("metadata", problems).and_then(|mut metadata| {
        let name = metadata.require_string("name", problems);
        metadata.get("namespace");
        metadata.get("labels");
        metadata.get("annotations");
        metadata.finish(problems);
        name
    });
    let mut values = HashMap::new();
    if let Some((data, path)) = doc.get("data") {
        for (key, encoded) in entries(data, &path, problems) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            match decoded {
                // Trailing newlines dropped, as for a mounted Secret's files (`echo … | base64`
                // and `--from-file` keep them; no AWS key ends in one).
                Some(text) => {
                    values.insert(key, Secret::new(text.trim_end_matches(['\n', '\r'])));
                }
                None => problems.add(
                    &format!("{path}.{key}"),
                    "is not base64 of UTF-8 text (the value is not shown)",
                ),
            }
        }
    }
    if let Some((data, path)) = doc.get("stringData") {
        // As in Kubernetes, stringData wins over data for the same key.
        for (key, text) in entries(data, &path, problems) {
            values.insert(key, Secret::new(text.trim_end_matches(['\n', '\r'])));
        }
    }
    doc.finish(problems);
    name.map(|name| (name, values))
}

/// The string entries of a `data` / `stringData` map.
fn entries(value: &Value, field: &str, problems: &mut Problems) -> Vec<(String, String)> {
    let Some(map) = value.as_object() else {
        problems.add(field, "must be a map of key: value");
        return Vec::new();
    };
    map.iter()
        .filter_map(|(key, value)| match value.as_str() {
            Some(text) => Some((key.clone(), text.to_string())),
            None => {
                problems.add(&format!("{field}.{key}"), "must be a string");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_and_base64_data_are_read_and_never_shown() {
        let value: Value = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": "aws", "namespace": "default" },
            "type": "Opaque",
            "data": { "AWS_ACCESS_KEY_ID": "QUtJQUVYQU1QTEUK", "BAD": "%%%" },
            "stringData": { "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI" }
        });
        assert!(is_secret(&value));
        let mut problems = Problems::default();
        let (name, values) = decode(&value, &mut problems).unwrap();
        assert_eq!(name, "aws");
        assert_eq!(values["AWS_ACCESS_KEY_ID"].expose(), "AKIAEXAMPLE");
        assert_eq!(values["AWS_SECRET_ACCESS_KEY"].expose(), "wJalrXUtnFEMI");
        let said = format!("{problems:?} {values:?}");
        assert!(said.contains("data.BAD"), "{said}");
        assert!(!said.contains("wJalr") && !said.contains("AKIAEX") && !said.contains("%%%"));
    }
}
