//! Parsing of SQS message bodies that carry Amazon S3 event notifications into the attributes
//! of CloudEvents (reference §2).
//!
//! This module owns, as pure logic without I/O:
//! - recognising what one SQS message body is: S3 `Records` (plain or inside an SNS envelope),
//!   an EventBridge S3 event, the `s3:TestEvent`, something else entirely, or a broken S3 body;
//! - turning each S3 record into [`S3Event`] (`type`, `source`, `subject`, deterministic `id`,
//!   `time`, and the record's exact bytes as `data`);
//! - decoding the form-encoded object keys S3 puts in notifications ([`decode_key`]);
//! - matching event names against `spec.eventTypes` ([`event_type_matches`]).
//!
//! Nothing here panics, whatever the input: every failure is a [`Malformed`] value.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Length of the hex ids derived from content hashes (128 bits of SHA-256).
const ID_HEX_LEN: usize = 32;
/// Longest piece of input quoted in an error message.
const QUOTE_MAX_CHARS: usize = 64;

/// One S3 change, ready to become a CloudEvent.
///
/// Built from one record of an S3 event notification
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>)
/// or from one S3 event delivered by Amazon EventBridge
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html>).
#[derive(Debug, Clone, PartialEq)]
pub struct S3Event {
    /// S3's event name without the `s3:` prefix, e.g. `ObjectCreated:Put`; matched against `spec.eventTypes`.
    pub event_name: String,
    /// CloudEvent `type`: `com.amazon.s3.` + lowercased part of event_name before the first ':'.
    pub ce_type: String,
    /// CloudEvent `source`: bucket ARN in the right partition (`arn:aws:s3:::b`, `arn:aws-cn:s3:::b`, `arn:aws-us-gov:s3:::b`).
    pub source: String,
    /// CloudEvent `subject`: the object key, decoded (Records) or as-is (EventBridge).
    pub subject: String,
    /// Deterministic CloudEvent `id`.
    pub id: String,
    /// The record's eventTime (EventBridge: `time`), when present and parseable.
    pub time: Option<DateTime<Utc>>,
    /// The CloudEvent data: the record's JSON exactly as S3 sent it (the raw bytes of that record; for EventBridge the whole event).
    pub data: Bytes,
}

/// The `s3:TestEvent` S3 sends when a notification configuration is created
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>):
/// `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":...,"Bucket":...,"RequestId":...,"HostId":...}`.
///
/// If it is forwarded, its CloudEvent has type `com.amazon.s3.testevent`, source
/// `arn:aws:s3:::<bucket>` (the test event names no region, so no other partition can be told)
/// and no subject.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    /// The bucket whose notification configuration was set.
    pub bucket: String,
    /// Deterministic CloudEvent `id` (a hash of the test event's content).
    pub id: String,
    /// The test event's `Time`, when present and parseable.
    pub time: Option<DateTime<Utc>>,
    /// The test event's JSON exactly as S3 sent it.
    pub data: Bytes,
}

/// Why a body or record could not be used. `label()` gives a bounded metric label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Malformed {
    /// `Records` is present but is not a JSON array.
    #[error("`Records` is not a JSON array")]
    RecordsNotArray,
    /// Record number `index` (from 0) lacks a required field or is not a JSON object.
    #[error("record {index} is invalid: {detail}")]
    InvalidRecord { index: usize, detail: String },
    /// Record number `index` has an `eventVersion` whose major version is not 2.
    #[error("record {index} has unsupported eventVersion {version:?} (expected 2.x)")]
    UnsupportedEventVersion { index: usize, version: String },
    /// An SNS notification whose `Message` is not a JSON string holding an S3 notification.
    #[error("SNS notification message is invalid: {detail}")]
    InvalidSnsMessage { detail: String },
    /// An EventBridge event from `aws.s3` that cannot be turned into an S3 event.
    #[error("EventBridge S3 event is invalid: {detail}")]
    InvalidEventBridge { detail: String },
    /// An `s3:TestEvent` without a bucket.
    #[error("s3:TestEvent is invalid: {detail}")]
    InvalidTestEvent { detail: String },
}

impl Malformed {
    /// A snake_case label from a fixed set, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Malformed::RecordsNotArray => "records_not_array",
            Malformed::InvalidRecord { .. } => "invalid_record",
            Malformed::UnsupportedEventVersion { .. } => "unsupported_event_version",
            Malformed::InvalidSnsMessage { .. } => "invalid_sns_message",
            Malformed::InvalidEventBridge { .. } => "invalid_eventbridge",
            Malformed::InvalidTestEvent { .. } => "invalid_test_event",
        }
    }
}

/// One entry of [`Body::Records`]: an event, or the reason that record was unusable.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A usable S3 change.
    Event(S3Event),
    /// A record that could not be used; the other records of the body are unaffected.
    Invalid(Malformed),
}

/// What one SQS message body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// S3 records (plain or SNS-wrapped, one entry per record, in order) or one EventBridge event.
    Records(Vec<Record>),
    /// `s3:TestEvent`, sent when a notification is configured.
    TestEvent(TestEvent),
    /// Not one of the S3 formats at all (not JSON, or JSON of another shape): forwarded as `com.amazon.sqs.message` by the caller.
    Unrecognized,
    /// Shaped like an S3 notification but broken as a whole (e.g. `Records` not an array, SNS `Message` not a JSON string of a known format).
    Malformed(Malformed),
}

/// Parses one SQS message body.
///
/// Recognised shapes, in this order:
/// - a JSON object with `Records`: S3 event notification records
///   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>);
/// - `Type: "Notification"` with a `Message`: an SNS envelope
///   (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html>) whose
///   `Message` string holds one of the other shapes (one level only);
/// - `source: "aws.s3"` with a `detail-type`: an EventBridge event
///   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html>);
/// - `Event: "s3:TestEvent"`: the test event.
///
/// Anything else is [`Body::Unrecognized`].
pub fn parse_body(body: &str) -> Body {
    parse_shape(body, true)
}

/// S3 form-encodes keys in notifications: '+' is a space, then %XX escapes (UTF-8). Invalid escapes are left as they are; invalid UTF-8 after decoding → fall back to the raw key.
///
/// See "The object key name value is URL encoded" in
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>.
/// A literal `+` in a key arrives as `%2B`, so replacing `+` before the `%XX` pass is exact.
pub fn decode_key(encoded: &str) -> String {
    let spaced = encoded.replace('+', " ");
    match percent_decode_str(&spaced).decode_utf8() {
        Ok(decoded) => decoded.into_owned(),
        Err(_) => encoded.to_owned(),
    }
}

/// `spec.eventTypes` matching: patterns like `s3:ObjectCreated:*`, `s3:ObjectCreated:Put`, `*` (empty pattern list = everything); `event_name` is without the `s3:` prefix. '*' matches any run of characters, anywhere in the pattern.
///
/// Event type names: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html>.
/// Matching is case-sensitive, as in S3. The `s3:` prefix is optional on both sides.
pub fn event_type_matches(patterns: &[String], event_name: &str) -> bool {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| wildcard_match(p.strip_prefix("s3:").unwrap_or(p), name))
}

/// `*`-only glob: the first segment is a prefix, the last a suffix, the middle ones are found
/// leftmost in order (greedy leftmost is optimal when `*` is the only metacharacter).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let Some((first, after_first)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let (middle, last) = match after_first.rsplit_once('*') {
        Some((middle, last)) => (middle, last),
        None => ("", after_first),
    };
    for segment in middle.split('*').filter(|s| !s.is_empty()) {
        match rest.split_once(segment) {
            Some((_, after)) => rest = after,
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A top-level JSON object, each member kept as its raw text.
type RawObject<'a> = BTreeMap<String, &'a RawValue>;

fn parse_shape(body: &str, allow_sns: bool) -> Body {
    let Ok(top) = serde_json::from_str::<RawObject<'_>>(body) else {
        return Body::Unrecognized;
    };
    if let Some(records) = top.get("Records") {
        return parse_records(records);
    }
    let is_sns = allow_sns && raw_str(&top, "Type").as_deref() == Some("Notification");
    if let Some(message) = top.get("Message").filter(|_| is_sns) {
        return parse_sns_message(message);
    }
    if raw_str(&top, "source").as_deref() == Some("aws.s3") && top.contains_key("detail-type") {
        return parse_eventbridge(body);
    }
    if raw_str(&top, "Event").as_deref() == Some("s3:TestEvent") {
        return parse_test_event(body);
    }
    Body::Unrecognized
}

/// The member `key` of a raw object, when it is a JSON string.
fn raw_str(top: &RawObject<'_>, key: &str) -> Option<String> {
    top.get(key)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

fn parse_records(records: &RawValue) -> Body {
    match serde_json::from_str::<Vec<&RawValue>>(records.get()) {
        Ok(items) => Body::Records(
            items
                .iter()
                .enumerate()
                .map(|(index, raw)| parse_record(index, raw))
                .collect(),
        ),
        Err(_) => Body::Malformed(Malformed::RecordsNotArray),
    }
}

fn parse_record(index: usize, raw: &RawValue) -> Record {
    let invalid = |detail: &str| {
        Record::Invalid(Malformed::InvalidRecord {
            index,
            detail: detail.to_owned(),
        })
    };
    // Parsed once: the fields below and the id's canonical hash both read this tree.
    let value = match serde_json::from_str::<Value>(raw.get()) {
        Ok(value) => value,
        Err(e) => return invalid(&format!("unusable JSON: {}", quote(&e.to_string()))),
    };
    let Value::Object(rec) = &value else {
        return invalid("not a JSON object");
    };
    match rec.get("eventVersion") {
        None => {}
        Some(Value::String(v)) if v.split('.').next() == Some("2") => {}
        Some(Value::String(v)) => {
            return Record::Invalid(Malformed::UnsupportedEventVersion {
                index,
                version: quote(v),
            });
        }
        Some(other) => {
            return Record::Invalid(Malformed::UnsupportedEventVersion {
                index,
                version: quote(&other.to_string()),
            });
        }
    }
    let Some(event_name) = non_empty_str(rec, &["eventName"]) else {
        return invalid("missing, empty or non-string `eventName`");
    };
    let Some(bucket) = non_empty_str(rec, &["s3", "bucket", "name"]) else {
        return invalid("missing, empty or non-string `s3.bucket.name`");
    };
    let Some(key) = non_empty_str(rec, &["s3", "object", "key"]) else {
        return invalid("missing, empty or non-string `s3.object.key`");
    };
    let source = match non_empty_str(rec, &["s3", "bucket", "arn"]) {
        Some(arn) if is_s3_arn(arn) => arn.to_owned(),
        _ => bucket_arn(bucket, non_empty_str(rec, &["awsRegion"])),
    };
    let event_name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    Record::Event(S3Event {
        event_name: event_name.to_owned(),
        ce_type: ce_type(event_name),
        source,
        subject: decode_key(key),
        id: value_id(&value),
        time: non_empty_str(rec, &["eventTime"]).and_then(parse_time),
        data: Bytes::copy_from_slice(raw.get().as_bytes()),
    })
}

fn parse_sns_message(message: &RawValue) -> Body {
    let bad = |detail: &str| {
        Body::Malformed(Malformed::InvalidSnsMessage {
            detail: detail.to_owned(),
        })
    };
    let Ok(text) = serde_json::from_str::<String>(message.get()) else {
        return bad("`Message` is not a JSON string");
    };
    // SNS carrying something other than an S3 notification is none of our formats: the caller
    // forwards the whole body as an SQS message, as it does for any other foreign body.
    parse_shape(&text, false)
}

/// The S3 notification event name (as `spec.eventTypes` spells them, without `s3:`) for an
/// EventBridge `detail-type`, its `detail.reason` and `detail.deletion-type`, following
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-mapping-troubleshooting.html> and
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html>. A reason S3 does
/// not document is kept as it is (`ObjectCreated:<reason>`), a missing one is `*`.
fn eventbridge_event_name(
    detail_type: &str,
    reason: Option<&str>,
    deletion_type: Option<&str>,
) -> Option<String> {
    let marker = deletion_type == Some("Delete Marker Created");
    let name = match (detail_type, reason) {
        ("Object Created", Some("PutObject")) => "ObjectCreated:Put",
        ("Object Created", Some("POST Object")) => "ObjectCreated:Post",
        ("Object Created", Some("CopyObject")) => "ObjectCreated:Copy",
        ("Object Created", Some("CompleteMultipartUpload")) => {
            "ObjectCreated:CompleteMultipartUpload"
        }
        ("Object Created", other) => {
            return Some(format!("ObjectCreated:{}", other.unwrap_or("*")));
        }
        ("Object Deleted", Some("DeleteObject")) if marker => "ObjectRemoved:DeleteMarkerCreated",
        ("Object Deleted", Some("DeleteObject")) => "ObjectRemoved:Delete",
        ("Object Deleted", Some("Lifecycle Expiration")) if marker => {
            "LifecycleExpiration:DeleteMarkerCreated"
        }
        ("Object Deleted", Some("Lifecycle Expiration")) => "LifecycleExpiration:Delete",
        ("Object Deleted", other) => {
            return Some(format!("ObjectRemoved:{}", other.unwrap_or("*")));
        }
        ("Object Restore Initiated", _) => "ObjectRestore:Post",
        ("Object Restore Completed", _) => "ObjectRestore:Completed",
        ("Object Restore Expired", _) => "ObjectRestore:Delete",
        ("Object Tags Added", _) => "ObjectTagging:Put",
        ("Object Tags Deleted", _) => "ObjectTagging:Delete",
        ("Object ACL Updated", _) => "ObjectAcl:Put",
        ("Object Storage Class Changed", _) => "LifecycleTransition",
        ("Object Access Tier Changed", _) => "IntelligentTiering",
        _ => return None,
    };
    Some(name.to_owned())
}

fn parse_eventbridge(body: &str) -> Body {
    let bad = |detail: String| Body::Malformed(Malformed::InvalidEventBridge { detail });
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return bad("not a JSON object".to_owned());
    };
    let Value::Object(ev) = &value else {
        return bad("not a JSON object".to_owned());
    };
    let Some(detail_type) = str_at(ev, &["detail-type"]) else {
        return bad("`detail-type` is not a string".to_owned());
    };
    let reason = non_empty_str(ev, &["detail", "reason"]);
    let deletion_type = non_empty_str(ev, &["detail", "deletion-type"]);
    let Some(event_name) = eventbridge_event_name(detail_type, reason, deletion_type) else {
        return bad(format!("unsupported detail-type {:?}", quote(detail_type)));
    };
    let Some(bucket) = non_empty_str(ev, &["detail", "bucket", "name"]) else {
        return bad("missing, empty or non-string `detail.bucket.name`".to_owned());
    };
    let Some(key) = non_empty_str(ev, &["detail", "object", "key"]) else {
        return bad("missing, empty or non-string `detail.object.key`".to_owned());
    };
    let first_resource = ev
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|resources| resources.first())
        .and_then(Value::as_str);
    let source = match first_resource {
        Some(arn) if is_s3_arn(arn) => arn.to_owned(),
        _ => bucket_arn(bucket, non_empty_str(ev, &["region"])),
    };
    let id = match non_empty_str(ev, &["id"]) {
        Some(id) => id.to_owned(),
        None => value_id(&value),
    };
    Body::Records(vec![Record::Event(S3Event {
        ce_type: ce_type(&event_name),
        event_name,
        source,
        subject: key.to_owned(),
        id,
        time: non_empty_str(ev, &["time"]).and_then(parse_time),
        data: Bytes::copy_from_slice(body.as_bytes()),
    })])
}

fn parse_test_event(body: &str) -> Body {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Body::Unrecognized;
    };
    let Value::Object(ev) = &value else {
        return Body::Unrecognized;
    };
    let Some(bucket) = non_empty_str(ev, &["Bucket"]) else {
        return Body::Malformed(Malformed::InvalidTestEvent {
            detail: "missing, empty or non-string `Bucket`".to_owned(),
        });
    };
    Body::TestEvent(TestEvent {
        bucket: bucket.to_owned(),
        id: value_id(&value),
        time: non_empty_str(ev, &["Time"]).and_then(parse_time),
        data: Bytes::copy_from_slice(body.as_bytes()),
    })
}

/// The string at `path` inside nested objects, if every step exists and the end is a string.
fn str_at<'a>(obj: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut current = obj;
    for step in parents {
        current = current.get(*step)?.as_object()?;
    }
    current.get(*last)?.as_str()
}

fn non_empty_str<'a>(obj: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    str_at(obj, path).filter(|s| !s.is_empty())
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `com.amazon.s3.` + the lowercased part of the event name before the first `:`.
fn ce_type(event_name: &str) -> String {
    let family = event_name
        .split_once(':')
        .map_or(event_name, |(family, _)| family);
    format!("com.amazon.s3.{}", family.to_ascii_lowercase())
}

/// The AWS partition of a region
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html>); `aws` when unknown.
fn partition(region: Option<&str>) -> &'static str {
    const PARTITIONS: [(&str, &str); 7] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-iso-", "aws-iso"),
        ("us-isob-", "aws-iso-b"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-isof-", "aws-iso-f"),
        ("eusc-", "aws-eusc"),
    ];
    let region = region.unwrap_or("");
    PARTITIONS
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

fn bucket_arn(bucket: &str, region: Option<&str>) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region))
}

/// `arn:<partition>:s3:::<bucket>`: a bucket ARN (no region, no account).
fn is_s3_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let parts = [(); 6].map(|_| parts.next());
    matches!(
        parts,
        [Some("arn"), Some(p), Some("s3"), Some(""), Some(""), Some(b)] if !p.is_empty() && !b.is_empty()
    )
}

/// At most [`QUOTE_MAX_CHARS`] characters of input, for error messages.
fn quote(text: &str) -> String {
    text.chars().take(QUOTE_MAX_CHARS).collect()
}

/// Deterministic id of parsed JSON: SHA-256 of its canonical form (compact, object members
/// sorted by key), so whitespace and member order do not matter — a record delivered plain
/// and SNS-wrapped (where it was re-serialised) hashes the same. Callers hash the tree they
/// already parsed for the event's fields.
fn value_id(value: &Value) -> String {
    let mut hasher = HashWriter(Sha256::new());
    hash_canonical(value, &mut hasher);
    hex::encode(&hasher.0.finalize()[..ID_HEX_LEN / 2])
}

/// Lets serde_json write escaped strings and numbers straight into the hash, without an
/// intermediate `String` per scalar (this runs for every member of every record).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashWriter {
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The compact JSON of a string or scalar; writing to a hash cannot fail.
    fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        let _ = serde_json::to_writer(&mut *self, value);
    }
}

/// Feeds the canonical JSON of `value` to `hasher`. Recursion is bounded by serde_json's
/// nesting limit (128) applied when `value` was parsed.
fn hash_canonical(value: &Value, hasher: &mut HashWriter) {
    match value {
        Value::Object(members) => {
            hasher.update(b"{");
            // serde_json's map is ordered by key unless its `preserve_order` feature is on.
            if members.keys().is_sorted() {
                hash_members(members.iter(), hasher);
            } else {
                let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                hash_members(sorted.into_iter(), hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    hasher.update(b",");
                }
                hash_canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        scalar => hasher.json(scalar),
    }
}

fn hash_members<'a>(
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    hasher: &mut HashWriter,
) {
    for (n, (key, member)) in members.enumerate() {
        if n > 0 {
            hasher.update(b",");
        }
        hasher.json(key);
        hasher.update(b":");
        hash_canonical(member, hasher);
    }
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
