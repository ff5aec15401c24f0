//! The SQS JSON 1.0 protocol (`X-Amz-Target: AmazonSQS.<Operation>`): request and response
//! shapes, errors in the form the AWS SDKs decode (`__type` in the body, the awsQuery-compatible
//! code in `x-amzn-query-error`), and one function per operation.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::queue::{AttributeValue, Attributes, NewMessage, Queue, ReceiptError, Received};

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

// ---- queues ----

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GetQueueUrlInput {
    queue_name: String,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    queue_owner_aws_account_id: Option<String>,
}

fn get_queue_url(app: &App, input: GetQueueUrlInput, host: &str) -> Result<Vec<u8>, SqsError> {
    if input.queue_name.is_empty() {
        return Err(missing("QueueName"));
    }
    let queue = app
        .queue(&input.queue_name)
        .filter(|q| {
            input
                .queue_owner_aws_account_id
                .as_ref()
                .is_none_or(|account| *account == q.account)
        })
        .ok_or_else(no_such_queue)?;
    Ok(to_body(&json!({"QueueUrl": app.url_of(&queue, host)})))
}

pub fn no_such_queue() -> SqsError {
    SqsError::new(
        ErrorKind::QueueDoesNotExist,
        "The specified queue does not exist.",
    )
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateQueueInput {
    queue_name: String,
    attributes: HashMap<String, String>,
}

fn create_queue(app: &App, input: CreateQueueInput, host: &str) -> Result<Vec<u8>, SqsError> {
    let name = input.queue_name.as_str();
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty()
        || name.len() > 80
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SqsError::new(
            ErrorKind::InvalidParameterValue,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    let mut settings = app.defaults;
    for (key, value) in &input.attributes {
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| invalid_value(value, key, "not a number"))
        };
        match key.as_str() {
            "VisibilityTimeout" => settings.visibility_timeout = number()?.min(43_200) as u32,
            "ReceiveMessageWaitTimeSeconds" => {
                settings.receive_wait_seconds = number()?.min(20) as u32
            }
            "MaximumMessageSize" => settings.max_message_size = number()? as usize,
            "FifoQueue" if (value == "true") != name.ends_with(".fifo") => {
                return Err(SqsError::new(
                    ErrorKind::InvalidParameterValue,
                    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix",
                ));
            }
            _ => {} // accepted and ignored
        }
    }
    let queue = app.create_queue(name, settings);
    Ok(to_body(&json!({"QueueUrl": app.url_of(&queue, host)})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListQueuesInput {
    queue_name_prefix: String,
}

fn list_queues(app: &App, input: ListQueuesInput, host: &str) -> Result<Vec<u8>, SqsError> {
    let urls: Vec<String> = app
        .queues()
        .iter()
        .filter(|q| q.name.starts_with(&input.queue_name_prefix))
        .map(|q| app.url_of(q, host))
        .collect();
    Ok(to_body(&json!({"QueueUrls": urls})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct QueueUrlInput {
    queue_url: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GetQueueAttributesInput {
    queue_url: String,
    attribute_names: Vec<String>,
}

fn get_queue_attributes(app: &App, input: GetQueueAttributesInput) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    let (visible, in_flight, delayed) = queue.depth();
    let settings = &queue.settings;
    let mut all: Vec<(&str, String)> = vec![
        ("ApproximateNumberOfMessages", visible.to_string()),
        (
            "ApproximateNumberOfMessagesNotVisible",
            in_flight.to_string(),
        ),
        ("ApproximateNumberOfMessagesDelayed", delayed.to_string()),
        ("CreatedTimestamp", queue.created_s.to_string()),
        ("DelaySeconds", "0".into()),
        ("LastModifiedTimestamp", queue.created_s.to_string()),
        ("MaximumMessageSize", settings.max_message_size.to_string()),
        ("MessageRetentionPeriod", "345600".into()),
        ("QueueArn", queue.arn.clone()),
        (
            "ReceiveMessageWaitTimeSeconds",
            settings.receive_wait_seconds.to_string(),
        ),
        ("SqsManagedSseEnabled", "false".into()),
        ("VisibilityTimeout", settings.visibility_timeout.to_string()),
    ];
    if queue.fifo {
        all.push(("FifoQueue", "true".into()));
        all.push(("ContentBasedDeduplication", "false".into()));
    }
    const KNOWN_UNSET: [&str; 9] = [
        "Policy",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "FifoQueue",
        "ContentBasedDeduplication",
    ];
    let wants_all = input.attribute_names.iter().any(|n| n == "All");
    let mut out = BTreeMap::new();
    for (name, value) in all {
        if wants_all || input.attribute_names.iter().any(|n| n == name) {
            out.insert(name, value);
        }
    }
    if let Some(unknown) = input.attribute_names.iter().find(|n| {
        *n != "All" && !out.contains_key(n.as_str()) && !KNOWN_UNSET.contains(&n.as_str())
    }) {
        return Err(SqsError::new(
            ErrorKind::InvalidAttributeName,
            format!("Unknown Attribute {unknown}."),
        ));
    }
    if out.is_empty() {
        return Ok(b"{}".to_vec());
    }
    Ok(to_body(&json!({"Attributes": out})))
}

// ---- receive ----

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ReceiveMessageInput {
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
fn attribute_selected(patterns: &[String], name: &str) -> bool {
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

async fn receive_message(app: &App, input: ReceiveMessageInput) -> Result<Vec<u8>, SqsError> {
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

// ---- delete and visibility ----

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DeleteMessageInput {
    queue_url: String,
    receipt_handle: String,
}

fn delete_message(app: &App, input: DeleteMessageInput) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    if input.receipt_handle.is_empty() {
        return Err(missing("ReceiptHandle"));
    }
    match queue.delete(&[&input.receipt_handle]).pop() {
        Some(Err(error)) => Err(receipt_error(error, &input.receipt_handle)),
        _ => Ok(b"{}".to_vec()),
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BatchInput<E> {
    queue_url: String,
    entries: Vec<E>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ReceiptEntry {
    id: String,
    receipt_handle: String,
    visibility_timeout: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Failed<'a> {
    id: &'a str,
    sender_fault: bool,
    code: &'static str,
    message: String,
}

impl<'a> Failed<'a> {
    fn new(id: &'a str, error: SqsError) -> Failed<'a> {
        Failed {
            id,
            sender_fault: true,
            code: error.kind.entry_code(),
            message: error.message,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Successful<'a> {
    id: &'a str,
}

/// Ids: 1 to 10 entries, distinct, alphanumeric, `-` and `_`, at most 80 characters.
fn check_batch<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<(), SqsError> {
    match ids.len() {
        0 => {
            return Err(SqsError::new(
                ErrorKind::EmptyBatchRequest,
                "There should be at least one entry in the request.",
            ));
        }
        n if n > 10 => {
            return Err(SqsError::new(
                ErrorKind::TooManyEntriesInBatchRequest,
                format!("Maximum number of entries per request are 10. You have sent {n}."),
            ));
        }
        _ => {}
    }
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SqsError::new(
                ErrorKind::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                ErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(())
}

fn batch_output(successful: Vec<impl Serialize>, failed: Vec<Failed<'_>>) -> Vec<u8> {
    to_body(&json!({"Successful": successful, "Failed": failed}))
}

fn delete_message_batch(app: &App, input: BatchInput<ReceiptEntry>) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let handles: Vec<&str> = input
        .entries
        .iter()
        .map(|e| e.receipt_handle.as_str())
        .collect();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (entry, result) in input.entries.iter().zip(queue.delete(&handles)) {
        match result {
            Ok(()) => successful.push(Successful { id: &entry.id }),
            Err(error) => failed.push(Failed::new(
                &entry.id,
                receipt_error(error, &entry.receipt_handle),
            )),
        }
    }
    Ok(batch_output(successful, failed))
}

fn visibility_of(value: Option<i64>) -> Result<u32, SqsError> {
    let value = value.ok_or_else(|| missing("VisibilityTimeout"))?;
    if !(0..=43_200).contains(&value) {
        return Err(invalid_value(
            value,
            "VisibilityTimeout",
            "Must be >= 0 and <= 43200, if provided.",
        ));
    }
    Ok(value as u32)
}

fn change_message_visibility(app: &App, input: ChangeVisibilityInput) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    if input.receipt_handle.is_empty() {
        return Err(missing("ReceiptHandle"));
    }
    let seconds = visibility_of(input.visibility_timeout)?;
    match queue
        .change_visibility(&[(&input.receipt_handle, seconds)])
        .pop()
    {
        Some(Err(error)) => Err(receipt_error(error, &input.receipt_handle)),
        _ => Ok(b"{}".to_vec()),
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ChangeVisibilityInput {
    queue_url: String,
    receipt_handle: String,
    visibility_timeout: Option<i64>,
}

fn change_message_visibility_batch(
    app: &App,
    input: BatchInput<ReceiptEntry>,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let mut failed = Vec::new();
    let mut valid = Vec::new();
    let mut changes = Vec::new();
    for entry in &input.entries {
        match visibility_of(entry.visibility_timeout) {
            Ok(seconds) => {
                valid.push(entry);
                changes.push((entry.receipt_handle.as_str(), seconds));
            }
            Err(error) => failed.push(Failed::new(&entry.id, error)),
        }
    }
    let mut successful = Vec::new();
    for (entry, result) in valid.into_iter().zip(queue.change_visibility(&changes)) {
        match result {
            Ok(()) => successful.push(Successful { id: &entry.id }),
            Err(error) => failed.push(Failed::new(
                &entry.id,
                receipt_error(error, &entry.receipt_handle),
            )),
        }
    }
    Ok(batch_output(successful, failed))
}

// ---- send ----

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SendEntry {
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
fn valid_contents(text: &str) -> bool {
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

fn send_message(app: &App, mut input: SendEntry) -> Result<Vec<u8>, SqsError> {
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

fn send_message_batch(app: &App, input: BatchInput<SendEntry>) -> Result<Vec<u8>, SqsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
