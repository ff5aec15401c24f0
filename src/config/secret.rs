//! Secret values in manifests: `value` (a literal) or `valueFromSecret` (a file of a mounted
//! Kubernetes Secret: `<secrets-dir>/<name>/<key>`).
//!
//! A [`Secret`] never prints its content: `Debug` and `Display` show a placeholder, so secrets
//! cannot leak through logs, errors or metrics by accident.

use std::fmt;
use std::path::PathBuf;

/// A secret string. Read it with [`Secret::expose`], only where it is handed to the AWS SDK.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `value: ...` in the manifest.
    Literal(Secret),
    /// `valueFromSecret: {name, key}`: read from this file when the component starts.
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(<redacted>)"),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl SecretSource {
    /// Reads the current value. Trailing newlines of secret files are dropped (`kubectl create
    /// secret --from-file` keeps them, and no AWS key ends in one).
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Literal(secret) => Ok(secret.clone()),
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let trimmed = text.trim_end_matches(['\n', '\r']);
                    if trimmed.is_empty() {
                        Err(format!("secret file {} is empty", path.display()))
                    } else {
                        Ok(Secret::new(trimmed))
                    }
                }
                Err(err) => Err(format!("cannot read secret file {}: {err}", path.display())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretSource::Literal(Secret::new("wJalrXUtnFEMI"));
        assert!(!format!("{secret:?}").contains("wJalr"));
        assert!(!format!("{:?}", secret.read().unwrap()).contains("wJalr"));
    }

    #[test]
    fn files_are_read_without_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "abc\n").unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(source.read().unwrap().expose(), "abc");
        std::fs::write(&path, "rotated\n").unwrap();
        assert_eq!(source.read().unwrap().expose(), "rotated");
        std::fs::remove_file(&path).unwrap();
        assert!(
            source
                .read()
                .unwrap_err()
                .contains("cannot read secret file")
        );
    }
}
