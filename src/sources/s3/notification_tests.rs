//! Tests of `notification.rs`, against the reference samples and hostile inputs.

use super::*;
use chrono::{TimeDelta, TimeZone};

const PUT: &str = include_str!("../../../tests/fixtures/samples/s3-records-put.json");
const MULTI: &str = include_str!("../../../tests/fixtures/samples/s3-records-multi.json");
const TEST_EVENT: &str = include_str!("../../../tests/fixtures/samples/s3-test-event.json");
const SNS: &str = include_str!("../../../tests/fixtures/samples/sns-wrapped-s3-records.json");
const EVENTBRIDGE: &str =
    include_str!("../../../tests/fixtures/samples/eventbridge-object-created.json");
const NOT_JSON: &str = include_str!("../../../tests/fixtures/samples/malformed-not-json.txt");
const MISSING_BUCKET: &str =
    include_str!("../../../tests/fixtures/samples/malformed-record-missing-bucket.json");
const NOT_ARRAY: &str =
    include_str!("../../../tests/fixtures/samples/malformed-records-not-array.json");

fn events(body: &str) -> Vec<S3Event> {
    match parse_body(body) {
        Body::Records(records) => records
            .into_iter()
            .map(|r| match r {
                Record::Event(e) => e,
                Record::Invalid(m) => panic!("unexpected invalid record: {m}"),
            })
            .collect(),
        other => panic!("expected records, got {other:?}"),
    }
}

fn one_event(body: &str) -> S3Event {
    let mut all = events(body);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn records(body: &str) -> Vec<Record> {
    match parse_body(body) {
        Body::Records(records) => records,
        other => panic!("expected records, got {other:?}"),
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + TimeDelta::milliseconds(ms)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// `data` is a verbatim slice of `text` and is exactly the JSON value `expected`.
fn assert_raw_slice(data: &Bytes, text: &str, expected: &Value) {
    let data = std::str::from_utf8(data).unwrap();
    assert!(data.starts_with('{') && data.ends_with('}'), "{data}");
    assert!(
        text.contains(data),
        "data is not a verbatim slice of the body"
    );
    assert_eq!(&json(data.as_bytes()), expected);
}

#[path = "notification_eventbridge_tests.rs"]
mod eventbridge;

#[test]
fn plain_put_sample() {
    let e = one_event(PUT);
    assert_eq!(e.event_name, "ObjectCreated:Put");
    assert_eq!(e.ce_type, "com.amazon.s3.objectcreated");
    assert_eq!(e.source, "arn:aws:s3:::media-uploads");
    assert_eq!(e.subject, "photos/2026/red flower(1) été.jpg");
    assert_eq!(e.time, Some(at(2026, 11, 28, 12, 34, 56, 789)));
    assert_eq!(e.id.len(), 32);
    assert!(e.id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_raw_slice(&e.data, PUT, &json(PUT.as_bytes())["Records"][0]);
    // Exactly the record's bytes: from its `{` to its `}`, indentation inside untouched.
    let start = PUT.find("{\n      \"eventVersion\"").unwrap();
    let end = PUT.rfind(']').unwrap();
    assert_eq!(&e.data[..], PUT[start..end].trim_end().as_bytes());
    assert_eq!(one_event(PUT), e, "parsing is deterministic");
}

#[test]
fn multi_sample() {
    let all = events(MULTI);
    assert_eq!(all.len(), 2);
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(a.event_name, "ObjectCreated:CompleteMultipartUpload");
    assert_eq!(a.ce_type, "com.amazon.s3.objectcreated");
    assert_eq!(a.source, "arn:aws:s3:::logs.example.com");
    assert_eq!(a.subject, "2026/11/28/app.log.gz");
    assert_eq!(a.time, Some(at(2026, 11, 28, 12, 0, 0, 0)));
    assert_eq!(b.event_name, "ObjectRemoved:DeleteMarkerCreated");
    assert_eq!(b.ce_type, "com.amazon.s3.objectremoved");
    assert_eq!(b.source, "arn:aws:s3:::logs.example.com");
    assert_eq!(b.subject, "2026/11/27/old report.csv");
    assert_eq!(b.time, Some(at(2026, 11, 28, 12, 0, 1, 0)));
    assert_ne!(a.id, b.id);
    let whole = json(MULTI.as_bytes());
    assert_raw_slice(&a.data, MULTI, &whole["Records"][0]);
    assert_raw_slice(&b.data, MULTI, &whole["Records"][1]);
}

#[test]
fn test_event_sample() {
    let Body::TestEvent(t) = parse_body(TEST_EVENT) else {
        panic!("expected a test event");
    };
    assert_eq!(t.bucket, "media-uploads");
    assert_eq!(t.time, Some(at(2026, 11, 28, 12, 0, 0, 0)));
    assert_eq!(&t.data[..], TEST_EVENT.as_bytes());
    assert_eq!(t.id.len(), 32);
    let no_bucket = r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#;
    let Body::Malformed(m) = parse_body(no_bucket) else {
        panic!("expected malformed");
    };
    assert_eq!(m.label(), "invalid_test_event");
}

#[test]
fn sns_wrapped_sample_matches_plain() {
    let wrapped = one_event(SNS);
    let plain = one_event(PUT);
    assert_eq!(wrapped.id, plain.id, "same notification, same id");
    assert_eq!(wrapped.event_name, plain.event_name);
    assert_eq!(wrapped.ce_type, plain.ce_type);
    assert_eq!(wrapped.source, plain.source);
    assert_eq!(wrapped.subject, plain.subject);
    assert_eq!(wrapped.time, plain.time);
    let message: String = serde_json::from_value(json(SNS.as_bytes())["Message"].clone()).unwrap();
    assert_raw_slice(&wrapped.data, &message, &json(plain.data.as_ref()));
}

#[test]
fn sns_envelope_edge_cases() {
    let sns = |message: &str| {
        serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": message})
            .to_string()
    };
    let Body::TestEvent(t) = parse_body(&sns(TEST_EVENT)) else {
        panic!("SNS-wrapped test event");
    };
    assert_eq!(t.bucket, "media-uploads");
    assert_eq!(one_event(&sns(EVENTBRIDGE)).id, one_event(EVENTBRIDGE).id);
    assert_eq!(parse_body(&sns(NOT_ARRAY)), parse_body(NOT_ARRAY));
    // SNS carrying something else is none of the S3 formats (forwarded as an SQS message).
    for foreign in [sns("not json"), sns("{\"hello\":1}"), sns(&sns(PUT))] {
        assert_eq!(parse_body(&foreign), Body::Unrecognized, "{foreign}");
    }
    for bad in [
        r#"{"Type":"Notification","Message":5}"#.to_owned(),
        r#"{"Type":"Notification","Message":{"Records":[]}}"#.to_owned(),
    ] {
        let Body::Malformed(m) = parse_body(&bad) else {
            panic!("expected malformed for {bad}");
        };
        assert_eq!(m.label(), "invalid_sns_message", "{bad}");
    }
    // Not an SNS notification envelope at all.
    let confirmation = r#"{"Type":"SubscriptionConfirmation","Token":"t"}"#;
    assert_eq!(parse_body(confirmation), Body::Unrecognized);
}

#[test]
fn malformed_samples() {
    assert_eq!(parse_body(NOT_JSON), Body::Unrecognized);
    assert_eq!(
        parse_body(NOT_ARRAY),
        Body::Malformed(Malformed::RecordsNotArray)
    );
    assert_eq!(Malformed::RecordsNotArray.label(), "records_not_array");
    let all = records(MISSING_BUCKET);
    assert_eq!(all.len(), 1);
    let Record::Invalid(m @ Malformed::InvalidRecord { index: 0, .. }) = &all[0] else {
        panic!("expected an invalid record: {all:?}");
    };
    assert_eq!(m.label(), "invalid_record");
    assert!(m.to_string().contains("s3.bucket.name"), "{m}");
}

fn record(version: Option<&str>, region: &str, arn: Option<&str>, key: &str) -> Value {
    let mut bucket = serde_json::json!({"name": "b"});
    if let Some(arn) = arn {
        bucket["arn"] = arn.into();
    }
    let mut rec = serde_json::json!({
        "awsRegion": region, "eventName": "ObjectRemoved:Delete",
        "s3": {"bucket": bucket, "object": {"key": key}}
    });
    if let Some(v) = version {
        rec["eventVersion"] = v.into();
    }
    rec
}

#[test]
fn records_versions_partitions_and_order() {
    let body = serde_json::json!({"Records": [
        record(Some("2.5"), "cn-north-1", None, "a"),
        record(None, "us-gov-west-1", None, "b"),
        record(Some("1.0"), "us-east-1", None, "c"),
        record(Some("3.0"), "us-east-1", None, "d"),
        7,
        record(Some("2.1"), "eu-west-1", Some("bogus"), "e"),
        record(Some("2.2"), "us-west-2", Some("arn:aws:s3:::b"), ""),
    ]})
    .to_string();
    let all = records(&body);
    assert_eq!(all.len(), 7);
    let source = |r: &Record| match r {
        Record::Event(e) => e.source.clone(),
        Record::Invalid(m) => m.label().to_owned(),
    };
    let got: Vec<String> = all.iter().map(source).collect();
    assert_eq!(
        got,
        [
            "arn:aws-cn:s3:::b",
            "arn:aws-us-gov:s3:::b",
            "unsupported_event_version",
            "unsupported_event_version",
            "invalid_record",
            "arn:aws:s3:::b",
            "invalid_record",
        ]
    );
    let Record::Invalid(m) = &all[2] else {
        panic!()
    };
    assert_eq!(
        m,
        &Malformed::UnsupportedEventVersion {
            index: 2,
            version: "1.0".into()
        }
    );
    assert_eq!(records(r#"{"Records":[]}"#), vec![]);
}

#[test]
fn ids_ignore_formatting_but_not_content() {
    let compact = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
    let spaced = "{ \"Records\" : [ { \"s3\" : { \"object\" : { \"key\" : \"k\" }, \"bucket\" : { \"name\" : \"b\" } },\n \"eventName\" : \"ObjectCreated:Put\" } ] }";
    let other = compact.replace("\"k\"", "\"k2\"");
    assert_eq!(one_event(compact).id, one_event(spaced).id);
    assert_ne!(one_event(compact).id, one_event(&other).id);
    assert_ne!(one_event(compact).data, one_event(spaced).data);
}

#[test]
fn decode_key_examples() {
    let cases = [
        (
            "photos/2026/red+flower%281%29+%C3%A9t%C3%A9.jpg",
            "photos/2026/red flower(1) été.jpg",
        ),
        ("a%2Fb+c%2Bd%25", "a/b c+d%"),
        ("%F0%9F%98%80", "😀"),
        ("plain/key.txt", "plain/key.txt"),
        ("", ""),
        ("100%", "100%"),
        ("bad%zzescape%4", "bad%zzescape%4"),
        ("%c3%a9", "é"),
        ("%C3", "%C3"),
        ("ok+%FF+x", "ok+%FF+x"),
    ];
    for (encoded, decoded) in cases {
        assert_eq!(decode_key(encoded), decoded, "{encoded}");
    }
}

fn encode(key: &str, slash_safe: bool) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b'/' if slash_safe => out.push('/'),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[test]
fn decode_key_round_trips_s3_and_moto_encodings() {
    let keys = [
        "a b+c%d",
        "100% sure+",
        "+++",
        "%2B",
        "%",
        "a//b/",
        " leading and trailing ",
        "é/ü/ß/日本語",
        "😀 emoji 🎉",
        "quotes\"'`",
        "tab\tnewline\n",
        "#?&=;:@$,",
        "[brackets]{braces}<>|\\^",
        "~tilde-dash_under.dot",
        "%25%2F%2B literal escapes",
        "nul\u{0}ctl\u{7f}",
        "\u{feff}bom",
    ];
    for key in keys {
        assert_eq!(
            decode_key(&encode(key, true)),
            key,
            "S3 encoding of {key:?}"
        );
        assert_eq!(
            decode_key(&encode(key, false)),
            key,
            "moto encoding of {key:?}"
        );
        let body = serde_json::json!({"Records": [record(Some("2.1"), "us-east-1", None, &encode(key, false))]});
        assert_eq!(one_event(&body.to_string()).subject, key);
    }
}

#[test]
fn wildcard_matching() {
    let p = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: &[(&[&str], &str, bool)] = &[
        (&[], "ObjectCreated:Put", true),
        (&["*"], "ObjectCreated:Put", true),
        (&["s3:*"], "Anything", true),
        (&["s3:ObjectCreated:*"], "ObjectCreated:Put", true),
        (
            &["s3:ObjectCreated:*"],
            "ObjectCreated:CompleteMultipartUpload",
            true,
        ),
        (&["s3:ObjectCreated:*"], "ObjectRemoved:Delete", false),
        (&["s3:ObjectCreated:*"], "s3:ObjectCreated:Copy", true),
        (&["s3:ObjectCreated:Put"], "ObjectCreated:Put", true),
        (&["s3:ObjectCreated:Put"], "ObjectCreated:Post", false),
        (&["s3:ObjectCreated:Put"], "ObjectCreated:PutObject", false),
        (&["ObjectCreated:Put"], "ObjectCreated:Put", true),
        (&["s3:objectcreated:*"], "ObjectCreated:Put", false),
        (
            &["s3:ObjectRemoved:*", "s3:ObjectCreated:*"],
            "ObjectCreated:Put",
            true,
        ),
        (&["s3:*:Put"], "ObjectCreated:Put", true),
        (&["s3:*:Put"], "ObjectCreated:Post", false),
        (
            &["s3:Object*:*Delete*"],
            "ObjectRemoved:DeleteMarkerCreated",
            true,
        ),
        (&["s3:Object*:*Delete*"], "ObjectRestore:Post", false),
        (&["s3:a*a"], "a", false),
        (&["s3:a*a"], "aa", true),
        (&["s3:**"], "", true),
        (&["s3:"], "", true),
        (&["s3:"], "ObjectCreated:Put", false),
        (&["s3:LifecycleTransition"], "LifecycleTransition", true),
    ];
    for (patterns, name, expected) in cases {
        assert_eq!(
            event_type_matches(&p(patterns), name),
            *expected,
            "{patterns:?} vs {name}"
        );
    }
}

#[test]
fn labels_are_bounded_snake_case() {
    let all = [
        Malformed::RecordsNotArray,
        Malformed::InvalidRecord {
            index: 1,
            detail: "x".into(),
        },
        Malformed::UnsupportedEventVersion {
            index: 1,
            version: "1.0".into(),
        },
        Malformed::InvalidSnsMessage { detail: "x".into() },
        Malformed::InvalidEventBridge { detail: "x".into() },
        Malformed::InvalidTestEvent { detail: "x".into() },
    ];
    let labels: std::collections::BTreeSet<&str> = all.iter().map(Malformed::label).collect();
    assert_eq!(labels.len(), all.len());
    for label in labels {
        assert!(
            label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{label}"
        );
    }
    let long = format!(
        r#"{{"Records":[{{"eventVersion":"9.{}"}}]}}"#,
        "9".repeat(10_000)
    );
    let Record::Invalid(m) = &records(&long)[0] else {
        panic!()
    };
    assert!(
        m.to_string().len() < 200,
        "input quoted in errors is bounded"
    );
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let mut inputs: Vec<String> = [
        "", " ", "null", "[]", "{}", "0", "\"Records\"", "true", "{", "}", "{\"Records\"",
        "{\"Records\":null}", "{\"Records\":{}}", "{\"Records\":\"x\"}",
        "{\"Records\":[null,1,\"x\",[],{}]}", "{\"Records\":[{\"eventVersion\":null}]}",
        "{\"Records\":[{\"eventName\":5,\"s3\":[]}]}",
        "{\"Records\":[{\"eventName\":\"\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}",
        "{\"Records\":[{\"eventName\":\"X\",\"s3\":{\"bucket\":{\"name\":\"b\",\"arn\":7},\"object\":{\"key\":\"%\"}},\"eventTime\":\"yesterday\",\"awsRegion\":[]}]}",
        "{\"Type\":\"Notification\",\"Message\":5}", "{\"Type\":\"Notification\",\"Message\":\"\"}",
        "{\"Type\":\"Notification\",\"Message\":null}", "{\"Type\":\"Notification\"}",
        "{\"Type\":5,\"Message\":\"{}\"}", "{\"source\":\"aws.s3\",\"detail-type\":null}",
        "{\"source\":\"aws.s3\",\"detail-type\":\"Object Created\",\"detail\":\"x\",\"resources\":\"y\"}",
        "{\"source\":\"aws.s3\",\"detail-type\":\"Object Created\",\"detail\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}},\"resources\":[5],\"time\":7,\"id\":[]}",
        "{\"Event\":\"s3:TestEvent\",\"Bucket\":5,\"Time\":\"\"}",
        "{\"Records\":[\"\\ud800\"]}", "{\"Type\":\"Notification\",\"Message\":\"\\ud800\"}",
        "{\"Records\":[1e999]}", "{\"a\":1,\"a\":2}", "{\"Records\":[],\"Records\":{}}",
        "\u{feff}{\"Records\":[]}", "{\"Records\":[]} trailing",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push(deep(200_000));
    inputs.push(format!("{{\"Records\":{}}}", deep(200_000)));
    inputs.push(format!("{{\"Records\":[{{\"x\":{}}}]}}", deep(200)));
    inputs.push(format!("{{\"Records\":[{{\"x\":{}}}]}}", deep(200_000)));
    inputs.push("{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000));
    let nested_sns = serde_json::json!({"Type": "Notification", "Message": deep(500)}).to_string();
    inputs.push(nested_sns);
    for input in &inputs {
        let body = parse_body(input);
        if let Body::Records(records) = &body {
            for r in records {
                if let Record::Event(e) = r {
                    assert!(e.ce_type.starts_with("com.amazon.s3."));
                    assert!(e.source.starts_with("arn:"));
                }
            }
        }
    }
    assert_eq!(parse_body(""), Body::Unrecognized);
    assert_eq!(parse_body("null"), Body::Unrecognized);
    assert_eq!(parse_body("[]"), Body::Unrecognized);
    assert_eq!(parse_body("{}"), Body::Unrecognized);
    assert_eq!(
        parse_body("{\"Records\":null}"),
        Body::Malformed(Malformed::RecordsNotArray)
    );
    assert_eq!(records("{\"Records\":[null,1,\"x\"]}").len(), 3);
    assert!(matches!(
        parse_body("{\"Type\":\"Notification\",\"Message\":5}"),
        Body::Malformed(Malformed::InvalidSnsMessage { .. })
    ));
}

#[test]
fn id_is_the_hash_of_the_canonical_record() {
    // Members out of order, spaces, an escaped character and a number: the id is SHA-256 of
    // the compact text with members sorted by key — pinned, since users deduplicate on it.
    let body = r#"{ "Records": [ { "s3": { "object": { "size": 12, "key": "a\u0041" },
        "bucket": { "name": "b" } }, "eventName": "ObjectCreated:Put", "eventVersion": "2.1" } ] }"#;
    let canonical = r#"{"eventName":"ObjectCreated:Put","eventVersion":"2.1","s3":{"bucket":{"name":"b"},"object":{"key":"aA","size":12}}}"#;
    let expected = hex::encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(one_event(body).id, expected[..32]);
}
