//! Every `spec.auth` mode against moto with SigV4 and IAM enforcement on (each test has a moto
//! of its own, since enforcement is global to a server). The identities hold exactly the seed's
//! minimal policy for a source, so success proves the intended credentials were used.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;

const WAIT: Duration = Duration::from_secs(30);

/// A moto with enforcement on, a queue, an operator to feed it and an IAM admin client that
/// works while enforcement is off.
struct World {
    moto: OwnMoto,
    iam: aws_sdk_iam::Client,
    operator: aws_sdk_sqs::Client,
    queue: String,
    queue_url: String,
}

impl World {
    async fn new() -> World {
        let moto = OwnMoto::start().await;
        let iam = aws_sdk_iam::Client::new(&moto.sdk_config("testing", "testing").await);
        let (key, secret) = iam_user(&iam, "operator", &["sqs:*"], "*").await;
        let operator = aws_sdk_sqs::Client::new(&moto.sdk_config(&key, &secret).await);
        let queue = unique("creds");
        let queue_url = operator
            .create_queue()
            .queue_name(&queue)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        World {
            moto,
            iam,
            operator,
            queue,
            queue_url,
        }
    }

    /// Runs `admin` with enforcement briefly off (the IAM admin has no keys of its own).
    async fn as_admin<T>(&self, admin: impl std::future::Future<Output = T>) -> T {
        self.moto.enforce_auth(false).await;
        let out = admin.await;
        self.moto.enforce_auth(true).await;
        out
    }

    async fn send(&self, key: &str) {
        self.operator
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(put_sample_with_key(key))
            .send()
            .await
            .expect("send");
    }

    fn manifest(&self, sink: &TestSink, auth: &str) -> String {
        let auth: String = auth.lines().map(|l| format!("  {l}\n")).collect();
        format!(
            r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: creds, namespace: tests }}
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: "arn:aws:sqs:{REGION}:{ACCOUNT}:{}" }} }}
  sink: {{ uri: "{}" }}
  receive: {{ waitTimeSeconds: 1 }}
{auth}"#,
            self.queue,
            sink.uri()
        )
    }

    fn endpoint_env(&self) -> [(&str, &str); 1] {
        [("AWS_ENDPOINT_URL", self.moto.endpoint.as_str())]
    }

    async fn wait_empty(&self, adapter: &Adapter) {
        wait_queue_empty(&self.operator, &self.queue_url, WAIT, || adapter.log()).await;
    }
}

/// No secret value of the test appears in the adapter's output or in its /metrics.
async fn assert_no_leak(adapter: &Adapter, secrets: &[&str]) {
    let log = adapter.log();
    let metrics = adapter.metrics().await;
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "a secret value appears in the output"
        );
        assert!(
            !metrics.contains(secret),
            "a secret value appears in /metrics"
        );
    }
}

fn write_secret(dir: &std::path::Path, key: &str, value: &str) {
    // As Kubernetes does: write aside, then rename over, so a reader never sees half a file.
    let folder = dir.join("aws");
    std::fs::create_dir_all(&folder).unwrap();
    let tmp = folder.join(format!(".{key}.tmp"));
    std::fs::write(&tmp, format!("{value}\n")).unwrap();
    std::fs::rename(tmp, folder.join(key)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_keys_from_secret_files_rotate_without_a_restart() {
    let world = World::new().await;
    let (key1, secret1) = iam_user(
        &world.iam,
        "adapter",
        &SOURCE_MINIMAL_POLICY,
        "arn:aws:sqs:*:*:*",
    )
    .await;
    world.moto.enforce_auth(true).await;
    let secrets = tempfile::tempdir().unwrap();
    write_secret(secrets.path(), "AWS_ACCESS_KEY_ID", &key1);
    write_secret(secrets.path(), "AWS_SECRET_ACCESS_KEY", &secret1);
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = world.manifest(
        &sink,
        "auth:\n  credentials:\n    accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }\n    secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }",
    );
    let secrets_dir = secrets.path().to_str().unwrap();
    let adapter = Adapter::spawn_with_env(
        &manifest,
        &["--secrets-dir", secrets_dir],
        &world.endpoint_env(),
    );
    adapter.wait_ready(WAIT).await;
    world.send("before-rotation.txt").await;
    sink.wait_accepted(1, WAIT).await;

    // Rotate: a new key in the files, the old one deleted in IAM, so only the new one works.
    let key2 = world
        .as_admin(async {
            world
                .iam
                .create_access_key()
                .user_name("adapter")
                .send()
                .await
                .unwrap()
                .access_key
                .unwrap()
        })
        .await;
    write_secret(secrets.path(), "AWS_ACCESS_KEY_ID", &key2.access_key_id);
    write_secret(
        secrets.path(),
        "AWS_SECRET_ACCESS_KEY",
        &key2.secret_access_key,
    );
    world
        .as_admin(async {
            world
                .iam
                .delete_access_key()
                .user_name("adapter")
                .access_key_id(&key1)
                .send()
                .await
                .unwrap()
        })
        .await;
    // The old key is really dead now.
    let old = aws_sdk_sqs::Client::new(&world.moto.sdk_config(&key1, &secret1).await);
    assert!(
        old.get_queue_url()
            .queue_name(&world.queue)
            .send()
            .await
            .is_err()
    );

    world.send("after-rotation.txt").await;
    let accepted = sink.wait_accepted(2, WAIT).await;
    assert!(
        accepted.iter().any(|(_, e)| {
            cloudevents::AttributesReader::subject(e) == Some("after-rotation.txt")
        })
    );
    world.wait_empty(&adapter).await;
    assert_eq!(
        sink.accepted().len(),
        2,
        "each event once: no delete was lost to the rotation"
    );
    assert_eq!(
        adapter
            .metric("aws_event_adapter_sqs_delete_failures_total", "")
            .await,
        0.0
    );
    assert_no_leak(&adapter, &[&secret1, &key2.secret_access_key]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_keys_with_a_session_token() {
    let world = World::new().await;
    let role = iam_role(
        &world.iam,
        "queue-reader",
        &["roles-anywhere"],
        &SOURCE_MINIMAL_POLICY,
        "arn:aws:sqs:*:*:*",
    )
    .await;
    let (key, secret) = iam_user(&world.iam, "roles-anywhere", &["sts:AssumeRole"], "*").await;
    world.moto.enforce_auth(true).await;
    // What IAM Roles Anywhere hands out: an access key, a secret and a session token.
    let sts = aws_sdk_sts::Client::new(&world.moto.sdk_config(&key, &secret).await);
    let temporary = sts
        .assume_role()
        .role_arn(&role)
        .role_session_name("test")
        .send()
        .await
        .expect("assume role")
        .credentials
        .unwrap();
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = world.manifest(
        &sink,
        &format!(
            "auth:\n  credentials:\n    accessKeyID: {{ value: {} }}\n    secretAccessKey: {{ value: {} }}\n    sessionToken: {{ value: \"{}\" }}",
            temporary.access_key_id, temporary.secret_access_key, temporary.session_token
        ),
    );
    let adapter = Adapter::spawn_with_env(&manifest, &[], &world.endpoint_env());
    adapter.wait_ready(WAIT).await;
    world.send("temporary.txt").await;
    sink.wait_accepted(1, WAIT).await;
    world.wait_empty(&adapter).await;
    assert_no_leak(
        &adapter,
        &[&temporary.session_token, &temporary.secret_access_key],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assumed_role_is_refreshed_in_the_background_without_failures() {
    let world = World::new().await;
    let role = iam_role(
        &world.iam,
        "cross-account",
        &["base"],
        &SOURCE_MINIMAL_POLICY,
        "arn:aws:sqs:*:*:*",
    )
    .await;
    // The base user may only assume roles: deliveries prove the role's credentials were used.
    let (key, secret) = iam_user(&world.iam, "base", &["sts:AssumeRole"], "*").await;
    world.moto.enforce_auth(true).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    // Sessions last 900 s and are renewed 896 s before expiry: a refresh every 3 to 4 seconds.
    let manifest = world.manifest(
        &sink,
        &format!(
            "auth:\n  credentials:\n    accessKeyID: {{ value: {key} }}\n    secretAccessKey: {{ value: {secret} }}\n    assumeIamRole: {role}\n  externalID: tests\n  sessionDuration: 15m\n  refreshMargin: 896s"
        ),
    );
    let adapter = Adapter::spawn_with_env(&manifest, &[], &world.endpoint_env());
    adapter.wait_ready(WAIT).await;
    // Keep sending while the credentials are renewed at least three times after the first fetch.
    let mut expiry_values = std::collections::BTreeSet::new();
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent < 8
        || adapter
            .metric("aws_event_adapter_credentials_refreshes_total", "")
            .await
            < 4.0
    {
        assert!(tokio::time::Instant::now() < deadline, "too few refreshes");
        world.send(&format!("refresh-{sent}.txt")).await;
        sent += 1;
        let gauge = adapter
            .metric("aws_event_adapter_credentials_expiry_seconds", "")
            .await;
        assert!(gauge > 800.0 && gauge <= 900.0, "expiry gauge {gauge}");
        expiry_values.insert(gauge as u64);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    sink.wait_accepted(sent, WAIT).await;
    world.wait_empty(&adapter).await;
    assert_eq!(sink.accepted().len(), sent, "every event delivered once");
    let metrics = adapter.metrics().await;
    let refreshes = metric_value(
        &metrics,
        "aws_event_adapter_credentials_refreshes_total",
        "",
    );
    assert!(
        refreshes >= 4.0,
        "the first fetch and at least three refreshes, got {refreshes}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_credentials_refresh_failures_total",
            ""
        ),
        0.0
    );
    assert_eq!(
        metric_value(&metrics, "aws_event_adapter_aws_errors_total", ""),
        0.0,
        "no failed AWS call"
    );
    assert!(
        expiry_values.len() >= 2,
        "the expiry gauge moves: {expiry_values:?}"
    );
    // Every fetch is an STS call, counted like the SQS ones.
    let assume_role = metric_value(
        &metrics,
        "aws_event_adapter_aws_calls_total",
        "operation=\"AssumeRole\",outcome=\"success\"",
    );
    assert!(
        assume_role >= refreshes,
        "{assume_role} AssumeRole calls counted for {refreshes} refreshes"
    );
    // The base identity's secret appears in neither the output nor the metrics.
    assert!(
        !adapter.log().contains(&secret),
        "the base secret key leaked into the log"
    );
    assert!(
        !metrics.contains(&secret),
        "the base secret key leaked into the metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_with_a_token_file() {
    let world = World::new().await;
    let role = iam_role(
        &world.iam,
        "irsa",
        &[],
        &SOURCE_MINIMAL_POLICY,
        "arn:aws:sqs:*:*:*",
    )
    .await;
    world.moto.enforce_auth(true).await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.web-identity-token-for-tests",
    )
    .unwrap();
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = world.manifest(
        &sink,
        &format!("auth:\n  iam:\n    roleArn: {role}\n    serviceAccount: adapter"),
    );
    let token_path = token_file.to_str().unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", world.moto.endpoint.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_path),
    ];
    let adapter = Adapter::spawn_with_env(&manifest, &[], &env);
    adapter.wait_ready(WAIT).await;
    world.send("irsa.txt").await;
    sink.wait_accepted(1, WAIT).await;
    world.wait_empty(&adapter).await;
    assert!(
        adapter
            .metric(
                "aws_event_adapter_aws_calls_total",
                "operation=\"AssumeRoleWithWebIdentity\",outcome=\"success\"",
            )
            .await
            >= 1.0,
        "the web identity call is counted"
    );
    assert_no_leak(&adapter, &["web-identity-token-for-tests"]).await;
}

/// An STS endpoint that accepts connections and never answers: the fetch gives up after its
/// timeout and is counted as a failed call and a failed refresh; `/healthz` answers from the
/// start, `/readyz` does not turn ready, and SIGTERM ends the process within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_endpoint_that_never_answers_is_timed_out_and_counted() {
    let aws = Aws::new().await;
    let (_, queue_arn) = aws.create_queue(&unique("sts-hole")).await;
    let role = "      assumeIamRole: arn:aws:iam::123456789012:role/never";
    let source = format!(
        "apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata:
  name: hole
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: \"{queue_arn}\" }} }}
  sink: {{ uri: \"http://127.0.0.1:9/\" }}
  auth:
    credentials:
      accessKeyID: {{ value: testing }}
      secretAccessKey: {{ value: testing }}
{role}
"
    );
    let target = format!(
        "apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata:
  name: hole
spec:
  arn: {queue_arn}
  auth:
    credentials:
      accessKeyID: {{ value: testing }}
      secretAccessKey: {{ value: testing }}
{role}
"
    );
    // A target used to wait for its first STS answer before the HTTP server started.
    let (from_source, from_target) = tokio::join!(
        stalled_sts_run(&source, "source"),
        stalled_sts_run(&target, "target")
    );
    for (what, exited_after) in [("source", from_source), ("target", from_target)] {
        assert!(
            exited_after < Duration::from_secs(8),
            "{what}: exited {exited_after:?} after SIGTERM, grace 5 s"
        );
    }
}

/// Runs `manifest` with an STS endpoint that accepts connections and never answers: `/healthz`
/// answers at once, `/readyz` is 503, the stalled fetch is timed out and counted, and SIGTERM
/// ends the process. Returns how long after SIGTERM it exited (grace 5 s).
async fn stalled_sts_run(manifest: &str, what: &str) -> Duration {
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sts = format!("http://{}", black_hole.local_addr().unwrap());
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = black_hole.accept().await {
            held.push(stream); // never read, never answered, never closed
        }
    });
    let mut adapter = Adapter::spawn_with_env(
        manifest,
        &["--shutdown-grace", "5s"],
        &[("AWS_ENDPOINT_URL_STS", sts.as_str())],
    );
    let started = tokio::time::Instant::now();
    let healthz = loop {
        match http_get(adapter.http_addr, "/healthz").await {
            Ok((status, _)) => break status,
            Err(_) if started.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{what}: no /healthz answer within 2 s: {err}"),
        }
    };
    assert_eq!(healthz, StatusCode::OK, "{what}: /healthz from the start");
    assert!(started.elapsed() < Duration::from_secs(2), "{what}");
    adapter
        .wait_metric(
            "aws_event_adapter_aws_calls_total",
            "operation=\"AssumeRole\",outcome=\"error\"",
            1.0,
            Duration::from_secs(30),
        )
        .await;
    assert!(
        adapter
            .metric("aws_event_adapter_credentials_refresh_failures_total", "")
            .await
            >= 1.0,
        "{what}"
    );
    let (status, _) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let signalled = tokio::time::Instant::now();
    adapter.signal("TERM");
    adapter.wait_exit(Duration::from_secs(35)).await;
    accepted.abort();
    signalled.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_key_is_reported_retried_and_never_printed() {
    let world = World::new().await;
    let (key, _secret) = iam_user(
        &world.iam,
        "adapter",
        &SOURCE_MINIMAL_POLICY,
        "arn:aws:sqs:*:*:*",
    )
    .await;
    world.moto.enforce_auth(true).await;
    let wrong = "wRoNgSeCrEtKeY0123456789abcdefghijklmnop";
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = world.manifest(
        &sink,
        &format!("auth:\n  credentials:\n    accessKeyID: {{ value: {key} }}\n    secretAccessKey: {{ value: {wrong} }}"),
    );
    let mut adapter = Adapter::spawn_with_env(&manifest, &[], &world.endpoint_env());
    // Several attempts, each refused: the process keeps trying and reports not ready.
    adapter
        .wait_metric(
            "aws_event_adapter_aws_errors_total",
            "operation=\"GetQueueUrl\"",
            3.0,
            WAIT,
        )
        .await;
    let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        adapter
            .wait_exit_or_timeout(Duration::from_millis(200))
            .await
            .is_none(),
        "no crash"
    );
    let log = adapter.log();
    let refusal = log
        .lines()
        .find(|l| l.contains("AWS refused the source's credentials"))
        .unwrap_or_else(|| panic!("no clear error; log:\n{log}"));
    assert!(
        refusal.contains("\"component\":\"awss3source\"") && refusal.contains("\"name\":\"creds\""),
        "names the component: {refusal}"
    );
    assert!(refusal.contains("static keys"), "names the mode: {refusal}");
    assert!(
        refusal.contains("SignatureDoesNotMatch"),
        "names the AWS error: {refusal}"
    );
    assert!(!log.contains(wrong), "the secret key appears in the log");
    assert!(
        !adapter.metrics().await.contains(wrong),
        "the secret key appears in the metrics"
    );
}
