//! `SendMessage` and `SendMessageBatch`: the checks of each entry (size, characters, delay,
//! message attributes, FIFO group), the MD5s as SQS computes them, and the batch size limit.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::App;
use crate::queue::{Attributes, NewMessage, Queue};

use super::batch::*;
use super::*;

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct SendEntry {
    id: String,
    queue_url: String,
    message_body: Option<String>,
    delay_seconds: Option<i64>,
    message_attributes: Attributes,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
}

#[derive(Serialize)]
struct SendOutput<'a> {
    #[serde(rename = "Id", skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(rename = "MessageId")]
    message_id: &'a str,
    #[serde(rename = "MD5OfMessageBody")]
    md5_of_message_body: &'a str,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_of_message_attributes: Option<&'a str>,
    #[serde(rename = "SequenceNumber", skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
}

/// SQS accepts #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
pub(super) fn valid_contents(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    })
}

/// The bytes an entry counts against the maximum message size.
fn entry_size(entry: &SendEntry) -> usize {
    let body = entry.message_body.as_deref().map_or(0, str::len);
    body + entry
        .message_attributes
        .iter()
        .map(|(name, value)| {
            name.len()
                + value.data_type.len()
                + value.string_value.as_deref().map_or(0, str::len)
                + value.binary_value.as_deref().map_or(0, |b| b.len() / 4 * 3)
        })
        .sum::<usize>()
}

/// Checks one entry and turns it into a message (or the reason it is refused).
fn new_message(queue: &Queue, entry: &mut SendEntry) -> Result<NewMessage, SqsError> {
    let body = match entry.message_body.take() {
        Some(body) if !body.is_empty() => body,
        _ => return Err(missing("MessageBody")),
    };
    let size = body.len() + entry_size(entry); // the body was taken out of the entry
    let max = queue.settings.max_message_size;
    if size > max {
        return Err(SqsError::new(
            ErrorKind::InvalidParameterValue,
            format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
            ),
        ));
    }
    if !valid_contents(&body) {
        return Err(SqsError::new(
            ErrorKind::InvalidMessageContents,
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    let delay = entry.delay_seconds.unwrap_or(0);
    if !(0..=900).contains(&delay) {
        return Err(invalid_value(
            delay,
            "DelaySeconds",
            "Must be >= 0 and <= 900, if provided.",
        ));
    }
    if entry.message_attributes.len() > 10 {
        return Err(SqsError::new(
            ErrorKind::InvalidParameterValue,
            "Number of message attributes [11] exceeds the allowed maximum [10].",
        ));
    }
    for (name, value) in &entry.message_attributes {
        let kind = value.data_type.split('.').next().unwrap_or("");
        let ok = match kind {
            "String" | "Number" => value.string_value.is_some(),
            "Binary" => value
                .binary_value
                .as_deref()
                .is_some_and(|b| aws_smithy_types::base64::decode(b).is_ok()),
            _ => false,
        };
        if name.is_empty() || !ok {
            return Err(SqsError::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "The message attribute '{name}' must contain a non-empty value of message attribute type '{}'.",
                    value.data_type
                ),
            ));
        }
    }
    if queue.fifo && entry.message_group_id.is_none() {
        return Err(missing("MessageGroupId"));
    }
    let md5_of_body = md5_hex(body.as_bytes());
    let attributes = std::mem::take(&mut entry.message_attributes);
    let attributes = (!attributes.is_empty()).then(|| {
        let md5 = md5_of_attributes(&attributes);
        Arc::new((attributes, md5))
    });
    Ok(NewMessage {
        body: body.into(),
        md5_of_body: md5_of_body.into(),
        attributes,
        delay: Duration::from_secs(delay as u64),
        group_id: entry.message_group_id.take().map(Into::into),
        deduplication_id: entry.message_deduplication_id.take().map(Into::into),
    })
}

pub(super) fn send_message(app: &App, mut input: SendEntry) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    let message = new_message(&queue, &mut input)?;
    let md5_of_body = message.md5_of_body.clone();
    let md5_of_attributes = message.attributes.clone();
    let sent = queue.send(vec![message], false);
    let sent = &sent[0];
    Ok(to_body(&SendOutput {
        id: "",
        message_id: &sent.message_id,
        md5_of_message_body: &md5_of_body,
        md5_of_message_attributes: md5_of_attributes.as_ref().map(|a| a.1.as_str()),
        sequence_number: sent.sequence_number.as_deref(),
    }))
}

pub(super) fn send_message_batch(
    app: &App,
    input: BatchInput<SendEntry>,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let total: usize = input.entries.iter().map(entry_size).sum();
    let max = queue.settings.max_message_size;
    if total > max {
        return Err(SqsError::new(
            ErrorKind::BatchRequestTooLong,
            format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let mut entries = input.entries;
    let mut failed = Vec::new();
    let mut accepted = Vec::new();
    let mut messages = Vec::new();
    for entry in &mut entries {
        match new_message(&queue, entry) {
            Ok(message) => {
                accepted.push((
                    entry.id.as_str(),
                    message.md5_of_body.clone(),
                    message.attributes.clone(),
                ));
                messages.push(message);
            }
            Err(error) => failed.push(Failed::new(&entry.id, error)),
        }
    }
    let sent = if messages.is_empty() {
        Vec::new()
    } else {
        queue.send(messages, false)
    };
    let successful: Vec<SendOutput<'_>> = accepted
        .iter()
        .zip(&sent)
        .map(|((id, md5_of_body, attributes), sent)| SendOutput {
            id,
            message_id: &sent.message_id,
            md5_of_message_body: md5_of_body,
            md5_of_message_attributes: attributes.as_ref().map(|a| a.1.as_str()),
            sequence_number: sent.sequence_number.as_deref(),
        })
        .collect();
    Ok(batch_output(successful, failed))
}
