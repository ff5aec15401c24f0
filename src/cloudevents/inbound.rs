//! Decoding CloudEvents from HTTP requests in binary, structured and batch mode, with the
//! percent-decoding of `ce-` header values that cloudevents-sdk leaves to the caller.

use bytes::Bytes;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Event};
use http::HeaderMap;
use http::header::CONTENT_TYPE;

use super::decode_header_value;

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

/// Decodes one request into its events (one, or several in batch mode).
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Vec<Event>, DecodeError> {
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
        return Ok(vec![json_data_as_json(percent_decode_attributes(event))]);
    }
    match content_type.as_deref() {
        Some("application/cloudevents+json") => serde_json::from_slice::<Event>(&body)
            .map(|event| vec![event])
            .map_err(|err| bad_request(format!("invalid structured-mode CloudEvent: {err}"))),
        Some("application/cloudevents-batch+json") => serde_json::from_slice::<Vec<Event>>(&body)
            .map_err(|err| bad_request(format!("invalid batch of CloudEvents: {err}"))),
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

/// cloudevents-sdk keeps a binary-mode body as bytes whatever its type; JSON data is JSON,
/// so that re-encoding the event (structured mode) gives `data`, not `data_base64`.
fn json_data_as_json(mut event: Event) -> Event {
    // The same rule as cloudevents-sdk's, so what is turned into JSON here is read back as JSON
    // by the SDK's structured decoder (and everything else stays bytes).
    let is_json = event.datacontenttype().is_some_and(|t| {
        t.starts_with("application/json") || t.starts_with("text/json") || t.ends_with("+json")
    });
    if is_json
        && let Some(cloudevents::Data::Binary(bytes)) = event.data()
        && let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes)
    {
        let content_type = event.datacontenttype().map(str::to_string);
        event.set_data_unchecked(cloudevents::Data::Json(json));
        event.set_datacontenttype(content_type);
    }
    event
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
            extensions: vec![("knativeerrorcode", "503 busy".into())],
            data: Bytes::from_static(b"{}"),
        };
        let encoded = out.encode(Encoding::Binary);
        let events = decode(&encoded.headers, encoded.body).unwrap();
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
        let structured = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(structured["data"]["a"], 1, "{structured}");
        assert!(structured.get("data_base64").is_none());
    }

    #[test]
    fn a_ce_data_header_is_refused_and_odd_json_types_stay_bytes() {
        let mut headers = binary_headers("application/vnd.api+json; charset=utf-8");
        let events = decode(&headers, Bytes::from_static(br#"{"a":1}"#)).unwrap();
        let structured = serde_json::to_vec(&events[0]).unwrap();
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
}
