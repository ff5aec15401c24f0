//! Optional bearer-token authentication of the target endpoints: `Authorization: Bearer
//! <token>`, the token read from a file (a mounted Secret) and read again when the file
//! changes, compared in constant time so its content cannot be guessed from answer times.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::config::secret::{Secret, SecretSource};

/// The expected token, with the file's modification time it was read at.
pub struct BearerAuth {
    file: PathBuf,
    current: Mutex<Option<(SystemTime, Secret)>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// Reads the token once now, so a missing file fails at start, not at the first request.
    pub fn from_file(file: PathBuf) -> Result<Self, String> {
        let auth = BearerAuth {
            file,
            current: Mutex::new(None),
        };
        auth.token().map(|_| auth)
    }

    /// The current token, read again when the file's modification time changed.
    fn token(&self) -> Result<Secret, String> {
        let modified = std::fs::metadata(&self.file)
            .and_then(|m| m.modified())
            .map_err(|err| format!("cannot read the token file {}: {err}", self.file.display()))?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, token)) = current.as_ref()
            && *at == modified
        {
            return Ok(token.clone());
        }
        let token = SecretSource::File(self.file.clone()).read()?;
        *current = Some((modified, token.clone()));
        Ok(token)
    }

    /// Whether the request carries the token.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        else {
            return false;
        };
        match self.token() {
            Ok(expected) => bool::from(given.trim().as_bytes().ct_eq(expected.expose().as_bytes())),
            Err(err) => {
                tracing::error!(error = %err, "no bearer token to compare with; refusing the request");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_current_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let auth = BearerAuth::from_file(file.clone()).unwrap();
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(auth.allows(&headers("Bearer s3cr3t")));
        assert!(!auth.allows(&headers("Bearer s3cr3")));
        assert!(!auth.allows(&headers("Basic s3cr3t")));
        assert!(!auth.allows(&HeaderMap::new()));
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        // Rotated: the new token works, the old one no longer does.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "n3w\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(later).unwrap();
        assert!(auth.allows(&headers("Bearer n3w")));
        assert!(!auth.allows(&headers("Bearer s3cr3t")));
        assert!(BearerAuth::from_file(dir.path().join("missing")).is_err());
    }
}
