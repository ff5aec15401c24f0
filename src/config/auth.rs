//! `spec.auth`: how a component gets AWS credentials — TriggerMesh's fields, plus our options
//! for assumed-role sessions and background refresh.
//!
//! ```yaml
//! auth:
//!   credentials:                     # static keys, optionally temporary, optionally a role
//!     accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }
//!     secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }
//!     sessionToken: { valueFromSecret: { name: aws, key: AWS_SESSION_TOKEN } }   # optional
//!     assumeIamRole: arn:aws:iam::210987654321:role/cross-account                # optional
//!   iam:                             # or: web identity (EKS IRSA)
//!     roleArn: arn:aws:iam::123456789012:role/adapter   # default: $AWS_ROLE_ARN
//!     serviceAccount: adapter                           # accepted, unused by the data plane
//!   # ours, all optional:
//!   externalID: "..."                # sts:ExternalId for assumeIamRole
//!   sessionDuration: 1h              # assumeIamRole sessions, 15m to 12h
//!   sessionName: my-session          # default: aws-event-adapter.<namespace>.<name>
//!   refreshMargin: 5m                # renew temporary credentials this long before expiry
//! ```
//!
//! No `auth` at all means the SDK's default chain (environment, profile, web identity,
//! container and instance metadata).

use std::time::Duration;

use super::LoadOptions;
use super::common::secret_field;
use super::decode::{Obj, Problems};
use super::secret::SecretSource;

/// Access keys: static, or temporary with a session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: SecretSource,
    pub secret_access_key: SecretSource,
    pub session_token: Option<SecretSource>,
}

impl Keys {
    /// Whether any of the keys is read from a file (and so can rotate).
    pub fn from_files(&self) -> bool {
        let file = |s: &SecretSource| matches!(s, SecretSource::File(_));
        file(&self.access_key_id)
            || file(&self.secret_access_key)
            || self.session_token.as_ref().is_some_and(file)
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// No `spec.auth`: the SDK's default chain.
    DefaultChain,
    /// `credentials` without `assumeIamRole`.
    Keys(Keys),
    /// `credentials` with `assumeIamRole`: the keys are the base identity of `sts:AssumeRole`.
    AssumeRole { base: Keys, role_arn: String },
    /// `iam.roleArn` (or `$AWS_ROLE_ARN`): `sts:AssumeRoleWithWebIdentity` with the token file
    /// in `$AWS_WEB_IDENTITY_TOKEN_FILE`.
    WebIdentity { role_arn: Option<String> },
}

impl AuthMode {
    /// A short, secret-free description for logs and errors.
    pub fn describe(&self) -> &'static str {
        match self {
            AuthMode::DefaultChain => "the SDK's default credential chain",
            AuthMode::Keys(keys) if keys.session_token.is_some() => {
                "temporary keys with a session token"
            }
            AuthMode::Keys(_) => "static keys",
            AuthMode::AssumeRole { .. } => "a role assumed with sts:AssumeRole",
            AuthMode::WebIdentity { .. } => "web identity (sts:AssumeRoleWithWebIdentity)",
        }
    }
}

/// `spec.auth`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub mode: AuthMode,
    pub external_id: Option<String>,
    pub session_duration: Option<Duration>,
    pub session_name: Option<String>,
    /// Temporary credentials are renewed this long before they expire.
    pub refresh_margin: Duration,
}

/// Renew temporary credentials five minutes before they expire, as the AWS SDKs do.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl Default for Auth {
    fn default() -> Self {
        Auth {
            mode: AuthMode::DefaultChain,
            external_id: None,
            session_duration: None,
            session_name: None,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }
}

pub fn decode(spec: &mut Obj<'_>, options: &LoadOptions, problems: &mut Problems) -> Option<Auth> {
    let Some(mut auth) = spec.obj("auth", problems) else {
        return Some(Auth::default());
    };
    let mut out = Auth::default();
    let iam = auth.obj("iam", problems);
    let credentials = auth.obj("credentials", problems);
    if let Some(id) = auth.string("externalID", problems) {
        out.external_id = Some(id);
    }
    if let Some(duration) = auth.duration("sessionDuration", problems) {
        if (Duration::from_secs(900)..=Duration::from_secs(43_200)).contains(&duration) {
            out.session_duration = Some(duration);
        } else {
            problems.add(
                &auth.path_of("sessionDuration"),
                "must be from 15 minutes to 12 hours",
            );
        }
    }
    if let Some(name) = auth.string("sessionName", problems) {
        if valid_session_name(&name) {
            out.session_name = Some(name);
        } else {
            problems.add(
                &auth.path_of("sessionName"),
                "must be 2 to 64 characters of letters, digits and +=,.@-",
            );
        }
    }
    let margin_path = auth.path_of("refreshMargin");
    if let Some(margin) = auth.duration("refreshMargin", problems) {
        out.refresh_margin = margin;
    }
    let auth_path = auth.path().to_string();
    auth.finish(problems);

    let mode = match (credentials, iam) {
        (Some(_), Some(_)) => {
            problems.add(&auth_path, "set either credentials or iam, not both");
            return None;
        }
        (None, Some(mut iam)) => {
            let role_arn = iam.string("roleArn", problems);
            iam.string("serviceAccount", problems); // the controller's business, not ours
            let path = iam.path_of("roleArn");
            iam.finish(problems);
            if let Some(arn) = &role_arn {
                check_role_arn(arn, &path, problems);
            }
            AuthMode::WebIdentity { role_arn }
        }
        (Some(mut creds), None) => {
            let access_key_id = secret_field(&mut creds, "accessKeyID", options, problems);
            let secret_access_key = secret_field(&mut creds, "secretAccessKey", options, problems);
            // `None` when absent, `Some(None)` when present but broken (already reported).
            let session_token = if creds.has("sessionToken") {
                Some(secret_field(&mut creds, "sessionToken", options, problems))
            } else {
                creds.get("sessionToken");
                None
            };
            let role_arn = creds.string("assumeIamRole", problems);
            if let Some(arn) = &role_arn {
                check_role_arn(arn, &creds.path_of("assumeIamRole"), problems);
            }
            creds.finish(problems);
            let session_token = match session_token {
                None => None,
                Some(token) => Some(token?),
            };
            let keys = Keys {
                access_key_id: access_key_id?,
                secret_access_key: secret_access_key?,
                session_token,
            };
            match role_arn {
                Some(role_arn) => AuthMode::AssumeRole {
                    base: keys,
                    role_arn,
                },
                None => AuthMode::Keys(keys),
            }
        }
        (None, None) => AuthMode::DefaultChain,
    };
    // Temporary credentials live `sessionDuration` (STS's default: one hour). A margin as long
    // would refresh them again as soon as they arrive, for ever.
    if matches!(
        mode,
        AuthMode::AssumeRole { .. } | AuthMode::WebIdentity { .. }
    ) {
        let lifetime = out.session_duration.unwrap_or(DEFAULT_SESSION_DURATION);
        if out.refresh_margin >= lifetime {
            problems.add(
                &margin_path,
                format!(
                    "must be shorter than the credentials' lifetime ({} s: sessionDuration, or STS's default of one hour)",
                    lifetime.as_secs()
                ),
            );
        }
    }
    out.mode = mode;
    Some(out)
}

/// How long STS's temporary credentials live when `sessionDuration` is not set.
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(3600);

/// `arn:<partition>:iam::<account>:role/<path/name>`
fn check_role_arn(arn: &str, path: &str, problems: &mut Problems) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.starts_with("role/")
                && resource.len() > 5);
    if !ok {
        problems.add(
            path,
            format!("expected an IAM role ARN such as arn:aws:iam::123456789012:role/name, found {arn:?}"),
        );
    }
}

/// STS role session names: `[\w+=,.@-]{2,64}`.
pub fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_json(value: serde_json::Value) -> (Option<Auth>, Vec<String>) {
        let mut problems = Problems::default();
        let mut spec = Obj::new(&value, "spec", &mut problems).unwrap();
        let options = LoadOptions::new("/nonexistent".into());
        let auth = decode(&mut spec, &options, &mut problems);
        let rendered = problems
            .into_located("d")
            .iter()
            .map(ToString::to_string)
            .collect();
        (auth, rendered)
    }

    #[test]
    fn decodes_each_mode() {
        let (auth, problems) = decode_json(json!({"auth": {"credentials": {
            "accessKeyID": {"value": "AKIA"}, "secretAccessKey": {"value": "s"},
            "assumeIamRole": "arn:aws:iam::210987654321:role/cross"},
            "externalID": "x", "sessionDuration": "1h", "refreshMargin": "PT10M"}}));
        assert!(problems.is_empty(), "{problems:?}");
        let auth = auth.unwrap();
        assert!(
            matches!(&auth.mode, AuthMode::AssumeRole { role_arn, .. } if role_arn.ends_with("role/cross"))
        );
        assert_eq!(auth.session_duration, Some(Duration::from_secs(3600)));
        assert_eq!(auth.refresh_margin, Duration::from_secs(600));

        let (auth, problems) = decode_json(json!({"auth": {"iam": {"serviceAccount": "sa"}}}));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(auth.unwrap().mode, AuthMode::WebIdentity { role_arn: None });

        let (auth, _) = decode_json(json!({}));
        assert_eq!(auth.unwrap().mode, AuthMode::DefaultChain);
    }

    #[test]
    fn a_refresh_margin_as_long_as_the_session_is_refused() {
        let role = |extra: serde_json::Value| {
            let mut auth = json!({"credentials": {
                "accessKeyID": {"value": "AKIA"}, "secretAccessKey": {"value": "s"},
                "assumeIamRole": "arn:aws:iam::210987654321:role/cross"}});
            auth.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            decode_json(json!({ "auth": auth })).1
        };
        let problems = role(json!({"sessionDuration": "15m", "refreshMargin": "15m"}));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            format!("{problems:?}").contains("refreshMargin")
                && format!("{problems:?}").contains("900 s"),
            "{problems:?}"
        );
        let problems = role(json!({"refreshMargin": "2h"}));
        assert!(format!("{problems:?}").contains("3600 s"), "{problems:?}");
        assert!(role(json!({"sessionDuration": "1h", "refreshMargin": "59m"})).is_empty());
        // Static keys do not expire: the margin is not checked.
        let (_, problems) = decode_json(json!({"auth": {"credentials": {
            "accessKeyID": {"value": "AKIA"}, "secretAccessKey": {"value": "s"}},
            "refreshMargin": "2h"}}));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn reports_bad_roles_and_options() {
        let (_, problems) = decode_json(json!({"auth": {
            "iam": {"roleArn": "arn:aws:iam::123:user/x"},
            "sessionDuration": "5m", "sessionName": "has space"}}));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("spec.auth.sessionDuration"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("spec.auth.sessionName"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains("spec.auth.iam.roleArn"),
            "{problems:?}"
        );
        let (_, problems) = decode_json(json!({"auth": {"iam": {}, "credentials": {}}}));
        assert!(
            problems.iter().any(|p| p.contains("not both")),
            "{problems:?}"
        );
    }
}
