//! The S3 source under the seed's minimal IAM policy (`sqs:GetQueueUrl`, `sqs:ReceiveMessage`,
//! `sqs:DeleteMessage`), and without `sqs:DeleteMessage`, with moto enforcing SigV4 and IAM on
//! a server of this test's own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_runs_with_the_minimal_policy_and_switches_off_what_is_denied() {
    let moto = OwnMoto::start().await;
    let admin = moto.sdk_config("testing", "testing").await;
    let iam = aws_sdk_iam::Client::new(&admin);
    let (minimal_key, minimal_secret) = iam_user(
        &iam,
        "adapter",
        &["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
        "arn:aws:sqs:*:*:*",
    )
    .await;
    let (operator_key, operator_secret) = iam_user(&iam, "operator", &["sqs:*"], "*").await;
    let operator =
        aws_sdk_sqs::Client::new(&moto.sdk_config(&operator_key, &operator_secret).await);
    let queue = unique("minimal");
    let queue_url = operator
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    moto.enforce_auth(true).await;
    // Enforcement is really on: unknown keys are refused.
    let stranger = aws_sdk_sqs::Client::new(&moto.sdk_config("AKIAUNKNOWN", "nope").await);
    assert!(
        stranger
            .get_queue_url()
            .queue_name(&queue)
            .send()
            .await
            .is_err()
    );

    // A sink slower than the visibility timeout makes the heartbeat try ChangeMessageVisibility,
    // which this policy does not allow.
    let sink = TestSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_secs(3)))).await;
    let manifest = format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: minimal }}
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: "arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}" }} }}
  auth:
    credentials:
      accessKeyID: {{ value: {minimal_key} }}
      secretAccessKey: {{ value: {minimal_secret} }}
  sink: {{ uri: "{}" }}
  receive: {{ waitTimeSeconds: 1, visibilityTimeout: 2s }}
"#,
        sink.uri()
    );
    let adapter = Adapter::spawn_with_env(&manifest, &[], &[("AWS_ENDPOINT_URL", &moto.endpoint)]);
    adapter.wait_ready(Duration::from_secs(30)).await;
    operator
        .send_message()
        .queue_url(&queue_url)
        .message_body(sample("s3-records-put.json"))
        .send()
        .await
        .unwrap();
    sink.wait_accepted(1, Duration::from_secs(30)).await;
    adapter
        .wait_metric(
            "aws_event_adapter_source_features_disabled_total",
            "feature=\"visibility_changes\"",
            1.0,
            Duration::from_secs(30),
        )
        .await;
    // Deletes work with sqs:DeleteMessage alone (DeleteMessageBatch is authorised as it).
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_deleted_total",
            "",
            1.0,
            Duration::from_secs(30),
        )
        .await;
    wait_queue_empty(&operator, &queue_url, Duration::from_secs(30), || {
        adapter.log()
    })
    .await;
    let log = adapter.log();
    assert_eq!(
        log.matches("running without this feature").count(),
        1,
        "one warning for the denied feature; log:\n{log}"
    );
    assert!(
        log.contains("sqs:ChangeMessageVisibility"),
        "the warning names the permission"
    );
    // Still running and ready.
    assert!(matches!(
        http_get(adapter.http_addr, "/readyz").await,
        Ok((StatusCode::OK, _))
    ));
}

/// Without `sqs:DeleteMessage` every delivered message would come back and be delivered again,
/// for ever. The source turns unready, stops receiving and retries the delete; once the policy
/// allows it, the delete goes through and receiving resumes. Each event reaches the sink once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_delete_stops_receiving_and_unreadies_the_source_until_it_is_allowed() {
    let moto = OwnMoto::start().await;
    let admin = moto.sdk_config("testing", "testing").await;
    let iam = aws_sdk_iam::Client::new(&admin);
    let without_delete = [
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
    ];
    let (key, secret) = iam_user(&iam, "nodelete", &without_delete, "arn:aws:sqs:*:*:*").await;
    let (operator_key, operator_secret) = iam_user(&iam, "operator", &["sqs:*"], "*").await;
    let operator =
        aws_sdk_sqs::Client::new(&moto.sdk_config(&operator_key, &operator_secret).await);
    let queue = unique("nodelete");
    let queue_url = operator
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    moto.enforce_auth(true).await;

    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: nodelete }}
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: "arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}" }} }}
  auth:
    credentials:
      accessKeyID: {{ value: {key} }}
      secretAccessKey: {{ value: {secret} }}
  sink: {{ uri: "{}" }}
  receive: {{ waitTimeSeconds: 1, visibilityTimeout: 2s }}
"#,
        sink.uri()
    );
    let adapter = Adapter::spawn_with_env(&manifest, &[], &[("AWS_ENDPOINT_URL", &moto.endpoint)]);
    adapter.wait_ready(Duration::from_secs(30)).await;
    let send = |body: String| {
        operator
            .send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
    };
    send(sample("s3-records-put.json")).await.unwrap();
    sink.wait_accepted(1, Duration::from_secs(30)).await;
    adapter
        .wait_metric(
            "aws_event_adapter_aws_errors_total",
            "operation=\"DeleteMessageBatch\"",
            1.0,
            Duration::from_secs(30),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready with deletes denied: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Four visibility timeouts: the message stays in flight, nothing is received again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(sink.attempts(), 1, "the event was delivered again");
    let (status, _) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "unready while denied"
    );
    assert!(
        adapter
            .metric(
                "aws_event_adapter_aws_errors_total",
                "operation=\"DeleteMessageBatch\""
            )
            .await
            >= 2.0,
        "the delete is retried, each denial counted"
    );
    let log = adapter.log();
    assert_eq!(
        log.matches("SQS denies DeleteMessage").count(),
        1,
        "one error line for the denial; log:\n{log}"
    );
    assert!(
        log.contains("sqs:DeleteMessage"),
        "the line names the permission"
    );

    // The operator fixes the policy: the pending delete goes through and receiving resumes.
    moto.enforce_auth(false).await;
    let mut fixed = without_delete.to_vec();
    fixed.push("sqs:DeleteMessage");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": fixed, "Resource": "arn:aws:sqs:*:*:*" }]
    });
    iam.put_user_policy()
        .user_name("nodelete")
        .policy_name("adapter")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    moto.enforce_auth(true).await;
    wait_queue_empty(&operator, &queue_url, Duration::from_secs(60), || {
        adapter.log()
    })
    .await;
    adapter.wait_ready(Duration::from_secs(30)).await;
    assert!(adapter.log().contains("receiving resumes"));
    send(sample("s3-records-put.json")).await.unwrap();
    sink.wait_accepted(2, Duration::from_secs(30)).await;
    wait_queue_empty(&operator, &queue_url, Duration::from_secs(30), || {
        adapter.log()
    })
    .await;
    assert_eq!(sink.attempts(), 2, "each event once");
}
