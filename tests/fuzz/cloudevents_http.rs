//! `cloudevents_http::`: the CloudEvents HTTP decoder on random `ce-` headers, content types
//! and bodies and on generated events in binary, structured and batch mode (what it accepts
//! re-encodes and decodes again to the same attributes), the encoder's round trip, and the
//! header-value percent-coding.

use aws_event_adapter::cloudevents::inbound::decode_events as decode;
use aws_event_adapter::cloudevents::{
    Encoding, OutEvent, decode_header_value, encode_header_value,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudevents::event::SpecVersion;
use cloudevents::{AttributesReader, Event};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use crate::generators::*;
use crate::run;

/// The attributes of an event, as the sink sees them.
type Attributes = (
    String,
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
);

fn attributes(event: &Event) -> Attributes {
    (
        event.id().to_owned(),
        event.source().to_string(),
        event.ty().to_owned(),
        event.subject().map(str::to_owned),
        event.time().copied(),
    )
}

fn out_attributes(event: &OutEvent) -> Attributes {
    (
        event.id.clone(),
        event.source.clone(),
        event.ty.clone(),
        event.subject.clone(),
        event.time,
    )
}

/// Sends `event` through the HTTP binding in `encoding` and checks the sink gets it back.
pub fn check_round_trip(event: &OutEvent, encoding: Encoding) -> Result<(), TestCaseError> {
    let encoded = event.encode(encoding);
    let decoded = decode(&encoded.headers, encoded.body.clone())
        .map_err(|err| TestCaseError::fail(format!("{encoding:?} {event:?}: {err}")))?;
    prop_assert_eq!(decoded.len(), 1);
    prop_assert_eq!(
        attributes(&decoded[0]),
        out_attributes(event),
        "{:?}",
        encoding
    );
    for (name, value) in &event.extensions {
        prop_assert_eq!(
            decoded[0].extension(name).map(ToString::to_string),
            Some(value.clone())
        );
    }
    Ok(())
}

const CE_HEADER_NAMES: &[&str] = &[
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-subject",
    "ce-time",
    "ce-dataschema",
    "ce-schemaurl",
    "ce-datacontenttype",
    "ce-datacontentencoding",
    "ce-knativeerrorcode",
    "ce-data",
    "ce-",
    "content-type",
];

const CE_HEADER_VALUES: &[&str] = &[
    "1.0",
    "0.3",
    "",
    "2.0",
    "1.0 ",
    "abc",
    "http://example.com/",
    "arn:aws:s3:::b",
    "com.amazon.s3.objectcreated",
    "2024-01-31T12:34:56.789Z",
    "2024-13-01T00:00:00Z",
    "not a time",
    "%",
    "%2",
    "%zz",
    "%FF",
    "%C3%A9",
    "a%20b",
    "%F0%9F%98%80",
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "text/plain; charset=utf-8",
    "base64",
    "true",
    "42",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/cloudevents+json",
    "application/cloudevents+json; charset=utf-8",
    "APPLICATION/CloudEvents+JSON",
    "application/cloudevents-batch+json",
    "application/cloudevents-batch+json;charset=utf-8",
    "application/cloudevents",
    "text/plain",
    "text/json",
    "application/x+json",
    "application/octet-stream",
    "",
    ";",
];

const DATA_CONTENT_TYPES: &[&str] = &[
    "application/json",
    "text/json",
    "application/vnd+json; charset=utf-8",
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "",
];

fn header_pairs() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        6 => select(CE_HEADER_NAMES).prop_map(str::to_owned),
        2 => "ce-[a-z0-9]{0,10}",
        1 => "ce-[!-~]{0,8}",
        1 => "[A-Za-z0-9-]{1,10}",
    ];
    let value = prop_oneof![
        4 => select(CE_HEADER_VALUES).prop_map(|s| s.as_bytes().to_vec()),
        3 => any_text(16).prop_map(|s| encode_header_value(&s).as_bytes().to_vec()),
        2 => "[ -~]{0,16}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ];
    (
        prop::option::weighted(0.8, select(&["1.0", "0.3", "", "1", "1.0\t"][..])),
        prop::option::weighted(0.7, select(CONTENT_TYPES)),
        prop::collection::vec((name, value), 0..8),
    )
        .prop_map(|(spec, content_type, rest)| {
            let mut pairs = Vec::new();
            if let Some(spec) = spec {
                pairs.push(("ce-specversion".to_owned(), spec.as_bytes().to_vec()));
            }
            if let Some(content_type) = content_type {
                pairs.push(("content-type".to_owned(), content_type.as_bytes().to_vec()));
            }
            pairs.extend(rest);
            pairs
        })
        .boxed()
}

/// The pairs that HTTP allows, as a header map.
fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// A structured-mode CloudEvent with random attributes (some missing, some of the wrong type).
fn ce_json() -> BoxedStrategy<Value> {
    let string = || text(token());
    let attributes = (
        field(prop_oneof![6 => one_of(&["1.0", "0.3"]), 1 => text(token())]),
        field(string()),
        field(string()),
        field(string()),
        optional(string()),
        optional(text(time_text())),
        optional(one_of(DATA_CONTENT_TYPES)),
        optional(one_of(&[
            "http://example.com/schema",
            "urn:x",
            "not a url",
            "",
            "http://[::1",
        ])),
        prop::sample::select(&["dataschema", "schemaurl"][..]),
        optional(one_of(&["base64", "Base64", "binary"])),
    );
    let payload = (
        optional(json_value()),
        optional(prop_oneof![
            3 => one_of(&["", "aGk=", "eyJhIjoxfQ==", "AAEC/w==", "aGk", "not base64!"]),
            1 => text(token()),
        ]),
        prop::collection::vec(
            (
                prop_oneof![
                    3 => "[a-z0-9]{1,12}",
                    1 => select(&["data", "id", "Bad-Name", "", "é", "x_y", "specversion"][..])
                        .prop_map(str::to_owned),
                ],
                json_leaf(),
            ),
            0..3,
        ),
    );
    (attributes, payload)
        .prop_map(|(attributes, (data, data_base64, extensions))| {
            let (spec, id, source, ty, subject, time, dct, schema, schema_name, encoding) =
                attributes;
            let mut members: serde_json::Map<String, Value> = extensions.into_iter().collect();
            let named = [
                ("specversion", spec),
                ("id", id),
                ("source", source),
                ("type", ty),
                ("subject", subject),
                ("time", time),
                ("datacontenttype", dct),
                (schema_name, schema),
                ("datacontentencoding", encoding),
                ("data", data),
                ("data_base64", data_base64),
            ];
            for (name, value) in named {
                if let Some(value) = value {
                    members.insert(name.to_owned(), value);
                }
            }
            Value::Object(members)
        })
        .boxed()
}

/// A generated event in binary mode: string attributes as percent-encoded `ce-` headers.
fn binary_from_json(event: &Value) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mut headers = Vec::new();
    let mut body = Vec::new();
    if let Value::Object(members) = event {
        for (name, value) in members {
            let value_text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match name.as_str() {
                "data" => body = value_text.into_bytes(),
                "data_base64" => {}
                "datacontenttype" => {
                    headers.push(("content-type".to_owned(), value_text.into_bytes()));
                }
                _ => headers.push((
                    format!("ce-{name}"),
                    encode_header_value(&value_text).as_bytes().to_vec(),
                )),
            }
        }
    }
    (headers, body)
}

/// Whether cloudevents-sdk's structured-mode decoder reads `data` as JSON for this type.
fn sdk_reads_json(content_type: &str) -> bool {
    content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type.ends_with("+json")
}

/// Whether the adapter's binary-mode decoder turns `data` into JSON for this type.
fn adapter_reads_json(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t == "application/json" || t == "text/json" || t.ends_with("+json")
}

/// `decode` never panics; what it accepts re-encodes, and decodes again to the same attributes.
///
/// Known gap, reported, not checked here: when the two readings of `datacontenttype` differ
/// (`+json` with parameters, upper case), a binary-mode event's JSON data re-encodes as a JSON
/// `data` member that cloudevents-sdk's structured decoder rejects unless it is a string.
fn check_decode(headers: &HeaderMap, body: Vec<u8>) -> Result<(), TestCaseError> {
    match decode(headers, Bytes::from(body)) {
        Ok(events) => {
            let json = serde_json::to_vec(&events)
                .map_err(|err| TestCaseError::fail(format!("re-encoding {events:?}: {err}")))?;
            let readings_differ = events.iter().any(|event| {
                event
                    .datacontenttype()
                    .is_some_and(|t| sdk_reads_json(t) != adapter_reads_json(t))
            });
            // cloudevents-sdk's own gaps: its 0.3 structured form does not always decode again
            // (binary data without a content type, `datacontentencoding` as an extension); and
            // an extension named like a JSON-format member (`ce-data`) collides with `data`.
            let sdk_gap = events.iter().any(|event| {
                event.specversion() == SpecVersion::V03
                    || event
                        .iter_extensions()
                        .any(|(name, _)| matches!(name, "data" | "data_base64"))
            });
            if readings_differ || sdk_gap {
                return Ok(());
            }
            let mut batch = HeaderMap::new();
            batch.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/cloudevents-batch+json"),
            );
            let again = decode(&batch, Bytes::from(json.clone())).map_err(|err| {
                TestCaseError::fail(format!(
                    "re-decoding {}: {err}",
                    String::from_utf8_lossy(&json)
                ))
            })?;
            prop_assert_eq!(
                again.iter().map(attributes).collect::<Vec<_>>(),
                events.iter().map(attributes).collect::<Vec<_>>()
            );
        }
        Err(err) => prop_assert!(matches!(err.status, 400 | 415), "{err:?}"),
    }
    Ok(())
}

fn out_event() -> BoxedStrategy<OutEvent> {
    (
        (any_text(24), any_text(24), any_text(24)),
        prop::option::of(any_text(48)),
        prop::option::of(datetime()),
        select(&["application/json", "text/plain; charset=utf-8"][..]),
        prop::collection::vec(
            (
                select(&["knativeerrorcode", "knativeerrordata", "awsregion", "x1"][..]),
                any_text(16),
            ),
            0..3,
        ),
        prop_oneof![
            2 => json_value().prop_map(|v| v.to_string().into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..32),
        ],
    )
        .prop_map(
            |((id, source, ty), subject, time, datacontenttype, mut extensions, data)| {
                extensions.sort_by_key(|(name, _)| *name);
                extensions.dedup_by_key(|(name, _)| *name);
                OutEvent {
                    id,
                    source,
                    ty,
                    subject,
                    time,
                    datacontenttype,
                    extensions: extensions.into_iter().map(|(n, v)| (n.into(), v)).collect(),
                    data: Bytes::from(data),
                }
            },
        )
        .boxed()
}

#[test]
fn decode_random_requests() {
    let body = prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..64),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        3 => (ce_json(), edits(2))
            .prop_map(|(v, e)| apply_edits(&v.to_string(), &e).into_bytes()),
        2 => (prop::collection::vec(ce_json(), 0..3), edits(2))
            .prop_map(|(v, e)| apply_edits(&Value::Array(v).to_string(), &e).into_bytes()),
    ];
    run(
        "cloudevents_http::decode_random_requests",
        1500,
        (header_pairs(), body),
        |(pairs, body)| check_decode(&header_map(&pairs), body),
    );
}

#[test]
fn decode_generated_events() {
    let mode = select(&["binary", "structured", "batch"][..]);
    let strategy = (prop::collection::vec(ce_json(), 1..3), mode, edits(3));
    run(
        "cloudevents_http::decode_generated_events",
        1200,
        strategy,
        |(events, mode, edits)| {
            let (pairs, body) = match mode {
                "binary" => binary_from_json(&events[0]),
                "structured" => (
                    vec![(
                        "content-type".to_owned(),
                        b"application/cloudevents+json".to_vec(),
                    )],
                    apply_edits(&events[0].to_string(), &edits).into_bytes(),
                ),
                _ => (
                    vec![(
                        "content-type".to_owned(),
                        b"application/cloudevents-batch+json".to_vec(),
                    )],
                    apply_edits(&Value::Array(events).to_string(), &edits).into_bytes(),
                ),
            };
            check_decode(&header_map(&pairs), body)
        },
    );
}

#[test]
fn out_events_round_trip() {
    run(
        "cloudevents_http::out_events_round_trip",
        1500,
        out_event(),
        |event| {
            check_round_trip(&event, Encoding::Binary)?;
            check_round_trip(&event, Encoding::Structured)
        },
    );
}

#[test]
fn header_values_round_trip() {
    run(
        "cloudevents_http::header_values_round_trip",
        5000,
        (any_text(64), any_text(32)),
        |(value, garbage)| {
            let encoded = encode_header_value(&value);
            prop_assert!(
                encoded.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)),
                "{encoded:?}"
            );
            let text = encoded
                .to_str()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode_header_value(text), value);
            decode_header_value(&garbage);
            Ok(())
        },
    );
}
