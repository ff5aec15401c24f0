//! `/metrics` after a known workload, read with the official Prometheus text parser (Python's
//! prometheus_client): the documented names, types, label sets and counts.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The families of `text`, parsed by prometheus_client.
fn parse(text: &str) -> Vec<Value> {
    let python = std::env::var("MOTO_PYTHON").expect("MOTO_PYTHON: run through ./scripts/test");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/parse_metrics.py"
    );
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no metric family {name}"))
}

/// The sum of the samples named `sample` whose labels include every pair of `labels`.
fn value(families: &[Value], family_name: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
    family(families, family_name)["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == sample)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

fn label_names(families: &[Value], family_name: &str) -> BTreeSet<String> {
    family(families, family_name)["samples"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["labels"].as_object().unwrap().keys().cloned())
        .filter(|k| k != "le")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_known_workload() {
    let aws = Aws::new().await;
    let bucket = unique("metrics");
    let (queue_url, queue_arn) = aws.create_queue(&bucket).await;
    aws.create_bucket_notifying(&bucket, &queue_arn, &["s3:ObjectCreated:*"])
        .await;
    let (_, target_queue_arn) = aws.create_queue(&unique("metrics-target")).await;
    // The sink refuses the first two attempts (K = 2), then accepts.
    let sink = TestSink::start(refusing_first(2)).await;
    let manifest = format!(
        "{}---\napiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: {{ name: dst }}\nspec: {{ arn: \"{target_queue_arn}\" }}\n",
        source_manifest(
            "src",
            &bucket,
            &queue_arn,
            &sink.uri(),
            "delivery: { retry: 5, backoffDelay: PT0.05S }\nreceive: { waitTimeSeconds: 1 }",
        )
    );
    let adapter = Adapter::start(&manifest, &[]).await;

    // N = 3 objects.
    for key in ["a.txt", "b.txt", "c.txt"] {
        aws.put_object(&bucket, key, b"x").await;
    }
    sink.wait_accepted(3, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    // M = 4 target requests.
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for i in 0..4 {
        let request = http::Request::post(format!("http://{}/dst", adapter.http_addr))
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("m-{i}"))
            .header("ce-source", "tests")
            .header("ce-type", "t")
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(
            client.request(request).await.unwrap().status(),
            StatusCode::OK
        );
    }
    // The deletes are counted once their batch call returned.
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_deleted_total",
            "",
            4.0,
            WAIT,
        )
        .await;

    let families = parse(&adapter.metrics().await);
    let src = [("component", "awss3source"), ("name", "src")];
    // 3 objects and the s3:TestEvent sent when the notification was configured.
    let counters = [
        ("aws_event_adapter_sqs_messages_received", 4.0),
        ("aws_event_adapter_sqs_messages_deleted", 4.0),
        ("aws_event_adapter_sink_retries", 2.0),
        ("aws_event_adapter_source_test_events", 1.0),
    ];
    for (name, expected) in counters {
        assert_eq!(family(&families, name)["type"], "counter", "{name}");
        assert_eq!(
            value(&families, name, &format!("{name}_total"), &src),
            expected,
            "{name}"
        );
    }
    let sink_events = "aws_event_adapter_sink_events";
    assert_eq!(
        value(
            &families,
            sink_events,
            "aws_event_adapter_sink_events_total",
            &[("outcome", "delivered"), ("name", "src")]
        ),
        3.0
    );
    assert_eq!(
        label_names(&families, sink_events),
        ["component", "name", "outcome"].map(String::from).into()
    );
    for histogram in [
        "aws_event_adapter_sink_delivery_seconds",
        "aws_event_adapter_source_lag_seconds",
    ] {
        assert_eq!(
            family(&families, histogram)["type"],
            "histogram",
            "{histogram}"
        );
    }
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_sink_delivery_seconds",
            "aws_event_adapter_sink_delivery_seconds_count",
            &src
        ),
        3.0
    );
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_source_lag_seconds",
            "aws_event_adapter_source_lag_seconds_count",
            &src
        ),
        4.0
    );
    assert_eq!(
        family(&families, "aws_event_adapter_source_messages_in_flight")["type"],
        "gauge"
    );
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_source_messages_in_flight",
            "aws_event_adapter_source_messages_in_flight",
            &src
        ),
        0.0
    );

    // The target: requests by status class and mode, events written, batched sends.
    let dst = [("component", "awssqstarget"), ("name", "dst")];
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_target_requests",
            "aws_event_adapter_target_requests_total",
            &[dst[0], dst[1], ("status_class", "2xx"), ("mode", "binary")]
        ),
        4.0
    );
    assert_eq!(
        label_names(&families, "aws_event_adapter_target_requests"),
        ["component", "mode", "name", "status_class"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_target_events",
            "aws_event_adapter_target_events_total",
            &[dst[0], dst[1], ("outcome", "written")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_sqs_send_entries",
            "aws_event_adapter_sqs_send_entries_total",
            &dst
        ),
        4.0
    );
    assert_eq!(
        family(&families, "aws_event_adapter_target_request_seconds")["type"],
        "histogram"
    );

    // The batchers: the concurrency limit they adapt, and their calls in flight (none now).
    for (who, operation) in [(src, "DeleteMessageBatch"), (dst, "SendMessageBatch")] {
        let labels = [who[0], who[1], ("operation", operation)];
        for (name, kind) in [
            ("aws_event_adapter_batch_concurrency_limit", "gauge"),
            ("aws_event_adapter_batch_calls_in_flight", "gauge"),
        ] {
            assert_eq!(family(&families, name)["type"], kind, "{name}");
            assert_eq!(
                label_names(&families, name),
                ["component", "name", "operation"].map(String::from).into()
            );
        }
        let limit = "aws_event_adapter_batch_concurrency_limit";
        assert!(
            value(&families, limit, limit, &labels) >= 1.0,
            "{operation}"
        );
        let calls = "aws_event_adapter_batch_calls_in_flight";
        assert_eq!(value(&families, calls, calls, &labels), 0.0, "{operation}");
    }

    // AWS calls by operation and outcome, and the credentials.
    assert!(
        value(
            &families,
            "aws_event_adapter_aws_calls",
            "aws_event_adapter_aws_calls_total",
            &[
                src[0],
                src[1],
                ("operation", "ReceiveMessage"),
                ("outcome", "success")
            ]
        ) >= 1.0
    );
    assert!(
        value(
            &families,
            "aws_event_adapter_aws_calls",
            "aws_event_adapter_aws_calls_total",
            &[
                dst[0],
                dst[1],
                ("operation", "SendMessageBatch"),
                ("outcome", "success")
            ]
        ) >= 1.0
    );
    assert_eq!(
        label_names(&families, "aws_event_adapter_aws_calls"),
        ["component", "name", "operation", "outcome", "service"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        value(
            &families,
            "aws_event_adapter_credentials_refreshes",
            "aws_event_adapter_credentials_refreshes_total",
            &src
        ),
        1.0
    );

    // Every name follows the conventions: the prefix, and counters end in _total.
    for f in &families {
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("aws_event_adapter_"), "{name}");
        if f["type"] == "histogram" {
            assert!(name.ends_with("_seconds"), "{name}");
        }
    }
}

/// Every metric a panel of the Grafana dashboard (`config/grafana/`) queries is served by
/// `/metrics` after a workload of every component: no panel may stay empty for want of a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_queries_only_metrics_the_adapter_serves() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/grafana/aws-event-adapter.json"
        ))
        .unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            let mut rest = expr;
            while let Some(start) = rest.find("aws_event_adapter_") {
                let tail = &rest[start..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    assert!(names.len() >= 15, "{names:?}");

    // The workload: an S3 source whose sink refuses once, an SQS and an S3 target that write,
    // and an SQS target whose queue does not exist (AWS errors).
    let aws = Aws::new().await;
    let bucket = unique("dash");
    let (queue_url, queue_arn) = aws.create_queue(&bucket).await;
    aws.create_bucket_notifying(&bucket, &queue_arn, &["s3:ObjectCreated:*"])
        .await;
    let (_, target_queue) = aws.create_queue(&unique("dash-target")).await;
    aws.s3
        .create_bucket()
        .bucket(format!("{bucket}-out"))
        .send()
        .await
        .unwrap();
    let sink = TestSink::start(refusing_first(1)).await;
    let target = |kind: &str, name: &str, arn: &str| {
        format!(
            "---\napiVersion: targets.triggermesh.io/v1alpha1\nkind: {kind}\nmetadata: {{ name: {name} }}\nspec: {{ arn: \"{arn}\" }}\n"
        )
    };
    let manifest = format!(
        "{}{}{}{}",
        source_manifest(
            "src",
            &bucket,
            &queue_arn,
            &sink.uri(),
            "delivery: { retry: 5, backoffDelay: PT0.05S }\nreceive: { waitTimeSeconds: 1 }",
        ),
        target("AWSSQSTarget", "to-sqs", &target_queue),
        target(
            "AWSS3Target",
            "to-s3",
            &format!("arn:aws:s3:::{bucket}-out")
        ),
        target(
            "AWSSQSTarget",
            "to-nowhere",
            &format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", unique("missing")),
        ),
    );
    let adapter = Adapter::spawn(&manifest, &[]);
    aws.put_object(&bucket, "a.txt", b"x").await;
    sink.wait_accepted(1, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for path in ["/to-sqs", "/to-s3"] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let request = http::Request::post(format!("http://{}{path}", adapter.http_addr))
                .header("ce-specversion", "1.0")
                .header("ce-id", "dash-1")
                .header("ce-source", "tests")
                .header("ce-type", "t")
                .header("ce-subject", "dash/1.json")
                .header("content-type", "application/json")
                .body(Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap();
            let status = client.request(request).await.unwrap().status();
            if status == StatusCode::OK {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path}: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // A malformed notification: released to the queue (no dead-letter sink).
    aws.send(
        &queue_url,
        r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
    )
    .await;
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_released_total",
            "reason=\"malformed\"",
            1.0,
            WAIT,
        )
        .await;
    adapter
        .wait_metric(
            "aws_event_adapter_aws_errors_total",
            "name=\"to-nowhere\"",
            1.0,
            WAIT,
        )
        .await;
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_deleted_total",
            "",
            1.0,
            WAIT,
        )
        .await;

    let text = adapter.metrics().await;
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !text.contains(&format!("\n{name}{{")) && !text.contains(&format!("\n{name} "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "queried by the dashboard, not served: {missing:?}"
    );
}
