//! Data fidelity: both targets write an event's data byte for byte as it was sent — JSON data
//! is never re-encoded (key order, duplicate keys, big integers, number spelling, `\u` escapes
//! and whitespace survive) — in binary, structured and batch mode.

use http::StatusCode;
use serde_json::Value;

use crate::common::*;
use crate::shared::*;

/// JSON that a parse-and-serialize round trip would change in six ways.
const AWKWARD: &str = "{ \"z\":1,\"a\":12345678901234567890123, \"m\":1E2,\"m\":2,\"s\":\"caf\\u00e9\\n\",\"l\":[ 1 ,2] }";

/// The body and headers posting one event with id `id`, subject `subject` and [`AWKWARD`]
/// data in `mode`.
fn request_for(mode: &str, id: &str, subject: &str) -> (Vec<(String, String)>, String) {
    let attributes = format!(
        "\"specversion\":\"1.0\",\"id\":\"{id}\",\"source\":\"/fidelity\",\"type\":\"com.example.fidelity\",\"subject\":\"{subject}\",\"datacontenttype\":\"application/json\""
    );
    let header = |name: &str, value: &str| (name.to_string(), value.to_string());
    match mode {
        "binary" => (
            vec![
                header("ce-specversion", "1.0"),
                header("ce-id", id),
                header("ce-source", "/fidelity"),
                header("ce-type", "com.example.fidelity"),
                header("ce-subject", subject),
                header("content-type", "application/json"),
            ],
            AWKWARD.to_string(),
        ),
        "structured" => (
            vec![header("content-type", "application/cloudevents+json")],
            format!("{{{attributes},\"data\": {AWKWARD} }}"),
        ),
        _ => (
            vec![header("content-type", "application/cloudevents-batch+json")],
            format!("[ {{{attributes},\"data\":{AWKWARD}}} ]"),
        ),
    }
}

/// A whole structured event as stored: valid JSON, this id, and `data` spliced in unchanged.
fn assert_whole_event(stored: &str, id: &str, what: &str) {
    let event: Value =
        serde_json::from_str(stored).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stored}"));
    assert_eq!(event["id"], id, "{what}: {stored}");
    assert!(
        stored.contains(&format!("\"data\":{AWKWARD}")),
        "{what}: the data was changed: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_data_is_written_byte_for_byte_in_every_mode_by_both_targets() {
    let aws = Aws::new().await;
    let (whole_queue, data_queue, bucket) = (unique("fid-w"), unique("fid-d"), unique("fid"));
    let (whole_url, _) = aws.create_queue(&whole_queue).await;
    let (data_url, _) = aws.create_queue(&data_queue).await;
    create_bucket(&aws, &bucket).await;
    let manifest = manifests(&[
        sqs_target("sqs-whole", &whole_queue, ""),
        sqs_target("sqs-data", &data_queue, "discardCloudEventContext: true"),
        s3_target("s3-whole", &bucket, ""),
        s3_target("s3-data", &bucket, "discardCloudEventContext: true"),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let client = http_client();
    let run = unique("f");
    let modes = ["binary", "structured", "batch"];

    for mode in modes {
        for target in ["sqs-whole", "sqs-data", "s3-whole", "s3-data"] {
            let id = format!("{run}-{mode}-{target}");
            let (headers, body) = request_for(mode, &id, &format!("{target}/{mode}"));
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let reply = post(
                &client,
                adapter.http_addr,
                &format!("/{target}"),
                &headers,
                body,
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{mode} to {target}: {}",
                reply.text()
            );
        }
    }

    for message in receive(&aws, &whole_url, modes.len(), LONG).await {
        let body = message.body.as_deref().unwrap();
        let id = body_json(&message)["id"].as_str().unwrap().to_string();
        assert_whole_event(body, &id, "SQS, whole event");
    }
    let data_messages = receive(&aws, &data_url, modes.len(), LONG).await;
    let mut ids: Vec<String> = data_messages
        .iter()
        .map(|m| string_attribute(m, "ce-id").expect("a ce-id attribute"))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["batch", "binary", "structured"].map(|m| format!("{run}-{m}-sqs-data"))
    );
    for message in &data_messages {
        assert_eq!(message.body.as_deref(), Some(AWKWARD), "SQS, data only");
    }

    for mode in modes {
        let whole = get_object(&aws, &bucket, &format!("s3-whole/{mode}")).await;
        let whole = String::from_utf8(whole.body.to_vec()).unwrap();
        assert_whole_event(
            &whole,
            &format!("{run}-{mode}-s3-whole"),
            &format!("S3 {mode}"),
        );
        let data = get_object(&aws, &bucket, &format!("s3-data/{mode}")).await;
        assert_eq!(
            std::str::from_utf8(&data.body).unwrap(),
            AWKWARD,
            "S3, data only, {mode}"
        );
        assert_eq!(data.content_type.as_deref(), Some("application/json"));
    }
}
