//! AWS credentials for every component, from its `spec.auth`: static keys (re-read when their
//! secret files rotate), temporary keys with a session token, a cross-account role assumed with
//! `sts:AssumeRole`, web identity (`sts:AssumeRoleWithWebIdentity`, EKS IRSA), or the SDK's
//! default chain.
//!
//! Built on aws-config's providers; what they lack is added here: the background refresh
//! ([`refresh::Refreshing`]) and the re-reading of secret files ([`keys::KeysProvider`]). SDK
//! clients get a [`Refreshing`] with the SDK's own identity cache switched off, so every request
//! reads the current credentials from memory and never waits for STS.

pub mod keys;
pub mod refresh;
pub mod sts_calls;

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use sha2::{Digest, Sha256};

use crate::config::auth::{Auth, AuthMode, valid_session_name};
use crate::telemetry::Component;
use keys::KeysProvider;
pub use refresh::Refreshing;
use sts_calls::TimedSts;

/// How often keys in secret files are re-read.
const FILE_RECHECK: Duration = Duration::from_secs(2);
/// How often the default chain is asked again when its credentials do not expire.
const DEFAULT_CHAIN_RECHECK: Duration = Duration::from_secs(300);

/// A component's `spec.auth` cannot be turned into a credentials provider in this environment
/// (e.g. web identity without the pod identity webhook's variables): a configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// The refreshing credentials of one component. Start [`Refreshing::run`] to keep them fresh.
pub async fn for_component(
    component: &Component,
    auth: &Auth,
    region: &str,
) -> Result<Refreshing, SetupError> {
    let mode = auth.mode.describe();
    let region = Region::new(region.to_string());
    let (source, recheck) = match &auth.mode {
        AuthMode::DefaultChain => {
            let chain = DefaultCredentialsChain::builder()
                .region(region)
                .build()
                .await;
            (
                SharedCredentialsProvider::new(chain),
                Some(DEFAULT_CHAIN_RECHECK),
            )
        }
        AuthMode::Keys(keys) => {
            let recheck = keys.from_files().then_some(FILE_RECHECK);
            (
                SharedCredentialsProvider::new(KeysProvider::new(keys.clone())),
                recheck,
            )
        }
        AuthMode::AssumeRole { base, role_arn } => {
            // An SDK configuration for STS: the region and endpoints (AWS_ENDPOINT_URL...) as
            // for every client; the base identity is the keys, read afresh at each AssumeRole.
            let sts_config = aws_config::defaults(BehaviorVersion::latest())
                .region(region.clone())
                .load()
                .await;
            let mut builder = AssumeRoleProvider::builder(role_arn)
                .session_name(session_name(component, auth))
                .region(region)
                .configure(&sts_config);
            if let Some(id) = &auth.external_id {
                builder = builder.external_id(id);
            }
            if let Some(duration) = auth.session_duration {
                builder = builder.session_length(duration);
            }
            let provider = builder
                .build_from_provider(KeysProvider::new(base.clone()))
                .await;
            let provider = SharedCredentialsProvider::new(provider);
            (
                SharedCredentialsProvider::new(TimedSts::new(provider, "AssumeRole", component)),
                None,
            )
        }
        AuthMode::WebIdentity { role_arn } => {
            let role_arn = role_arn
                .clone()
                .or_else(|| std::env::var("AWS_ROLE_ARN").ok())
                .ok_or_else(|| {
                    SetupError(
                        "spec.auth.iam.roleArn is not set and neither is AWS_ROLE_ARN".into(),
                    )
                })?;
            let token_file = std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").map_err(|_| {
                SetupError("spec.auth.iam needs AWS_WEB_IDENTITY_TOKEN_FILE (set by the EKS pod identity webhook) to name the token file".into())
            })?;
            let provider = WebIdentityTokenCredentialsProvider::builder()
                .static_configuration(StaticConfiguration {
                    web_identity_token_file: token_file.into(),
                    role_arn,
                    session_name: session_name(component, auth),
                })
                .configure(&ProviderConfig::without_region().with_region(Some(region)))
                .build();
            let provider = SharedCredentialsProvider::new(provider);
            (
                SharedCredentialsProvider::new(TimedSts::new(
                    provider,
                    "AssumeRoleWithWebIdentity",
                    component,
                )),
                None,
            )
        }
    };
    Ok(Refreshing::new(
        source,
        auth.refresh_margin,
        recheck,
        component.clone(),
        mode,
    ))
}

/// A stable, readable role session name: `sessionName`, else
/// `aws-event-adapter.<namespace>.<name>`, shortened with a hash to STS's 64 characters.
pub fn session_name(component: &Component, auth: &Auth) -> String {
    if let Some(name) = &auth.session_name {
        return name.clone();
    }
    let mut name = String::from("aws-event-adapter");
    for part in component.namespace.iter().chain([&component.name]) {
        name.push('.');
        name.extend(part.chars().map(|c| {
            if valid_session_name(&format!("{c}{c}")) {
                c
            } else {
                '-'
            }
        }));
    }
    if name.len() > 64 {
        let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
        name.truncate(55);
        name.push('-');
        name.push_str(&hash);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(namespace: Option<&str>, name: &str) -> Component {
        Component {
            kind: "awss3source",
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
        }
    }

    #[test]
    fn session_names_are_stable_readable_and_short_enough() {
        let auth = Auth::default();
        assert_eq!(
            session_name(&component(Some("prod"), "uploads"), &auth),
            "aws-event-adapter.prod.uploads"
        );
        assert_eq!(
            session_name(&component(None, "uploads"), &auth),
            "aws-event-adapter.uploads"
        );
        let long = "x".repeat(80);
        let a = session_name(&component(Some("ns"), &long), &auth);
        let b = session_name(&component(Some("ns2"), &long), &auth);
        assert_eq!(a.len(), 64);
        assert!(valid_session_name(&a));
        assert_ne!(a, b, "the hash keeps long names distinct");
        assert_eq!(
            a,
            session_name(&component(Some("ns"), &long), &auth),
            "stable"
        );
    }
}
