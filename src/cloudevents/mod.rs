//! CloudEvents on the wire: the outgoing event model of the adapter and its HTTP encodings
//! (binary and structured mode), plus the percent-encoding rules of the HTTP binding.
//!
//! Outgoing events are encoded here rather than through cloudevents-sdk for two reasons: the SDK
//! does not percent-encode `ce-` header values as the HTTP binding (§3.1.3.2) requires, and S3
//! object keys carry exactly the characters that need it; and structured mode must embed the S3
//! record *as S3 sent it*, byte for byte, where the SDK would re-serialize it. Incoming events
//! (the `display` sink, the targets) are decoded with cloudevents-sdk and [`decode_header_value`].

pub mod inbound;
pub mod trace;

use std::borrow::Cow;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::value::RawValue;

/// How an event is written in an HTTP request (CloudEvents HTTP binding modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Attributes in `ce-` headers, data as the body.
    Binary,
    /// The whole event as one `application/cloudevents+json` document.
    Structured,
}

/// An event the adapter sends. `data` is opaque bytes described by `datacontenttype`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub subject: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub datacontenttype: &'static str,
    /// Extension attributes (lowercase alphanumeric names; most are constants, an SQS
    /// message's attributes are not).
    pub extensions: Vec<(Cow<'static, str>, String)>,
    pub data: Bytes,
}

/// A ready-to-send HTTP request body and headers; cheap to clone for retries.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// HTTP binding §3.1.3.2: space, `"`, `%` and everything outside U+0021–U+007E is
/// percent-encoded (`CONTROLS` covers U+0000–U+001F and U+007F; non-ASCII is always encoded).
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Encodes an attribute value for a `ce-` header.
pub fn encode_header_value(value: &str) -> HeaderValue {
    // Borrowed when nothing needs escaping (the common case): no formatting machinery.
    let encoded: std::borrow::Cow<'_, str> = utf8_percent_encode(value, HEADER_VALUE).into();
    // Only visible ASCII remains, which is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Decodes a `ce-` header value; invalid UTF-8 after decoding is replaced, never an error.
pub fn decode_header_value(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl OutEvent {
    pub fn encode(&self, encoding: Encoding) -> EncodedEvent {
        match encoding {
            Encoding::Binary => self.encode_binary(),
            Encoding::Structured => self.encode_structured(),
        }
    }

    fn encode_binary(&self) -> EncodedEvent {
        let mut headers = HeaderMap::with_capacity(8 + self.extensions.len());
        // The context attributes' header names are constants: this runs for every event, and
        // building and validating each name showed in the profiles.
        headers.insert(
            HeaderName::from_static("ce-specversion"),
            HeaderValue::from_static("1.0"),
        );
        let mut put = |name: HeaderName, value: &str| {
            headers.insert(name, encode_header_value(value));
        };
        put(HeaderName::from_static("ce-id"), &self.id);
        put(HeaderName::from_static("ce-source"), &self.source);
        put(HeaderName::from_static("ce-type"), &self.ty);
        if let Some(subject) = &self.subject {
            put(HeaderName::from_static("ce-subject"), subject);
        }
        if let Some(time) = &self.time {
            put(HeaderName::from_static("ce-time"), &format_time(time));
        }
        for (name, value) in &self.extensions {
            if let Ok(name) = HeaderName::from_bytes(format!("ce-{name}").as_bytes()) {
                put(name, value);
            }
            // The distributed-tracing extension is W3C's header too, which HTTP tooling (and
            // Knative) read.
            if name == "traceparent" {
                put(HeaderName::from_static("traceparent"), value);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.datacontenttype));
        EncodedEvent {
            headers,
            body: self.data.clone(),
        }
    }

    fn encode_structured(&self) -> EncodedEvent {
        let mut doc = serde_json::Map::new();
        let mut put = |name: &str, value: &str| {
            doc.insert(
                name.to_string(),
                serde_json::Value::String(value.to_string()),
            );
        };
        put("specversion", "1.0");
        put("id", &self.id);
        put("source", &self.source);
        put("type", &self.ty);
        if let Some(subject) = &self.subject {
            put("subject", subject);
        }
        if let Some(time) = &self.time {
            put("time", &format_time(time));
        }
        put("datacontenttype", self.datacontenttype);
        for (name, value) in &self.extensions {
            put(name, value);
        }
        // Attributes are serialized by serde_json; `data` is spliced in as raw JSON when it is
        // JSON, so the record reaches the sink exactly as S3 wrote it.
        let mut body = serde_json::to_vec(&doc).unwrap_or_default();
        body.pop(); // the closing brace
        let is_json = self.datacontenttype.ends_with("json")
            && serde_json::from_slice::<&RawValue>(&self.data).is_ok();
        if is_json {
            body.extend_from_slice(b",\"data\":");
            body.extend_from_slice(&self.data);
        } else {
            let text = String::from_utf8_lossy(&self.data);
            body.extend_from_slice(b",\"data\":");
            body.extend_from_slice(&serde_json::to_vec(&text).unwrap_or_default());
        }
        body.push(b'}');
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents+json"),
        );
        EncodedEvent {
            headers,
            body: Bytes::from(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::{AttributesReader, Event};

    fn sample() -> OutEvent {
        OutEvent {
            id: "abc".into(),
            source: "arn:aws:s3:::bucket".into(),
            ty: "com.amazon.s3.objectcreated".into(),
            subject: Some("dir/a b+c%d\"é😀.txt".into()),
            time: Some("2026-11-28T12:34:56.789Z".parse().unwrap()),
            datacontenttype: "application/json",
            extensions: vec![],
            data: Bytes::from_static(br#"{"b": 1, "a": [2]}"#),
        }
    }

    #[test]
    fn binary_mode_percent_encodes_header_values() {
        let encoded = sample().encode(Encoding::Binary);
        let subject = encoded.headers["ce-subject"].to_str().unwrap();
        assert_eq!(subject, "dir/a%20b+c%25d%22%C3%A9%F0%9F%98%80.txt");
        assert_eq!(decode_header_value(subject), "dir/a b+c%d\"é😀.txt");
        assert_eq!(encoded.headers["ce-time"], "2026-11-28T12:34:56.789Z");
        assert_eq!(encoded.headers["content-type"], "application/json");
        assert_eq!(&encoded.body[..], br#"{"b": 1, "a": [2]}"#);
    }

    #[test]
    fn structured_mode_keeps_data_bytes_and_parses_as_cloudevent() {
        let encoded = sample().encode(Encoding::Structured);
        let text = std::str::from_utf8(&encoded.body).unwrap();
        assert!(text.ends_with(r#","data":{"b": 1, "a": [2]}}"#), "{text}");
        let event: Event = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(event.subject(), Some("dir/a b+c%d\"é😀.txt"));
        assert_eq!(event.ty(), "com.amazon.s3.objectcreated");
    }

    #[test]
    fn structured_mode_wraps_non_json_data_as_a_string() {
        let mut event = sample();
        event.datacontenttype = "text/plain";
        event.data = Bytes::from_static(b"this is not json");
        let encoded = event.encode(Encoding::Structured);
        let value: serde_json::Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(value["data"], "this is not json");
    }
}
