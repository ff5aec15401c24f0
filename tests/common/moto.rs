//! A moto server of a test's own (for IAM enforcement, a setting global to a server), and the
//! IAM users, roles and policies the tests create on it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use bytes::Bytes;
use http::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::{ACCOUNT, REGION, free_addr, http_get};

/// A moto server of the test's own, for tests that switch on IAM enforcement (a global
/// setting of a server). Started through the patched launcher that `./scripts/test` names in
/// `MOTO_PYTHON` / `MOTO_LAUNCHER`.
pub struct OwnMoto {
    child: Child,
    pub endpoint: String,
}

impl OwnMoto {
    pub async fn start() -> OwnMoto {
        let python = std::env::var("MOTO_PYTHON")
            .expect("MOTO_PYTHON is not set: run the tests through ./scripts/test");
        let launcher = std::env::var("MOTO_LAUNCHER")
            .expect("MOTO_LAUNCHER is not set: run the tests through ./scripts/test");
        let addr = free_addr();
        let child = Command::new(python)
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = OwnMoto {
            child,
            endpoint: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(
            http_get(addr, "/moto-api/data.json").await,
            Ok((StatusCode::OK, _))
        ) {
            assert!(Instant::now() < deadline, "moto did not start on {addr}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// Turns IAM and SigV4 enforcement on (`true`) or off.
    pub async fn enforce_auth(&self, on: bool) {
        let client: Client<_, http_body_util::Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let request = http::Request::post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(http_body_util::Full::new(Bytes::from(if on {
                "0"
            } else {
                "inf"
            })))
            .unwrap();
        let response = client.request(request).await.expect("reset-auth");
        assert!(
            response.status().is_success(),
            "reset-auth: {}",
            response.status()
        );
    }

    /// SDK configuration for this server with the given keys.
    pub async fn sdk_config(&self, access_key: &str, secret_key: &str) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key, secret_key, None, None, "test",
            ))
            .load()
            .await
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an IAM user with one inline policy allowing `actions` on `resource`; returns its
/// (access key id, secret key).
pub async fn iam_user(
    iam: &aws_sdk_iam::Client,
    name: &str,
    actions: &[&str],
    resource: &str,
) -> (String, String) {
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .expect("create user");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resource }]
    });
    iam.put_user_policy()
        .user_name(name)
        .policy_name("adapter")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put user policy");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("create access key")
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

/// Creates an IAM role that the IAM users `trusted` (names) may assume, with one inline policy
/// allowing `actions` on `resource`; returns its ARN. (moto checks a trust policy's AWS
/// principals literally, so the users are named rather than the account root.)
pub async fn iam_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    trusted: &[&str],
    actions: &[&str],
    resource: &str,
) -> String {
    let principals: Vec<String> = trusted
        .iter()
        .map(|user| format!("arn:aws:iam::{ACCOUNT}:user/{user}"))
        .collect();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": principals, "Federated": "oidc.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]
        }]
    });
    let role = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role")
        .role
        .unwrap();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resource }]
    });
    iam.put_role_policy()
        .role_name(name)
        .policy_name("adapter")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put role policy");
    role.arn
}

/// The seed's minimal policy for a source with an existing queue.
pub const SOURCE_MINIMAL_POLICY: [&str; 3] =
    ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"];
