//! The SQS JSON 1.0 protocol (`X-Amz-Target: AmazonSQS.<Operation>`): request and response
//! shapes, errors in the form the AWS SDKs decode (`__type` in the body, the awsQuery-compatible
//! code in `x-amzn-query-error`), and `call`, which runs an operation. The operations themselves
//! are in one file per family:
//!
//! - `queues.rs`: `GetQueueUrl`, `CreateQueue`, `ListQueues`, `GetQueueAttributes` (and the input
//!   of `PurgeQueue`, which `call` runs itself);
//! - `receive.rs`: `ReceiveMessage`, with the system and message attributes asked for;
//! - `delete.rs`: `DeleteMessage`, `DeleteMessageBatch`;
//! - `visibility.rs`: `ChangeMessageVisibility`, `ChangeMessageVisibilityBatch`;
//! - `send.rs`: `SendMessage`, `SendMessageBatch`, with the checks of each entry;
//! - `batch.rs`: what the batch operations share (entry ids, the successful and failed lists).

mod batch;
mod delete;
mod queues;
mod receive;
mod send;
mod visibility;

use md5::{Digest, Md5};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::App;
use crate::queue::{AttributeValue, ReceiptError};

use delete::{delete_message, delete_message_batch};
use queues::{QueueUrlInput, create_queue, get_queue_attributes, get_queue_url, list_queues};
use receive::receive_message;
use send::{send_message, send_message_batch};
use visibility::{change_message_visibility, change_message_visibility_batch};

/// The operations counted one by one in `/stats` (anything else is `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetQueueUrl,
    GetQueueAttributes,
    ReceiveMessage,
    DeleteMessage,
    DeleteMessageBatch,
    ChangeMessageVisibility,
    ChangeMessageVisibilityBatch,
    SendMessage,
    SendMessageBatch,
    CreateQueue,
    ListQueues,
    PurgeQueue,
    Other,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::GetQueueUrl,
        Op::GetQueueAttributes,
        Op::ReceiveMessage,
        Op::DeleteMessage,
        Op::DeleteMessageBatch,
        Op::ChangeMessageVisibility,
        Op::ChangeMessageVisibilityBatch,
        Op::SendMessage,
        Op::SendMessageBatch,
        Op::CreateQueue,
        Op::ListQueues,
        Op::PurgeQueue,
        Op::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::GetQueueUrl => "GetQueueUrl",
            Op::GetQueueAttributes => "GetQueueAttributes",
            Op::ReceiveMessage => "ReceiveMessage",
            Op::DeleteMessage => "DeleteMessage",
            Op::DeleteMessageBatch => "DeleteMessageBatch",
            Op::ChangeMessageVisibility => "ChangeMessageVisibility",
            Op::ChangeMessageVisibilityBatch => "ChangeMessageVisibilityBatch",
            Op::SendMessage => "SendMessage",
            Op::SendMessageBatch => "SendMessageBatch",
            Op::CreateQueue => "CreateQueue",
            Op::ListQueues => "ListQueues",
            Op::PurgeQueue => "PurgeQueue",
            Op::Other => "Other",
        }
    }

    /// From the `X-Amz-Target` header.
    pub fn from_target(target: &str) -> Op {
        let name = target.strip_prefix("AmazonSQS.").unwrap_or("");
        Op::ALL
            .into_iter()
            .find(|op| *op != Op::Other && op.name() == name)
            .unwrap_or(Op::Other)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// An error answer: HTTP 400, `{"__type": ..., "message": ...}` and `x-amzn-query-error`.
#[derive(Debug)]
pub struct SqsError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    QueueDoesNotExist,
    ReceiptHandleIsInvalid,
    MessageNotInflight,
    EmptyBatchRequest,
    TooManyEntriesInBatchRequest,
    BatchEntryIdsNotDistinct,
    InvalidBatchEntryId,
    BatchRequestTooLong,
    InvalidParameterValue,
    MissingParameter,
    InvalidMessageContents,
    InvalidAttributeName,
    UnknownOperation,
    Serialization,
}

impl ErrorKind {
    /// (`__type`, the awsQuery code for `x-amzn-query-error`, which the SDKs prefer).
    pub fn wire(self) -> (&'static str, Option<&'static str>) {
        match self {
            ErrorKind::QueueDoesNotExist => (
                "com.amazonaws.sqs#QueueDoesNotExist",
                Some("AWS.SimpleQueueService.NonExistentQueue"),
            ),
            ErrorKind::ReceiptHandleIsInvalid => (
                "com.amazonaws.sqs#ReceiptHandleIsInvalid",
                Some("ReceiptHandleIsInvalid"),
            ),
            ErrorKind::MessageNotInflight => (
                "com.amazonaws.sqs#MessageNotInflight",
                Some("AWS.SimpleQueueService.MessageNotInflight"),
            ),
            ErrorKind::EmptyBatchRequest => (
                "com.amazonaws.sqs#EmptyBatchRequest",
                Some("AWS.SimpleQueueService.EmptyBatchRequest"),
            ),
            ErrorKind::TooManyEntriesInBatchRequest => (
                "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
                Some("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
            ),
            ErrorKind::BatchEntryIdsNotDistinct => (
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                Some("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
            ),
            ErrorKind::InvalidBatchEntryId => (
                "com.amazonaws.sqs#InvalidBatchEntryId",
                Some("AWS.SimpleQueueService.InvalidBatchEntryId"),
            ),
            ErrorKind::BatchRequestTooLong => (
                "com.amazonaws.sqs#BatchRequestTooLong",
                Some("AWS.SimpleQueueService.BatchRequestTooLong"),
            ),
            ErrorKind::InvalidParameterValue => (
                "com.amazonaws.sqs#InvalidParameterValueException",
                Some("InvalidParameterValue"),
            ),
            ErrorKind::MissingParameter => (
                "com.amazonaws.sqs#MissingRequiredParameterException",
                Some("MissingParameter"),
            ),
            ErrorKind::InvalidMessageContents => (
                "com.amazonaws.sqs#InvalidMessageContents",
                Some("InvalidMessageContents"),
            ),
            ErrorKind::InvalidAttributeName => (
                "com.amazonaws.sqs#InvalidAttributeName",
                Some("InvalidAttributeName"),
            ),
            ErrorKind::UnknownOperation => {
                ("com.amazon.coral.service#UnknownOperationException", None)
            }
            ErrorKind::Serialization => ("com.amazon.coral.service#SerializationException", None),
        }
    }

    /// The `Code` of a failed batch entry.
    fn entry_code(self) -> &'static str {
        self.wire().1.unwrap_or("InternalError")
    }
}

impl SqsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> SqsError {
        SqsError {
            kind,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"__type": self.kind.wire().0, "message": self.message}))
            .unwrap_or_default()
    }
}

fn missing(parameter: &str) -> SqsError {
    SqsError::new(
        ErrorKind::MissingParameter,
        format!("The request must contain the parameter {parameter}."),
    )
}

fn invalid_value(value: impl std::fmt::Display, parameter: &str, reason: &str) -> SqsError {
    SqsError::new(
        ErrorKind::InvalidParameterValue,
        format!("Value {value} for parameter {parameter} is invalid. Reason: {reason}"),
    )
}

fn receipt_error(error: ReceiptError, handle: &str) -> SqsError {
    match error {
        ReceiptError::Invalid => SqsError::new(
            ErrorKind::ReceiptHandleIsInvalid,
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        ),
        ReceiptError::NotInFlight => SqsError::new(
            ErrorKind::MessageNotInflight,
            "The message referred to isn't in flight.",
        ),
    }
}

pub fn no_such_queue() -> SqsError {
    SqsError::new(
        ErrorKind::QueueDoesNotExist,
        "The specified queue does not exist.",
    )
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// The MD5 of message attributes as SQS computes it: for each attribute in name order, the
/// name, the data type (each as a 4-byte big-endian length and UTF-8 bytes), a transport byte
/// (1 string, 2 binary) and the value (length and bytes).
pub fn md5_of_attributes<'a>(
    attributes: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>,
) -> String {
    fn put(hasher: &mut Md5, bytes: &[u8]) {
        hasher.update((bytes.len() as u32).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Md5::new();
    for (name, value) in attributes {
        put(&mut hasher, name.as_bytes());
        put(&mut hasher, value.data_type.as_bytes());
        if let Some(text) = &value.string_value {
            hasher.update([1u8]);
            put(&mut hasher, text.as_bytes());
        } else if let Some(binary) = &value.binary_value {
            hasher.update([2u8]);
            put(
                &mut hasher,
                &aws_smithy_types::base64::decode(binary).unwrap_or_default(),
            );
        }
    }
    hex::encode(hasher.finalize())
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, SqsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| SqsError::new(ErrorKind::Serialization, e.to_string()))
}

fn to_body(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Runs one operation; `host` (the request's `Host`) makes the queue URLs handed out.
pub async fn call(app: &App, op: Op, body: &[u8], host: &str) -> Result<Vec<u8>, SqsError> {
    match op {
        Op::GetQueueUrl => get_queue_url(app, parse(body)?, host),
        Op::CreateQueue => create_queue(app, parse(body)?, host),
        Op::ListQueues => list_queues(app, parse(body)?, host),
        Op::PurgeQueue => {
            let input: QueueUrlInput = parse(body)?;
            app.queue_of_url(&input.queue_url)?.purge();
            Ok(b"{}".to_vec())
        }
        Op::GetQueueAttributes => get_queue_attributes(app, parse(body)?),
        Op::ReceiveMessage => receive_message(app, parse(body)?).await,
        Op::DeleteMessage => delete_message(app, parse(body)?),
        Op::DeleteMessageBatch => delete_message_batch(app, parse(body)?),
        Op::ChangeMessageVisibility => change_message_visibility(app, parse(body)?),
        Op::ChangeMessageVisibilityBatch => change_message_visibility_batch(app, parse(body)?),
        Op::SendMessage => send_message(app, parse(body)?),
        Op::SendMessageBatch => send_message_batch(app, parse(body)?),
        Op::Other => Err(SqsError::new(
            ErrorKind::UnknownOperation,
            "operation not supported by the stand-in",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::receive::attribute_selected;
    use super::send::valid_contents;
    use super::*;
    use crate::queue::Attributes;

    #[test]
    fn md5s_match_sqs() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        let mut attributes = Attributes::new();
        let text = |t: &str, v: &str| AttributeValue {
            data_type: t.into(),
            string_value: Some(v.into()),
            ..Default::default()
        };
        attributes.insert("ce_type".into(), text("String", "com.example.created"));
        attributes.insert("n".into(), text("Number", "7"));
        attributes.insert(
            "blob".into(),
            AttributeValue {
                data_type: "Binary".into(),
                binary_value: Some("AAH/".into()),
                ..Default::default()
            },
        );
        // Computed with moto's `Message.attribute_md5` algorithm (Python hashlib).
        assert_eq!(
            md5_of_attributes(&attributes),
            "a5563c1040d0c82f547f812b31ef7271"
        );
    }

    #[test]
    fn operations_and_patterns() {
        assert_eq!(
            Op::from_target("AmazonSQS.ReceiveMessage"),
            Op::ReceiveMessage
        );
        assert_eq!(Op::from_target("AmazonSQS.Other"), Op::Other);
        assert_eq!(Op::from_target("ReceiveMessage"), Op::Other);
        for op in Op::ALL {
            assert_eq!(Op::ALL[op.index()], op);
        }
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(attribute_selected(&p(&["All"]), "x"));
        assert!(attribute_selected(&p(&[".*"]), "x"));
        assert!(attribute_selected(&p(&["ce.*"]), "ce.type"));
        assert!(!attribute_selected(&p(&["ce.*"]), "cex"));
        assert!(attribute_selected(&p(&["a", "b"]), "b"));
        assert!(!attribute_selected(&p(&["a"]), "ab"));
        assert!(valid_contents("{\"a\":\n\"é\"}"));
        assert!(!valid_contents("a\u{1}b"));
    }
}
