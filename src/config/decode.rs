//! A small decoder over a parsed YAML document that collects *every* problem instead of stopping
//! at the first one.
//!
//! serde's derive stops at the first error, but `validate` must report all mistakes of a file at
//! once, each with its field path. So manifests are parsed into a `serde_json::Value` and walked
//! with these helpers: each getter records a [`Problem`] and returns `None` when the value is
//! missing or of the wrong type, and [`Obj::finish`] reports the fields nobody asked for.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// One mistake in a configuration file, located by document and field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `file.yaml: document 2 (AWSS3Source "uploads")`.
    pub document: String,
    /// The field path inside the document, e.g. `spec.delivery.retry`.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.document, self.message)
        } else {
            write!(f, "{}: {}: {}", self.document, self.path, self.message)
        }
    }
}

/// The problems found in one document; the document label is filled in by the loader.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<(String, String)>,
}

impl Problems {
    pub fn add(&mut self, path: &str, message: impl Into<String>) {
        self.list.push((path.to_string(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Attaches the document label to every problem.
    pub fn into_located(self, document: &str) -> Vec<Problem> {
        self.list
            .into_iter()
            .map(|(path, message)| Problem {
                document: document.to_string(),
                path,
                message,
            })
            .collect()
    }
}

/// Joins a parent path and a field name: `spec` + `sink` → `spec.sink`.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Describes a value's type for "expected X, found Y" messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A mapping being decoded: remembers which fields were read so the rest can be reported.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    seen: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Starts decoding `value` at `path`; records a problem and returns `None` if it is not a mapping.
    pub fn new(value: &'a Value, path: &str, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Obj {
                map,
                path: path.to_string(),
                seen: Vec::new(),
            }),
            other => {
                problems.add(
                    path,
                    format!("expected a mapping, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of one of this mapping's fields.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// An optional field; `null` counts as absent.
    pub fn get(&mut self, key: &'static str) -> Option<(&'a Value, String)> {
        self.seen.push(key);
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some((value, join(&self.path, key))),
        }
    }

    /// Whether the field is present (and not null), without marking it as read.
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// A required field: records "is required" when absent.
    pub fn require(
        &mut self,
        key: &'static str,
        problems: &mut Problems,
    ) -> Option<(&'a Value, String)> {
        let found = self.get(key);
        if found.is_none() {
            problems.add(&join(&self.path, key), "is required");
        }
        found
    }

    /// An optional mapping field.
    pub fn obj(&mut self, key: &'static str, problems: &mut Problems) -> Option<Obj<'a>> {
        let (value, path) = self.get(key)?;
        Obj::new(value, &path, problems)
    }

    /// A required mapping field.
    pub fn require_obj(&mut self, key: &'static str, problems: &mut Problems) -> Option<Obj<'a>> {
        let (value, path) = self.require(key, problems)?;
        Obj::new(value, &path, problems)
    }

    pub fn string(&mut self, key: &'static str, problems: &mut Problems) -> Option<String> {
        let (value, path) = self.get(key)?;
        as_string(value, &path, problems)
    }

    pub fn require_string(&mut self, key: &'static str, problems: &mut Problems) -> Option<String> {
        let (value, path) = self.require(key, problems)?;
        as_string(value, &path, problems)
    }

    /// A required string parsed with `FromStr` (ARNs...); the parser's message is the problem.
    pub fn require_parsed<T>(&mut self, key: &'static str, problems: &mut Problems) -> Option<T>
    where
        T: std::str::FromStr<Err = String>,
    {
        let text = self.require_string(key, problems)?;
        text.parse::<T>()
            .map_err(|message| problems.add(&self.path_of(key), message))
            .ok()
    }

    pub fn bool(&mut self, key: &'static str, problems: &mut Problems) -> Option<bool> {
        let (value, path) = self.get(key)?;
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                problems.add(
                    &path,
                    format!("expected true or false, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// An optional whole number within `min..=max`.
    pub fn integer(
        &mut self,
        key: &'static str,
        min: u64,
        max: u64,
        problems: &mut Problems,
    ) -> Option<u64> {
        let (value, path) = self.get(key)?;
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let found = match value {
                    Value::Number(n) => format!("{n}"),
                    other => kind_of(other).to_string(),
                };
                problems.add(
                    &path,
                    format!("expected a whole number from {min} to {max}, found {found}"),
                );
                None
            }
        }
    }

    /// An optional duration: ISO 8601 (`PT0.5S`, as Knative uses) or Go style (`45s`, `1m30s`).
    pub fn duration(&mut self, key: &'static str, problems: &mut Problems) -> Option<Duration> {
        let (value, path) = self.get(key)?;
        let text = as_string(value, &path, problems)?;
        match crate::config::duration::parse(&text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                problems.add(&path, message);
                None
            }
        }
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &'static str, problems: &mut Problems) -> Option<Vec<String>> {
        let (value, path) = self.get(key)?;
        let Value::Array(items) = value else {
            problems.add(
                &path,
                format!("expected a list of strings, found {}", kind_of(value)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(s) = as_string(item, &format!("{path}[{index}]"), problems) {
                out.push(s);
            }
        }
        Some(out)
    }

    /// Reports every field that no getter asked for.
    pub fn finish(self, problems: &mut Problems) {
        for key in self.map.keys() {
            if !self.seen.iter().any(|seen| seen == key) {
                let mut known: Vec<&str> = self.seen.clone();
                known.sort_unstable();
                known.dedup();
                problems.add(
                    &join(&self.path, key),
                    format!("unknown field (known fields here: {})", known.join(", ")),
                );
            }
        }
    }
}

fn as_string(value: &Value, path: &str, problems: &mut Problems) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        other => {
            problems.add(path, format!("expected a string, found {}", kind_of(other)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_problem_with_paths() {
        let doc = json!({"a": 1, "b": "x", "extra": true, "n": 99});
        let mut problems = Problems::default();
        let mut obj = Obj::new(&doc, "spec", &mut problems).unwrap();
        assert_eq!(obj.string("a", &mut problems), None);
        assert_eq!(obj.require_string("b", &mut problems).as_deref(), Some("x"));
        assert_eq!(obj.require_string("c", &mut problems), None);
        assert_eq!(obj.integer("n", 1, 10, &mut problems), None);
        obj.finish(&mut problems);
        let located = problems.into_located("doc");
        let rendered: Vec<String> = located.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            vec![
                "doc: spec.a: expected a string, found a number",
                "doc: spec.c: is required",
                "doc: spec.n: expected a whole number from 1 to 10, found 99",
                "doc: spec.extra: unknown field (known fields here: a, b, c, n)",
            ]
        );
    }
}
