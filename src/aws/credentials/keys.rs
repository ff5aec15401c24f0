//! Access keys from the manifest, as a credentials provider that reads them afresh on every
//! call: literal values never change, but `valueFromSecret` files are rewritten when secrets
//! rotate (e.g. hourly temporary keys from IAM Roles Anywhere), and the next read picks that up.

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};

use crate::config::auth::Keys;

/// Reads [`Keys`] each time credentials are asked for. Reading a few small files is cheap;
/// [`super::refresh::Refreshing`] calls this on its own schedule, never per request.
#[derive(Debug, Clone)]
pub struct KeysProvider {
    keys: Keys,
}

impl KeysProvider {
    pub fn new(keys: Keys) -> Self {
        KeysProvider { keys }
    }

    pub fn read(&self) -> Result<Credentials, CredentialsError> {
        // The messages name files, never their content.
        let access_key_id = self
            .keys
            .access_key_id
            .read()
            .map_err(CredentialsError::not_loaded)?;
        let secret_access_key = self
            .keys
            .secret_access_key
            .read()
            .map_err(CredentialsError::not_loaded)?;
        let session_token = match &self.keys.session_token {
            Some(token) => Some(token.read().map_err(CredentialsError::not_loaded)?),
            None => None,
        };
        Ok(Credentials::new(
            access_key_id.expose(),
            secret_access_key.expose(),
            session_token.map(|t| t.expose().to_string()),
            None,
            "spec.auth.credentials",
        ))
    }
}

impl ProvideCredentials for KeysProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(self.read())
    }
}
