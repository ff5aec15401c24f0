//! Events made from plain SQS messages, as TriggerMesh's `AWSSQSSource` made them: the
//! `default` processor's `com.amazon.sqs.message` (the whole message object as data, message
//! attributes as `sqsmsg…` extensions) and the `eventbridge` processor's
//! `com.amazon.events.event`.

use std::borrow::Cow;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::aws::arn::QueueArn;
use crate::cloudevents::OutEvent;

/// TriggerMesh's `CE_SOURCE` / `CE_TYPE` overrides.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub source: Option<&'a str>,
    pub ty: Option<&'a str>,
}

/// The extension name of a message attribute: `sqsmsg` + the name lowercased, without any
/// character that is not a letter or digit (CloudEvents extension names are `[a-z0-9]`).
pub fn extension_name(attribute: &str) -> String {
    let mut name = String::from("sqsmsg");
    name.extend(
        attribute
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
    name
}

fn sent_time(message: &Message) -> Option<DateTime<Utc>> {
    message
        .attributes
        .as_ref()?
        .get(&MessageSystemAttributeName::SentTimestamp)?
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
}

/// The message object (`MessageId`, `ReceiptHandle`, `MD5OfBody`, `Body`, `Attributes`,
/// `MessageAttributes`, ...) as JSON, with a JSON `Body` embedded as it is, else as a string.
pub fn message_object(message: &Message) -> Vec<u8> {
    let mut object = Map::new();
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    object.insert("MessageId".into(), text(&message.message_id));
    object.insert("ReceiptHandle".into(), text(&message.receipt_handle));
    object.insert("MD5OfBody".into(), text(&message.md5_of_body));
    object.insert(
        "MD5OfMessageAttributes".into(),
        text(&message.md5_of_message_attributes),
    );
    let attributes: Map<String, Value> = message
        .attributes
        .iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_string(), Value::String(value.clone())))
        .collect();
    object.insert("Attributes".into(), Value::Object(attributes));
    let message_attributes: Map<String, Value> = message
        .message_attributes
        .iter()
        .flatten()
        .map(|(name, value)| {
            let mut attribute = Map::new();
            attribute.insert("DataType".into(), json!(value.data_type()));
            if let Some(text) = value.string_value() {
                attribute.insert("StringValue".into(), json!(text));
            }
            if let Some(bytes) = value.binary_value() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes.as_ref());
                attribute.insert("BinaryValue".into(), json!(encoded));
            }
            (name.clone(), Value::Object(attribute))
        })
        .collect();
    object.insert(
        "MessageAttributes".into(),
        Value::Object(message_attributes),
    );
    // `Body` last, spliced in as raw JSON when it is JSON: the sender's bytes, unchanged.
    let mut out = serde_json::to_vec(&object).expect("a map of strings serializes");
    out.pop();
    out.extend_from_slice(b",\"Body\":");
    let body = message.body.as_deref().unwrap_or("");
    match serde_json::from_str::<&RawValue>(body) {
        Ok(raw) => out.extend_from_slice(raw.get().as_bytes()),
        Err(_) => out.extend_from_slice(&serde_json::to_vec(body).expect("a string serializes")),
    }
    out.push(b'}');
    out
}

/// The `default` processor's event for any message.
pub fn message_event(queue: &QueueArn, message: &Message, overrides: Overrides<'_>) -> OutEvent {
    let extensions = message
        .message_attributes
        .iter()
        .flatten()
        .filter(|(_, value)| !value.data_type().starts_with("Binary"))
        .filter_map(|(name, value)| {
            let value = value.string_value()?.to_string();
            Some((Cow::Owned(extension_name(name)), value))
        })
        .collect();
    OutEvent {
        id: message.message_id.clone().unwrap_or_default(),
        source: overrides
            .source
            .map_or_else(|| queue.to_string(), str::to_string),
        ty: overrides.ty.unwrap_or("com.amazon.sqs.message").to_string(),
        subject: None,
        time: sent_time(message),
        datacontenttype: "application/json",
        extensions,
        data: Bytes::from(message_object(message)),
    }
}

/// The `eventbridge` processor's event, when the body is an EventBridge event (`detail`,
/// `detail-type` and `source`); `None` otherwise.
pub fn eventbridge_event(
    queue: &QueueArn,
    message: &Message,
    overrides: Overrides<'_>,
) -> Option<OutEvent> {
    let body = message.body.as_deref()?;
    let event: Value = serde_json::from_str(body).ok()?;
    let detail_type = event.get("detail-type")?.as_str()?;
    let event_source = event.get("source")?.as_str()?;
    event.get("detail")?;
    let time = event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| sent_time(message));
    Some(OutEvent {
        id: event
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| message.message_id.clone())
            .unwrap_or_default(),
        source: overrides
            .source
            .map_or_else(|| queue.to_string(), str::to_string),
        ty: "com.amazon.events.event".into(),
        subject: None,
        time,
        datacontenttype: "application/json",
        extensions: vec![
            ("awseventssource".into(), event_source.to_string()),
            ("awseventsdetailtype".into(), detail_type.to_string()),
        ],
        data: Bytes::from(body.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;

    use super::*;

    fn queue() -> QueueArn {
        "arn:aws:sqs:us-east-1:123456789012:orders".parse().unwrap()
    }

    fn attribute(
        data_type: &str,
        text: Option<&str>,
        bytes: Option<&[u8]>,
    ) -> MessageAttributeValue {
        let mut builder = MessageAttributeValue::builder().data_type(data_type);
        if let Some(text) = text {
            builder = builder.string_value(text);
        }
        if let Some(bytes) = bytes {
            builder = builder.binary_value(Blob::new(bytes));
        }
        builder.build().unwrap()
    }

    fn message(body: &str) -> Message {
        Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .md5_of_body("md5")
            .body(body)
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes("Customer-ID", attribute("String", Some("c 42"), None))
            .message_attributes("Total.Cents", attribute("Number", Some("1250"), None))
            .message_attributes("thumb", attribute("Binary", None, Some(b"\x00\x01")))
            .build()
    }

    #[test]
    fn the_default_event_carries_the_message_and_its_text_attributes() {
        let body = r#"{"order": 7, "big": 12345678901234567890123}"#;
        let event = message_event(&queue(), &message(body), Overrides::default());
        assert_eq!(event.id, "m-1");
        assert_eq!(event.ty, "com.amazon.sqs.message");
        assert_eq!(event.source, "arn:aws:sqs:us-east-1:123456789012:orders");
        let mut extensions = event.extensions.clone();
        extensions.sort();
        assert_eq!(
            extensions,
            [
                ("sqsmsgcustomerid".into(), "c 42".to_string()),
                ("sqsmsgtotalcents".into(), "1250".to_string())
            ]
        );
        let data = String::from_utf8(event.data.to_vec()).unwrap();
        assert!(data.ends_with(&format!(",\"Body\":{body}}}")), "{data}");
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data["MessageId"], "m-1");
        assert_eq!(data["ReceiptHandle"], "r-1");
        assert_eq!(data["Attributes"]["SentTimestamp"], "1700000000000");
        assert_eq!(data["MessageAttributes"]["thumb"]["BinaryValue"], "AAE=");
        assert_eq!(
            data["MessageAttributes"]["Total.Cents"]["DataType"],
            "Number"
        );

        let text = message_event(&queue(), &message("plain \"text\""), Overrides::default());
        let data: Value = serde_json::from_slice(&text.data).unwrap();
        assert_eq!(data["Body"], "plain \"text\"");

        let overridden = Overrides {
            source: Some("my-source"),
            ty: Some("my.type"),
        };
        let event = message_event(&queue(), &message("x"), overridden);
        assert_eq!(
            (event.source.as_str(), event.ty.as_str()),
            ("my-source", "my.type")
        );
    }

    #[test]
    fn eventbridge_bodies_become_eventbridge_events_and_others_do_not() {
        let body = r#"{"version":"0","id":"e-9","detail-type":"Order Placed","source":"com.shop","account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":[],"detail":{"order":7}}"#;
        let event = eventbridge_event(&queue(), &message(body), Overrides::default()).unwrap();
        assert_eq!(event.id, "e-9");
        assert_eq!(event.ty, "com.amazon.events.event");
        assert_eq!(
            event.time.unwrap().to_rfc3339(),
            "2026-12-01T10:00:00+00:00"
        );
        assert_eq!(
            event.extensions,
            [
                ("awseventssource".into(), "com.shop".to_string()),
                ("awseventsdetailtype".into(), "Order Placed".to_string())
            ]
        );
        assert_eq!(&event.data[..], body.as_bytes());
        assert!(
            eventbridge_event(&queue(), &message(r#"{"a":1}"#), Overrides::default()).is_none()
        );
        assert!(eventbridge_event(&queue(), &message("text"), Overrides::default()).is_none());
    }
}
