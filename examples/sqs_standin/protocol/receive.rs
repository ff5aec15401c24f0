//! `ReceiveMessage`: its limits (1 to 10 messages, `WaitTimeSeconds`, `VisibilityTimeout`), and
//! the system attributes and message attributes (with their MD5) a receive asked for.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::queue::{AttributeValue, Queue, Received};

use super::*;

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ReceiveMessageInput {
    queue_url: String,
    max_number_of_messages: Option<i64>,
    wait_time_seconds: Option<i64>,
    visibility_timeout: Option<i64>,
    attribute_names: Vec<String>,
    message_system_attribute_names: Vec<String>,
    message_attribute_names: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageOutput<'a> {
    message_id: &'a str,
    receipt_handle: &'a str,
    #[serde(rename = "MD5OfBody")]
    md5_of_body: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<&'static str, Cow<'a, str>>,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_of_message_attributes: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    message_attributes: BTreeMap<&'a String, &'a AttributeValue>,
}

/// Which message attributes a receive asked for: `All`, `.*`, `prefix.*` or exact names.
pub(super) fn attribute_selected(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|pattern| {
        pattern == "All"
            || pattern == ".*"
            || pattern == name
            || pattern.strip_suffix('*').is_some_and(|prefix| {
                prefix.ends_with('.') && name.starts_with(prefix) && !prefix.is_empty()
            })
    })
}

fn system_attributes<'a>(
    queue: &Queue,
    message: &'a Received,
    wanted: &[&String],
) -> BTreeMap<&'static str, Cow<'a, str>> {
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return out;
    }
    let all = wanted.iter().any(|n| *n == "All");
    let wants = |name: &str| all || wanted.iter().any(|n| *n == name);
    let mut put = |name: &'static str, value: Cow<'a, str>| {
        if wants(name) {
            out.insert(name, value);
        }
    };
    put("SenderId", Cow::Borrowed("AIDASQSSTANDINEXAMPLE"));
    put("SentTimestamp", message.sent_ms.to_string().into());
    put(
        "ApproximateReceiveCount",
        message.receive_count.to_string().into(),
    );
    put(
        "ApproximateFirstReceiveTimestamp",
        message.first_receive_ms.to_string().into(),
    );
    if queue.fifo {
        if let Some(group) = &message.group_id {
            put("MessageGroupId", Cow::Borrowed(&**group));
        }
        if let Some(dedup) = &message.deduplication_id {
            put("MessageDeduplicationId", Cow::Borrowed(&**dedup));
        }
        if let Some(sequence) = &message.sequence_number {
            put("SequenceNumber", Cow::Borrowed(&**sequence));
        }
    }
    out
}

pub(super) async fn receive_message(
    app: &App,
    input: ReceiveMessageInput,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    let max = input.max_number_of_messages.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(invalid_value(
            max,
            "MaxNumberOfMessages",
            "Must be between 1 and 10, if provided.",
        ));
    }
    let wait = input
        .wait_time_seconds
        .unwrap_or(i64::from(queue.settings.receive_wait_seconds));
    if !(0..=20).contains(&wait) {
        return Err(invalid_value(
            wait,
            "WaitTimeSeconds",
            "Must be >= 0 and <= 20, if provided.",
        ));
    }
    let visibility = input
        .visibility_timeout
        .unwrap_or(i64::from(queue.settings.visibility_timeout));
    if !(0..=43_200).contains(&visibility) {
        return Err(invalid_value(
            visibility,
            "VisibilityTimeout",
            "Must be >= 0 and <= 43200, if provided.",
        ));
    }
    let messages = queue
        .receive(
            max as usize,
            Duration::from_secs(visibility as u64),
            Duration::from_secs(wait as u64),
        )
        .await;
    if messages.is_empty() {
        return Ok(b"{}".to_vec());
    }
    let wanted: Vec<&String> = input
        .attribute_names
        .iter()
        .chain(&input.message_system_attribute_names)
        .collect();
    let output: Vec<MessageOutput<'_>> = messages
        .iter()
        .map(|message| {
            let (message_attributes, md5_of_message_attributes) = match (
                &message.attributes,
                input.message_attribute_names.is_empty(),
            ) {
                (Some(attributes), false) => {
                    let (all, md5) = &**attributes;
                    let selected: BTreeMap<&String, &AttributeValue> = all
                        .iter()
                        .filter(|(name, _)| {
                            attribute_selected(&input.message_attribute_names, name)
                        })
                        .collect();
                    let md5: Option<Cow<'_, str>> = if selected.is_empty() {
                        None
                    } else if selected.len() == all.len() {
                        Some(Cow::Borrowed(md5.as_str()))
                    } else {
                        Some(md5_of_attributes(selected.iter().map(|(k, v)| (*k, *v))).into())
                    };
                    (selected, md5)
                }
                _ => (BTreeMap::new(), None),
            };
            MessageOutput {
                message_id: &message.message_id,
                receipt_handle: &message.receipt_handle,
                md5_of_body: &message.md5_of_body,
                body: &message.body,
                attributes: system_attributes(&queue, message, &wanted),
                md5_of_message_attributes,
                message_attributes,
            }
        })
        .collect();
    Ok(to_body(&json!({"Messages": output})))
}
