//! Decoding CloudEvents from HTTP requests in binary, structured and batch mode, with the
//! percent-decoding of `ce-` header values that cloudevents-sdk leaves to the caller.
//!
//! The data of an event is kept **as it arrived**. cloudevents-sdk parses JSON data into a
//! `serde_json::Value`, which sorts keys, rounds big integers, respells numbers (`1E2` →
//! `100.0`) and collapses duplicate keys; the targets must write the sender's bytes, so the
//! attributes come from the SDK and JSON data from the request itself: the whole body in binary
//! mode, the exact text of the `data` member in structured and batch mode (a slice of the
//! request body, no copy). `data_base64` is kept as its decoded bytes.

use base64::Engine;
use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::decode_header_value;
use super::trace::TraceParent;

/// Why a request is not a CloudEvent; `status` is the HTTP answer it deserves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub status: u16,
    pub message: String,
}

fn bad_request(message: impl Into<String>) -> DecodeError {
    DecodeError {
        status: 400,
        message: message.into(),
    }
}

/// One received event: its attributes, and its data exactly as it arrived.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// The attributes; its data is `None` when the data is JSON (then it is in `json`).
    event: Event,
    /// JSON data, byte for byte as received.
    json: Option<Bytes>,
    /// The request's W3C `traceparent` header (for an event without the extension).
    http_traceparent: Option<String>,
}

/// The data of an [`InboundEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundData<'a> {
    /// JSON text as the sender wrote it.
    Json(&'a Bytes),
    /// A string (structured mode, a non-JSON `datacontenttype`).
    Text(&'a str),
    /// Bytes (binary mode, or `data_base64` decoded).
    Binary(&'a [u8]),
}

impl<'a> InboundData<'a> {
    /// The bytes to store or send.
    pub fn as_bytes(self) -> &'a [u8] {
        match self {
            InboundData::Json(json) => json,
            InboundData::Text(text) => text.as_bytes(),
            InboundData::Binary(bytes) => bytes,
        }
    }
}

impl InboundEvent {
    /// The event's attributes and extensions. Its `data()` is `None` for JSON data: read the
    /// data through [`InboundEvent::data`].
    pub fn attributes(&self) -> &Event {
        &self.event
    }

    /// The data as it arrived.
    pub fn data(&self) -> Option<InboundData<'_>> {
        if let Some(json) = &self.json {
            return Some(InboundData::Json(json));
        }
        match self.event.data() {
            None => None,
            Some(Data::String(text)) => Some(InboundData::Text(text)),
            Some(Data::Binary(bytes)) => Some(InboundData::Binary(bytes)),
            // Not kept in the event (see `keep_json`); an event built in code may hold one.
            Some(Data::Json(_)) => None,
        }
    }

    /// The event in structured mode (`application/cloudevents+json`), with JSON data spliced in
    /// as received.
    pub fn to_structured(&self) -> Vec<u8> {
        // Attributes, extensions and non-JSON data serialize infallibly (strings and maps).
        let mut out = serde_json::to_vec(&self.event).expect("an event serializes");
        if let Some(json) = &self.json
            && out.last() == Some(&b'}')
        {
            out.pop();
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(json);
            out.push(b'}');
        }
        out
    }

    /// The event's trace context: its `traceparent` extension, else the request's W3C
    /// `traceparent` header (what Knative sends); a malformed one is ignored.
    pub fn trace_parent(&self) -> Option<TraceParent> {
        let extension = self.event.extension("traceparent").map(ToString::to_string);
        extension
            .as_deref()
            .and_then(TraceParent::parse)
            .or_else(|| {
                self.http_traceparent
                    .as_deref()
                    .and_then(TraceParent::parse)
            })
    }

    /// A plain cloudevents-sdk event (JSON data parsed), for code that wants the SDK's model.
    pub fn into_event(self) -> Event {
        let mut event = self.event;
        if let Some(json) = self.json
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&json)
        {
            event.set_data_unchecked(Data::Json(value));
        }
        event
    }
}

impl From<Event> for InboundEvent {
    /// An event built in code: JSON data is serialized once, and that text is the data.
    fn from(mut event: Event) -> Self {
        let json = match event.data() {
            Some(Data::Json(value)) => Some(Bytes::from(value.to_string())),
            _ => None,
        };
        if json.is_some() {
            remove_data(&mut event);
        }
        InboundEvent {
            event,
            json,
            http_traceparent: None,
        }
    }
}

/// Drops the event's data, keeping `datacontenttype` and `dataschema` (`take_data` takes all
/// three).
fn remove_data(event: &mut Event) {
    let (content_type, schema, _) = event.take_data();
    event.set_datacontenttype(content_type);
    event.set_dataschema(schema);
}

/// The `data` members of a structured event, read from the request text itself.
#[derive(Deserialize)]
struct DataMembers<'a> {
    /// `Some` whenever the member is there, `null` included (plain `Option` reads `null` as
    /// absent).
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(default)]
    data_base64: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Replaces the SDK's reading of the data with the data as the request carried it.
fn keep_data(
    body: &Bytes,
    mut event: Event,
    members: DataMembers<'_>,
) -> Result<InboundEvent, String> {
    if let Some(encoded) = members.data_base64 {
        // The SDK turns base64 of JSON into parsed JSON; the sender's bytes are the decoded ones.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|err| format!("data_base64 is not base64: {err}"))?;
        if matches!(event.data(), Some(Data::Json(_))) {
            event.set_data_unchecked(Data::Binary(bytes));
        }
        return Ok(InboundEvent {
            event,
            json: None,
            http_traceparent: None,
        });
    }
    let json = match (event.data(), members.data) {
        (Some(Data::Json(_)), Some(raw)) => Some(body.slice_ref(raw.get().as_bytes())),
        _ => None,
    };
    if json.is_some() {
        remove_data(&mut event);
    }
    Ok(InboundEvent {
        event,
        json,
        http_traceparent: None,
    })
}

/// Decodes one request into its events (one, or several in batch mode), data as received.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Vec<InboundEvent>, DecodeError> {
    let mut events = decode_events_of(headers, body)?;
    if let Some(traceparent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        for event in &mut events {
            event.http_traceparent = Some(traceparent.to_string());
        }
    }
    Ok(events)
}

fn decode_events_of(headers: &HeaderMap, body: Bytes) -> Result<Vec<InboundEvent>, DecodeError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if headers.contains_key("ce-specversion") {
        // `data` is the body, not an attribute: a `ce-data` header would collide with it.
        if headers.contains_key("ce-data") || headers.contains_key("ce-data_base64") {
            return Err(bad_request(
                "ce-data / ce-data_base64 headers are not allowed: the data is the request body",
            ));
        }
        let event = cloudevents::binding::http::to_event(headers, body.to_vec())
            .map_err(|err| bad_request(format!("invalid binary-mode CloudEvent: {err}")))?;
        return Ok(vec![keep_json_body(percent_decode_attributes(event), body)]);
    }
    match content_type.as_deref() {
        Some("application/cloudevents+json") => {
            let invalid =
                |err: String| bad_request(format!("invalid structured-mode CloudEvent: {err}"));
            let event =
                serde_json::from_slice::<Event>(&body).map_err(|e| invalid(e.to_string()))?;
            let members =
                serde_json::from_slice::<DataMembers>(&body).map_err(|e| invalid(e.to_string()))?;
            Ok(vec![keep_data(&body, event, members).map_err(invalid)?])
        }
        Some("application/cloudevents-batch+json") => {
            let invalid = |err: String| bad_request(format!("invalid batch of CloudEvents: {err}"));
            let events =
                serde_json::from_slice::<Vec<Event>>(&body).map_err(|e| invalid(e.to_string()))?;
            let members = serde_json::from_slice::<Vec<DataMembers>>(&body)
                .map_err(|e| invalid(e.to_string()))?;
            events
                .into_iter()
                .zip(members)
                .enumerate()
                .map(|(i, (event, members))| {
                    keep_data(&body, event, members)
                        .map_err(|err| invalid(format!("event {i}: {err}")))
                })
                .collect()
        }
        Some(other) => Err(DecodeError {
            status: 415,
            message: format!(
                "content type {other:?} without ce-specversion header is not a CloudEvent: use binary mode (ce-* headers), application/cloudevents+json or application/cloudevents-batch+json"
            ),
        }),
        None => Err(bad_request(
            "not a CloudEvent: no ce-specversion header and no content type",
        )),
    }
}

/// [`decode`], as cloudevents-sdk events (JSON data parsed into the SDK's model).
pub fn decode_events(headers: &HeaderMap, body: Bytes) -> Result<Vec<Event>, DecodeError> {
    decode(headers, body).map(|events| events.into_iter().map(InboundEvent::into_event).collect())
}

/// cloudevents-sdk keeps a binary-mode body as bytes whatever its type. A JSON type with a body
/// that is JSON makes JSON data — the body itself, byte for byte — so that the event in
/// structured mode carries `data`, not `data_base64`; everything else stays bytes.
fn keep_json_body(mut event: Event, body: Bytes) -> InboundEvent {
    // The same rule as cloudevents-sdk's, so what is JSON here is read back as JSON by the
    // SDK's structured decoder.
    let is_json = event.datacontenttype().is_some_and(|t| {
        t.starts_with("application/json") || t.starts_with("text/json") || t.ends_with("+json")
    });
    // serde_json skips the strings it ignores without checking their UTF-8: check it first,
    // so that what is kept as JSON text is text.
    if is_json
        && std::str::from_utf8(&body).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
    {
        remove_data(&mut event);
        return InboundEvent {
            event,
            json: Some(body),
            http_traceparent: None,
        };
    }
    InboundEvent {
        event,
        json: None,
        http_traceparent: None,
    }
}

/// Binary mode carries string attributes percent-encoded (HTTP binding §3.1.3.2).
fn percent_decode_attributes(mut event: Event) -> Event {
    let id = decode_header_value(event.id());
    event.set_id(id);
    let source = decode_header_value(event.source());
    event.set_source(source);
    let ty = decode_header_value(event.ty());
    event.set_type(ty);
    if let Some(subject) = event.subject().map(decode_header_value) {
        event.set_subject(Some(subject));
    }
    let strings: Vec<(String, String)> = event
        .iter_extensions()
        .filter_map(|(name, value)| match value {
            ExtensionValue::String(s) => Some((name.to_string(), decode_header_value(s))),
            _ => None,
        })
        .collect();
    for (name, value) in strings {
        event.set_extension(&name, value);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudevents::{Encoding, OutEvent};

    #[test]
    fn binary_round_trip_restores_the_subject() {
        let out = OutEvent {
            id: "1".into(),
            source: "arn:aws:s3:::b".into(),
            ty: "t".into(),
            subject: Some("a b/%+é 😀\"".into()),
            time: None,
            datacontenttype: "application/json",
            extensions: vec![("knativeerrorcode".into(), "503 busy".into())],
            data: Bytes::from_static(b"{}"),
        };
        let encoded = out.encode(Encoding::Binary);
        let events = decode_events(&encoded.headers, encoded.body).unwrap();
        assert_eq!(events[0].subject(), Some("a b/%+é 😀\""));
        assert_eq!(
            events[0]
                .extension("knativeerrorcode")
                .map(ToString::to_string),
            Some("503 busy".to_string())
        );
    }

    /// The required binary-mode attributes (id `1`) and `content-type`.
    fn binary_headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "t"),
            ("content-type", content_type),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn binary_json_data_stays_json() {
        let headers = binary_headers("application/json");
        let events = decode(&headers, Bytes::from_static(br#"{"a":1}"#)).unwrap();
        let structured: serde_json::Value =
            serde_json::from_slice(&events[0].to_structured()).unwrap();
        assert_eq!(structured["data"]["a"], 1, "{structured}");
        assert!(structured.get("data_base64").is_none());
    }

    #[test]
    fn a_ce_data_header_is_refused_and_odd_json_types_stay_bytes() {
        let mut headers = binary_headers("application/vnd.api+json; charset=utf-8");
        let events = decode(&headers, Bytes::from_static(br#"{"a":1}"#)).unwrap();
        let structured = events[0].to_structured();
        let back: cloudevents::Event =
            serde_json::from_slice(&structured).expect("the SDK reads it back");
        assert_eq!(back.id(), "1");
        headers.insert("ce-data", "x".parse().unwrap());
        assert_eq!(
            decode(&headers, Bytes::from_static(b"{}"))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn rejects_what_is_not_a_cloudevent() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(decode(&headers, Bytes::new()).unwrap_err().status, 415);
        headers.insert(
            CONTENT_TYPE,
            "application/cloudevents+json".parse().unwrap(),
        );
        let err = decode(&headers, Bytes::from_static(b"{")).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("structured"), "{}", err.message);
    }

    /// JSON data no `serde_json::Value` survives unchanged: key order, a duplicate key, a big
    /// integer, `1E2`, a `\u` escape and insignificant whitespace.
    const AWKWARD_JSON: &str = "{ \"z\":1,\"a\":12345678901234567890123, \"m\":1E2,\"m\":2,\"s\":\"\\u00e9\\n\" ,\"l\":[ 1 ,2] }";

    fn assert_kept(event: &InboundEvent, json: &str) {
        assert_eq!(
            event.data().map(|d| d.as_bytes().to_vec()),
            Some(json.as_bytes().to_vec())
        );
        let structured = String::from_utf8(event.to_structured()).unwrap();
        assert!(
            structured.ends_with(&format!(",\"data\":{json}}}")),
            "{structured}"
        );
        let back: cloudevents::Event =
            serde_json::from_str(&structured).expect("the SDK reads it back");
        assert_eq!(back.id(), event.attributes().id());
        assert!(event.attributes().data().is_none(), "no parsed copy kept");
    }

    #[test]
    fn json_data_is_kept_byte_for_byte_in_every_mode() {
        let binary = decode(
            &binary_headers("application/json"),
            Bytes::from(AWKWARD_JSON),
        )
        .unwrap();
        assert_kept(&binary[0], AWKWARD_JSON);

        let structured_body = format!(
            "{{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"s\",\"type\":\"t\",\"datacontenttype\":\"application/json\",\"data\":  {AWKWARD_JSON}  ,\"x\":\"y\"}}"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/cloudevents+json".parse().unwrap(),
        );
        let structured = decode(&headers, Bytes::from(structured_body)).unwrap();
        assert_kept(&structured[0], AWKWARD_JSON);
        assert_eq!(
            structured[0]
                .attributes()
                .extension("x")
                .map(ToString::to_string),
            Some("y".into())
        );

        // No datacontenttype means JSON; the second event's data is a bare big number.
        let batch_body = format!(
            "[{{\"specversion\":\"1.0\",\"id\":\"3\",\"source\":\"s\",\"type\":\"t\",\"data\":{AWKWARD_JSON}}},\n {{\"specversion\":\"1.0\",\"id\":\"4\",\"source\":\"s\",\"type\":\"t\",\"data\":1.50E+300}}]"
        );
        headers.insert(
            CONTENT_TYPE,
            "application/cloudevents-batch+json".parse().unwrap(),
        );
        let batch = decode(&headers, Bytes::from(batch_body)).unwrap();
        assert_kept(&batch[0], AWKWARD_JSON);
        assert_kept(&batch[1], "1.50E+300");
    }

    #[test]
    fn data_base64_and_text_data_are_their_bytes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/cloudevents+json".parse().unwrap(),
        );
        // base64 of `{"b":1, "a":2}`: JSON, yet kept as the decoded bytes, not parsed.
        let body = r#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data_base64":"eyJiIjoxLCAiYSI6Mn0="}"#;
        let events = decode(&headers, Bytes::from(body)).unwrap();
        assert_eq!(
            events[0].data(),
            Some(InboundData::Binary(br#"{"b":1, "a":2}"#))
        );
        let structured: serde_json::Value =
            serde_json::from_slice(&events[0].to_structured()).unwrap();
        assert_eq!(structured["data_base64"], "eyJiIjoxLCAiYSI6Mn0=");

        let body = r#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"caf\u00e9"}"#;
        let events = decode(&headers, Bytes::from(body)).unwrap();
        assert_eq!(events[0].data(), Some(InboundData::Text("café")));

        let null = r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":null}"#;
        let events = decode(&headers, Bytes::from(null)).unwrap();
        assert_eq!(events[0].data().map(|d| d.as_bytes()), Some(&b"null"[..]));

        let bad = r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{},"data":{}}"#;
        let err = decode(&headers, Bytes::from(bad)).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains("duplicate field `data`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn binary_bodies_that_are_not_json_stay_bytes() {
        let events = decode(
            &binary_headers("application/json"),
            Bytes::from_static(b"{nope"),
        )
        .unwrap();
        assert_eq!(events[0].data(), Some(InboundData::Binary(b"{nope")));
        // JSON in shape, but not UTF-8 text: bytes, never JSON text.
        let events = decode(
            &binary_headers("application/json"),
            Bytes::from_static(b"{\"a\":\"\xff\"}"),
        )
        .unwrap();
        assert!(matches!(events[0].data(), Some(InboundData::Binary(_))));
        assert!(std::str::from_utf8(&events[0].to_structured()).is_ok());
        let events = decode(&binary_headers("text/plain"), Bytes::from_static(b"1E2")).unwrap();
        assert_eq!(events[0].data(), Some(InboundData::Binary(b"1E2")));
    }
}
