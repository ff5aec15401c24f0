//! Operating the adapter: TriggerMesh's environment-variable mode for each component, and
//! health and readiness through a component's life, and the order components start in.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cloudevents::AttributesReader;
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const WAIT: Duration = Duration::from_secs(30);

/// POSTs a binary-mode CloudEvent; returns the status and body.
async fn post_event(
    adapter: &Adapter,
    path: &str,
    id: &str,
    subject: Option<&str>,
    data: &str,
) -> (StatusCode, String) {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::post(format!("http://{}{path}", adapter.http_addr))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "https://tests.example.com")
        .header("ce-type", "com.example.test")
        .header("content-type", "application/json");
    if let Some(subject) = subject {
        request = request.header("ce-subject", subject);
    }
    let response = client
        .request(
            request
                .body(Full::new(bytes::Bytes::from(data.to_string())))
                .unwrap(),
        )
        .await
        .expect("POST");
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggermesh_variables_run_the_s3_source() {
    let aws = Aws::new().await;
    let bucket = unique("tm-src");
    let (queue_url, queue_arn) = aws.create_queue(&bucket).await;
    aws.create_bucket_notifying(&bucket, &queue_arn, &["s3:ObjectCreated:*"])
        .await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let sink_uri = sink.uri();
    // Only TriggerMesh's variables (the keys and endpoint come from the test environment).
    let env = [
        ("K_COMPONENT", "awssqssource"),
        ("SQS_MESSAGE_PROCESSOR", "s3"),
        ("ARN", queue_arn.as_str()),
        ("K_SINK", sink_uri.as_str()),
        ("NAME", "uploads"),
        ("NAMESPACE", "team"),
        ("K_SINK_TIMEOUT", "10"),
        ("SQS_VISIBILITY_TIMEOUT", "30s"),
    ];
    let adapter = Adapter::spawn_with_env("", &[], &env);
    adapter.wait_ready(WAIT).await;
    // TriggerMesh's probe: 204 once ready.
    let (status, _) = http_get(adapter.http_addr, "/health").await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    aws.put_object(&bucket, "from env/a+b.txt", b"x").await;
    // TriggerMesh's s3 processor forwards the notification setup's test event too.
    let accepted = sink.wait_accepted(2, WAIT).await;
    let types: Vec<&str> = accepted.iter().map(|(_, e)| e.ty()).collect();
    assert!(types.contains(&"com.amazon.s3.testevent"), "{types:?}");
    let put = accepted
        .iter()
        .find(|(_, e)| e.ty() == "com.amazon.s3.objectcreated")
        .expect("the put");
    assert_eq!(put.1.subject(), Some("from env/a+b.txt"));
    aws.wait_queue_empty(&queue_url, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggermesh_variables_run_the_sqs_target() {
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = aws.create_queue(&unique("tm-sqs")).await;
    let env = [
        ("K_COMPONENT", "awssqstarget"),
        ("ARN", queue_arn.as_str()),
        ("AWS_DISCARD_CE_CONTEXT", "true"),
    ];
    let adapter = Adapter::spawn_with_env("", &[], &env);
    adapter.wait_ready(WAIT).await;
    // TriggerMesh's targets receive at `/`.
    let (status, body) = post_event(&adapter, "/", "e-1", None, r#"{"order":7}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = aws
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .message_attribute_names("All")
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let message = out
        .messages
        .unwrap_or_default()
        .into_iter()
        .next()
        .expect("a message");
    assert_eq!(message.body.as_deref(), Some(r#"{"order":7}"#));
    let attributes = message.message_attributes.unwrap_or_default();
    assert_eq!(attributes["ce-id"].string_value(), Some("e-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggermesh_variables_run_the_s3_target() {
    let aws = Aws::new().await;
    let bucket = unique("tm-s3");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let arn = format!("arn:aws:s3:::{bucket}");
    let env = [("K_COMPONENT", "awss3target"), ("ARN", arn.as_str())];
    let adapter = Adapter::spawn_with_env("", &[], &env);
    adapter.wait_ready(WAIT).await;
    let (status, body) = post_event(&adapter, "/", "e-2", Some("reports/q%201.json"), "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let object = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("reports/q 1.json")
        .send()
        .await
        .expect("the object under the decoded subject");
    assert_eq!(object.content_type(), Some("application/cloudevents+json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_queue_and_the_drain() {
    let aws = Aws::new().await;
    let name = unique("ready");
    let queue_arn = format!("arn:aws:sqs:{REGION}:{}:{name}", account());
    let sink = TestSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_secs(4)))).await;
    let manifest = source_manifest(
        "ready",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        "receive: { waitTimeSeconds: 1 }",
    );
    // The queue does not exist yet: alive, not ready.
    let mut adapter = Adapter::spawn_with_env(&manifest, &["--shutdown-grace", "20s"], &[]);
    wait_for_status(&adapter, "/healthz", StatusCode::OK).await;
    let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"ready\":false"), "{body}");
    // Once the first AWS call succeeds, ready.
    let (queue_url, _) = aws.create_queue(&name).await;
    adapter.wait_ready(WAIT).await;
    // While draining (an event is still at the slow sink): not ready, still alive.
    aws.send(&queue_url, &put_sample_with_key("drain.bin"))
        .await;
    sink.wait_attempts(1, WAIT).await;
    adapter.signal("TERM");
    wait_for_status(&adapter, "/readyz", StatusCode::SERVICE_UNAVAILABLE).await;
    let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert!(body.contains("\"draining\":true"), "{status} {body}");
    assert_eq!(
        http_get(adapter.http_addr, "/healthz").await.unwrap().0,
        StatusCode::OK
    );
    assert!(adapter.wait_exit(WAIT).await.success());
    assert_eq!(
        sink.accepted().len(),
        1,
        "the in-flight event completed during the drain"
    );
}

async fn wait_for_status(adapter: &Adapter, path: &str, expected: StatusCode) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((status, _)) = http_get(adapter.http_addr, path).await
            && status == expected
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {expected}; log:\n{}",
            adapter.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_can_require_a_bearer_token() {
    let aws = Aws::new().await;
    let (_, queue_arn) = aws.create_queue(&unique("bearer")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken-for-tests\n").unwrap();
    let manifest = format!(
        "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: {{ name: guarded }}\nspec: {{ arn: \"{queue_arn}\" }}\n"
    );
    let adapter = Adapter::start(
        &manifest,
        &["--bearer-token-file", token_file.to_str().unwrap()],
    )
    .await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let post = |token: Option<&str>| {
        let mut request = http::Request::post(format!("http://{}/guarded", adapter.http_addr))
            .header("ce-specversion", "1.0")
            .header("ce-id", "b-1")
            .header("ce-source", "tests")
            .header("ce-type", "t")
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        client.request(
            request
                .body(Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap(),
        )
    };
    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post(Some("wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(Some("t0ken-for-tests")).await.unwrap().status(),
        StatusCode::OK
    );
    // Health stays open to the kubelet.
    assert_eq!(
        http_get(adapter.http_addr, "/healthz").await.unwrap().0,
        StatusCode::OK
    );
    assert!(
        !adapter.log().contains("t0ken-for-tests"),
        "the token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_that_never_finish_their_headers_do_not_stop_others() {
    use tokio::io::AsyncWriteExt;
    let aws = Aws::new().await;
    let (_, queue_arn) = aws.create_queue(&unique("slowloris")).await;
    let manifest = format!(
        "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: {{ name: q }}\nspec: {{ arn: \"{queue_arn}\" }}\n"
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    // 1,000 connections that start a request and never finish its headers.
    let mut slow = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut stream = tokio::net::TcpStream::connect(adapter.http_addr)
            .await
            .unwrap();
        stream
            .write_all(b"POST /q HTTP/1.1\r\nHost: adapter\r\nce-specversion: 1.0\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A normal client is still served, promptly.
    let started = tokio::time::Instant::now();
    let (status, body) = post_event(&adapter, "/q", "normal-1", None, r#"{"ok":true}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served in {:?}",
        started.elapsed()
    );
    assert_eq!(
        http_get(adapter.http_addr, "/healthz").await.unwrap().0,
        StatusCode::OK
    );
    drop(slow);
}

/// Every JSON log line of a component names it with the same two fields, whatever the kind and
/// whichever of its tasks wrote the line: `component` (the kind) and `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_name_every_component_with_the_same_fields() {
    let aws = Aws::new().await;
    let (source_queue_url, source_queue_arn) = aws.create_queue(&unique("logs-src")).await;
    let (_, target_queue_arn) = aws.create_queue(&unique("logs-dst")).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let mut manifest = source_manifest(
        "logs-src",
        "media-uploads",
        &source_queue_arn,
        &sink.uri(),
        "receive: { waitTimeSeconds: 1 }",
    );
    manifest.push_str(&format!(
        "---\napiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\n\
         metadata: {{ name: logs-dst }}\nspec: {{ arn: \"{target_queue_arn}\" }}\n"
    ));
    let adapter = Adapter::start(&manifest, &[]).await;
    adapter.wait_ready(WAIT).await;
    // A line from a task the source spawns per message (the poller's child), not only from
    // the component's own task.
    aws.send(
        &source_queue_url,
        &sample("malformed-record-missing-bucket.json"),
    )
    .await;
    let malformed = "aws_event_adapter_source_malformed_total";
    adapter
        .wait_metric(malformed, r#"name="logs-src""#, 1.0, WAIT)
        .await;

    let log = adapter.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let line_of = |message: &str| {
        lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in the log:\n{log}"))
    };
    for (message, kind, name) in [
        ("receiving from the queue", "awss3source", "logs-src"),
        ("malformed S3 notification", "awss3source", "logs-src"),
        ("AWS credentials loaded", "awss3source", "logs-src"),
        ("target ready", "awssqstarget", "logs-dst"),
        ("AWS credentials loaded", "awssqstarget", "logs-dst"),
    ] {
        let line = lines
            .iter()
            .find(|line| line["message"] == message && line["component"] == kind)
            .unwrap_or_else(|| panic!("no {message:?} line of {kind} in the log:\n{log}"));
        assert_eq!(line["name"], name, "{line}");
    }
    assert!(line_of("listening").get("component").is_none());
    for line in &lines {
        let object = line.as_object().unwrap();
        for banned in ["target_name", "source", "span", "spans"] {
            assert!(!object.contains_key(banned), "{banned:?} in {line}");
        }
        if object.contains_key("component") {
            assert!(
                object["name"].is_string(),
                "a component without its name: {line}"
            );
        }
    }
}

/// A target that cannot start (web identity without the webhook's variables) ends the run as
/// a configuration error before any source has received a message: nothing is left hidden in
/// a queue by a source aborted mid-delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_cannot_start_ends_the_run_before_any_source_receives() {
    let aws = Aws::new().await;
    let queue = unique("start-order");
    let (url, arn) = aws.create_queue(&queue).await;
    aws.send(&url, &sample("s3-records-put.json")).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = format!(
        "{}---
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata: {{ name: irsa }}
spec:
  arn: {arn}
  auth: {{ iam: {{ roleArn: \"arn:aws:iam::{ACCOUNT}:role/target\" }} }}
",
        source_manifest("early", "media-uploads", &arn, &sink.uri(), "")
    );
    let mut adapter = Adapter::spawn(&manifest, &[]);
    let status = adapter.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(78), "log:\n{}", adapter.log());
    let log = adapter.log();
    assert!(log.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "log:\n{log}");
    assert!(
        !log.contains("receiving from the queue"),
        "a source started; log:\n{log}"
    );
    assert_eq!(sink.attempts(), 0);
    assert_eq!(
        aws.queue_depth(&url).await,
        (1, 0),
        "the message is untouched"
    );
}
