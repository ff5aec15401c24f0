//! `sqs_body::`: the SQS message body parser (`parse_body`) on any text and on generated S3
//! notifications, SNS envelopes, EventBridge events and the test event, plain or mutated; ids
//! stable across wrappings; the events reach a sink intact.

use aws_event_adapter::cloudevents::Encoding;
use aws_event_adapter::sources::s3::notification::{Body, Record, parse_body};
use aws_event_adapter::sources::s3::process::s3_event;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

use crate::cloudevents_http::check_round_trip;
use crate::generators::*;
use crate::run;
use crate::s3_key::encoded_key;

pub const EVENT_NAMES: &[&str] = &[
    "ObjectCreated:Put",
    "ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectCreated:Copy",
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
    "ObjectRestore:Post",
    "LifecycleExpiration:Delete",
    "ReducedRedundancyLostObject",
    "Replication:OperationFailedReplication",
    "s3:",
    ":",
    "ObjectCreated:",
];

const EVENT_VERSIONS: &[&str] = &["2.1", "2.2", "2.0", "2", "2."];
const BAD_EVENT_VERSIONS: &[&str] = &["1.0", "3.0", "", ".2", "21", "2,1"];

const REGIONS: &[&str] = &[
    "us-east-1",
    "eu-west-3",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-south-1",
    "eusc-de-east-1",
    "",
    "cn-",
];

const DETAIL_TYPES: &[&str] = &[
    "Object Created",
    "Object Deleted",
    "Object Restore Initiated",
    "Object Restore Completed",
    "Object Restore Expired",
    "Object Tags Added",
    "Object Tags Deleted",
    "Object ACL Updated",
    "Object Storage Class Changed",
    "Object Access Tier Changed",
    "Object created",
    "",
];

const REASONS: &[&str] = &[
    "PutObject",
    "CopyObject",
    "CompleteMultipartUpload",
    "DeleteObject",
    "Lifecycle Expiration",
    "",
];

fn bucket_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]",
        1 => token(),
    ]
    .boxed()
}

fn region() -> BoxedStrategy<Value> {
    prop_oneof![3 => one_of(REGIONS), 1 => text(token())].boxed()
}

fn bucket_arn_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (select(&["aws", "aws-cn", "aws-us-gov", "", "x"][..]), bucket_name())
            .prop_map(|(partition, bucket)| format!("arn:{partition}:s3:::{bucket}")),
        1 => token(),
    ]
    .boxed()
}

fn s3_record() -> BoxedStrategy<Value> {
    let bucket = (
        field(text(bucket_name())),
        optional(text(bucket_arn_text())),
        optional(Just(json!({"principalId": "A3NL1KOZZKExample"}))),
    )
        .prop_map(|(name, arn, owner)| {
            object(vec![("name", name), ("arn", arn), ("ownerIdentity", owner)])
        });
    let object_ = (
        field(text(encoded_key())),
        optional(any::<u32>().prop_map(Value::from)),
        optional(text(token())),
    )
        .prop_map(|(key, size, sequencer)| {
            object(vec![("key", key), ("size", size), ("sequencer", sequencer)])
        });
    let s3 = (field(bucket), field(object_), optional(Just(json!("1.0")))).prop_map(
        |(bucket, object_, version)| {
            object(vec![
                ("s3SchemaVersion", version),
                ("bucket", bucket),
                ("object", object_),
            ])
        },
    );
    (
        field(prop_oneof![4 => one_of(EVENT_VERSIONS), 1 => one_of(BAD_EVENT_VERSIONS)]),
        optional(Just(json!("aws:s3"))),
        field(region()),
        field(text(time_text())),
        field(prop_oneof![3 => one_of(EVENT_NAMES), 1 => text(token())]),
        field(s3),
    )
        .prop_map(|(version, source, region, time, name, s3)| {
            object(vec![
                ("eventVersion", version),
                ("eventSource", source),
                ("awsRegion", region),
                ("eventTime", time),
                ("eventName", name),
                ("s3", s3),
            ])
        })
        .boxed()
}

fn records_body() -> BoxedStrategy<Value> {
    let records = prop_oneof![
        8 => prop::collection::vec(s3_record(), 0..4).prop_map(Value::Array),
        1 => json_value(),
    ];
    (records, prop::collection::vec((token(), json_leaf()), 0..2))
        .prop_map(|(records, extra)| {
            let mut body: serde_json::Map<String, Value> = extra.into_iter().collect();
            body.insert("Records".into(), records);
            Value::Object(body)
        })
        .boxed()
}

fn eventbridge_body() -> BoxedStrategy<Value> {
    let detail = (
        field(text(bucket_name()).prop_map(|name| json!({ "name": name }))),
        field(text(encoded_key()).prop_map(|key| json!({ "key": key, "size": 5 }))),
        optional(one_of(REASONS)),
        optional(Just(json!("0"))),
    )
        .prop_map(|(bucket, object_, reason, version)| {
            object(vec![
                ("version", version),
                ("bucket", bucket),
                ("object", object_),
                ("reason", reason),
            ])
        });
    let resources = prop_oneof![
        3 => prop::collection::vec(text(bucket_arn_text()), 0..3).prop_map(Value::Array),
        1 => json_value(),
    ];
    (
        optional(Just(json!("0"))),
        field(text(token())),
        field(prop_oneof![3 => one_of(DETAIL_TYPES), 1 => text(token())]),
        field(prop_oneof![5 => Just(json!("aws.s3")), 1 => text(token())]),
        field(text(time_text())),
        field(region()),
        field(resources),
        field(detail),
    )
        .prop_map(
            |(version, id, detail_type, source, time, region, resources, detail)| {
                object(vec![
                    ("version", version),
                    ("id", id),
                    ("detail-type", detail_type),
                    ("source", source),
                    ("account", Some(json!("123456789012"))),
                    ("time", time),
                    ("region", region),
                    ("resources", resources),
                    ("detail", detail),
                ])
            },
        )
        .boxed()
}

fn test_event_body() -> BoxedStrategy<Value> {
    (
        optional(Just(json!("Amazon S3"))),
        field(prop_oneof![5 => Just(json!("s3:TestEvent")), 1 => text(token())]),
        field(text(time_text())),
        field(text(bucket_name())),
        optional(text(token())),
    )
        .prop_map(|(service, event, time, bucket, request)| {
            object(vec![
                ("Service", service),
                ("Event", event),
                ("Time", time),
                ("Bucket", bucket),
                ("RequestId", request),
                ("HostId", Some(json!("8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e"))),
            ])
        })
        .boxed()
}

fn sns_body(inner: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let message = prop_oneof![
        5 => inner.clone().prop_map(|v| Value::String(v.to_string())),
        1 => (inner, edits(1)).prop_map(|(v, e)| Value::String(apply_edits(&v.to_string(), &e))),
        1 => json_value(),
    ];
    (
        field(prop_oneof![
            5 => Just(json!("Notification")),
            1 => one_of(&["SubscriptionConfirmation", "notification"]),
        ]),
        optional(text(token())),
        optional(text(token())),
        field(message),
        optional(text(time_text())),
    )
        .prop_map(|(ty, id, topic, message, timestamp)| {
            object(vec![
                ("Type", ty),
                ("MessageId", id),
                ("TopicArn", topic),
                ("Message", message),
                ("Timestamp", timestamp),
            ])
        })
        .boxed()
}

fn plain_body() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => records_body(),
        2 => eventbridge_body(),
        1 => test_event_body(),
        1 => json_value(),
    ]
    .boxed()
}

/// Any body shape: plain, SNS-wrapped, or SNS-wrapped twice (which is not S3's).
fn any_body() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => plain_body(),
        2 => sns_body(prop_oneof![4 => plain_body(), 1 => sns_body(plain_body())].boxed()),
    ]
    .boxed()
}

/// Nesting beyond serde_json's recursion limit, in the places the parser looks.
fn deep_body() -> BoxedStrategy<String> {
    (
        select(
            &[
                "{\"Records\":",
                "{\"Records\":[",
                "{\"source\":\"aws.s3\",\"detail-type\":\"Object Created\",\"detail\":",
                "{\"Type\":\"Notification\",\"Message\":",
                "",
            ][..],
        ),
        select(&["[", "{\"a\":", "{\"key\":"][..]),
        0_usize..300,
        any::<bool>(),
    )
        .prop_map(|(prefix, open, depth, close)| {
            let mut body = format!("{prefix}{}1", open.repeat(depth));
            if close {
                let closer = if open == "[" { "]" } else { "}" };
                body.push_str(&closer.repeat(depth));
                body.push_str(&"}".repeat(prefix.matches('{').count()));
            }
            body
        })
        .boxed()
}

/// Renders a generated body compact or pretty, then mutates the text.
fn body_text() -> BoxedStrategy<String> {
    prop_oneof![
        12 => (any_body(), any::<bool>(), edits(8)).prop_map(|(body, pretty, edits)| {
            let text = if pretty {
                serde_json::to_string_pretty(&body).unwrap_or_default()
            } else {
                body.to_string()
            };
            apply_edits(&text, &edits)
        }),
        1 => deep_body(),
    ]
    .boxed()
}

/// `parse_body` never panics, and what it returns holds together.
fn check_body(text: &str) -> Result<(), TestCaseError> {
    let body = parse_body(text);
    match &body {
        Body::Records(records) => {
            for record in records {
                match record {
                    Record::Event(event) => {
                        prop_assert!(event.ce_type.starts_with("com.amazon.s3."), "{event:?}");
                        prop_assert!(
                            event.source.starts_with("arn:") && event.source.contains(":s3:::"),
                            "{event:?}"
                        );
                        prop_assert!(!event.subject.is_empty(), "{event:?}");
                        prop_assert!(!event.id.is_empty(), "{event:?}");
                        prop_assert!(
                            serde_json::from_slice::<serde::de::IgnoredAny>(&event.data).is_ok(),
                            "data is not JSON: {event:?}"
                        );
                    }
                    Record::Invalid(malformed) => {
                        prop_assert!(!malformed.label().is_empty());
                        prop_assert!(!malformed.to_string().is_empty());
                    }
                }
            }
        }
        Body::TestEvent(test) => {
            prop_assert!(!test.bucket.is_empty(), "{test:?}");
            prop_assert_eq!(test.id.len(), 32);
        }
        Body::Malformed(malformed) => prop_assert!(!malformed.to_string().is_empty()),
        Body::Unrecognized => {}
    }
    // Deterministic: a redelivered message gives the same ids.
    prop_assert_eq!(parse_body(text), body);
    Ok(())
}

#[test]
fn arbitrary_text() {
    let strategy = prop_oneof![
        2 => any_text(200),
        2 => "[\\[\\]{}\":,0-9a-zA-Z .+\\\\eE-]{0,64}",
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ];
    run("sqs_body::arbitrary_text", 3000, strategy, |text| {
        check_body(&text)
    });
}

#[test]
fn structured() {
    run("sqs_body::structured", 2000, body_text(), |text| {
        check_body(&text)
    });
}

/// The id is a hash of the record's canonical JSON: the same record delivered plain,
/// pretty-printed or inside an SNS envelope is the same event (reference §2).
#[test]
fn sns_wrapping_keeps_ids() {
    run(
        "sqs_body::sns_wrapping_keeps_ids",
        800,
        records_body(),
        |body| {
            let plain = body.to_string();
            let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
            let sns = json!({"Type": "Notification", "Message": plain}).to_string();
            let summary = |text: &str| match parse_body(text) {
                Body::Records(records) => records
                    .iter()
                    .map(|r| match r {
                        Record::Event(e) => format!(
                            "{}|{}|{}|{}|{}|{:?}",
                            e.event_name, e.ce_type, e.source, e.subject, e.id, e.time
                        ),
                        Record::Invalid(m) => m.label().to_owned(),
                    })
                    .collect(),
                other => vec![format!("{other:?}")],
            };
            let expected = summary(&plain);
            prop_assert_eq!(&summary(&pretty), &expected);
            prop_assert_eq!(&summary(&sns), &expected);
            Ok(())
        },
    );
}

/// What the source sends for each parsed record reaches the sink intact, in both modes.
#[test]
fn events_reach_the_sink_intact() {
    run(
        "sqs_body::events_reach_the_sink_intact",
        1000,
        body_text(),
        |text| {
            if let Body::Records(records) = parse_body(&text) {
                for record in records {
                    if let Record::Event(event) = record {
                        let out = s3_event(event);
                        check_round_trip(&out, Encoding::Binary)?;
                        check_round_trip(&out, Encoding::Structured)?;
                    }
                }
            }
            Ok(())
        },
    );
}
