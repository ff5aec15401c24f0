//! The S3 target end to end: objects written from binary and structured events of the Python
//! SDK, read back with the AWS SDK.

use serde_json::{Value, json};

use crate::common::*;
use crate::shared::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_target_writes_objects_from_the_python_sdk() {
    let aws = Aws::new().await;
    let bucket = unique("s3t");
    create_bucket(&aws, &bucket).await;
    let manifest = manifests(&[
        s3_target("archive", &bucket, ""),
        s3_target("raw", &bucket, "discardCloudEventContext: true"),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let base = format!("http://{}", adapter.http_addr);
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let run = unique("s");

    // 1. A whole event (binary mode, subject with characters the binding percent-encodes).
    let key = "reports/2026/q1 été 100%.json";
    let sent = py_send(
        &format!("{base}/archive"),
        "binary",
        &[
            "--type",
            "com.example.report",
            "--source",
            "/reports",
            "--id",
            &format!("{run}-1"),
            "--subject",
            key,
            "--data",
            r#"{"total": 1}"#,
            "--extension",
            "tenant=acme",
        ],
    )
    .await;
    let data = assert_result(&sent, S3_RESULT, &bucket_arn);
    assert_eq!(data["bucket"], bucket.as_str());
    assert_eq!(data["key"], key, "the key is the decoded subject");
    assert!(data.get("versionId").is_some(), "{data}");
    let object = get_object(&aws, &bucket, key).await;
    assert_eq!(data["etag"].as_str(), object.etag.as_deref());
    assert_eq!(
        object.content_type.as_deref(),
        Some("application/cloudevents+json")
    );
    let event: Value = serde_json::from_slice(&object.body).expect("a structured event");
    assert_eq!(event["id"], format!("{run}-1"));
    assert_eq!(event["type"], "com.example.report");
    assert_eq!(event["source"], "/reports");
    assert_eq!(event["subject"], key);
    assert_eq!(event["tenant"], "acme");
    assert_eq!(structured_data(&event), &json!({"total": 1}));
    assert_eq!(
        object.metadata.get("ce-id").map(String::as_str),
        Some(format!("{run}-1").as_str()),
        "{:?}",
        object.metadata
    );
    assert_eq!(
        object.metadata.get("ce-type").map(String::as_str),
        Some("com.example.report")
    );
    assert_eq!(
        object.metadata.get("ce-source").map(String::as_str),
        Some("/reports")
    );
    assert_eq!(
        object.metadata.get("ce-specversion").map(String::as_str),
        Some("1.0")
    );
    assert_eq!(
        object.metadata.get("ce-tenant").map(String::as_str),
        Some("acme")
    );
    assert!(
        !object.metadata.contains_key("ce-subject"),
        "the subject is the key, not metadata: {:?}",
        object.metadata
    );

    // 2. Type io.triggermesh.awss3.object.put (structured mode): the object is only data.
    let sent = py_send(
        &format!("{base}/archive"),
        "structured",
        &[
            "--type",
            "io.triggermesh.awss3.object.put",
            "--source",
            "/uploads",
            "--id",
            &format!("{run}-2"),
            "--subject",
            "uploads/data.json",
            "--data",
            r#"{"hello": "world"}"#,
        ],
    )
    .await;
    let data = assert_result(&sent, S3_RESULT, &bucket_arn);
    assert_eq!(data["key"], "uploads/data.json");
    let object = get_object(&aws, &bucket, "uploads/data.json").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&object.body).unwrap(),
        json!({"hello": "world"})
    );
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        object.metadata.get("ce-type").map(String::as_str),
        Some("io.triggermesh.awss3.object.put")
    );
    assert_eq!(
        object.metadata.get("ce-id").map(String::as_str),
        Some(format!("{run}-2").as_str())
    );

    // 3. discardCloudEventContext: only data, whatever the type.
    let sent = py_send(
        &format!("{base}/raw"),
        "binary",
        &[
            "--type",
            "com.example.raw",
            "--source",
            "/raw",
            "--id",
            &format!("{run}-3"),
            "--subject",
            "raw/r.json",
            "--data",
            r#"{"raw": true}"#,
        ],
    )
    .await;
    assert_result(&sent, S3_RESULT, &bucket_arn);
    let object = get_object(&aws, &bucket, "raw/r.json").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&object.body).unwrap(),
        json!({"raw": true})
    );
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        object.metadata.get("ce-source").map(String::as_str),
        Some("/raw")
    );

    // 4. No subject: the same event twice (once per mode) lands on one deterministic key;
    // another event gets another key.
    let no_subject = |id: String| {
        [
            "--type".to_string(),
            "com.example.nosubject".to_string(),
            "--source".to_string(),
            "/nosubject".to_string(),
            "--id".to_string(),
            id,
            "--data".to_string(),
            r#"{"n": 1}"#.to_string(),
        ]
    };
    let mut keys = Vec::new();
    for (mode, id) in [
        ("binary", format!("{run}-4")),
        ("structured", format!("{run}-4")),
        ("binary", format!("{run}-5")),
    ] {
        let args = no_subject(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sent = py_send(&format!("{base}/archive"), mode, &args).await;
        let data = assert_result(&sent, S3_RESULT, &bucket_arn);
        let key = data["key"].as_str().expect("key").to_string();
        assert!(!key.is_empty());
        keys.push(key);
    }
    assert_eq!(keys[0], keys[1], "the same event, the same key");
    assert_ne!(keys[0], keys[2], "another event, another key");
    let listed = list_keys(&aws, &bucket).await;
    assert_eq!(
        listed.len(),
        5,
        "three objects with subjects and two without: {listed:?}"
    );
    assert_eq!(listed.iter().filter(|k| **k == keys[0]).count(), 1);
    let object = get_object(&aws, &bucket, &keys[0]).await;
    let event: Value = serde_json::from_slice(&object.body).unwrap();
    assert_eq!(event["id"], format!("{run}-4"));

    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_events_total",
            "outcome=\"written\""
        ),
        6.0
    );
}
