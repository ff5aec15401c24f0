//! Credentials for AWS calls, from a component's `spec.auth`. Every component gets its
//! credentials here and nowhere else.
//!
//! This version supports static keys (optionally with a session token) and the SDK's default
//! chain; the roles (STS `AssumeRole`, web identity) come next, behind the same function.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::common::Auth;

/// The provider for `auth`, or `None` for the SDK's default chain.
pub fn provider(auth: &Auth) -> Result<Option<SharedCredentialsProvider>, String> {
    match auth {
        Auth::DefaultChain => Ok(None),
        Auth::Keys {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let token = match session_token {
                Some(token) => Some(token.read()?.expose().to_string()),
                None => None,
            };
            let credentials = Credentials::new(
                access_key_id.read()?.expose(),
                secret_access_key.read()?.expose(),
                token,
                None,
                "spec.auth.credentials",
            );
            Ok(Some(SharedCredentialsProvider::new(credentials)))
        }
    }
}
