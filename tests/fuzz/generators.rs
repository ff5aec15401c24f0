//! The generators the fuzz targets share: text of any kind, tokens the parsers give meaning
//! to, JSON values and objects with missing or odd members, times, and text edits (cut,
//! splice, repeat, shuffle lines) applied after rendering a generated document.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

/// Any string of up to `max` chars: every Unicode scalar value, controls included.
pub fn any_text(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..=max)
        .prop_map(String::from_iter)
        .boxed()
}

/// Strings the parsers give meaning to, and classic troublemakers.
const TOKENS: &[&str] = &[
    "",
    " ",
    "+",
    "%",
    "%2",
    "%2B",
    "%2F",
    "%20",
    "%zz",
    "%E9",
    "%C3%A9",
    "%F0%9F%98%80",
    "%ff%fe",
    "\u{0}",
    "\u{7f}",
    "é",
    "😀",
    "\"",
    "\\",
    "\n",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "s3:",
    "*",
    "**",
    "s3:*",
    "ObjectCreated:Put",
    "s3:ObjectCreated:*",
    "ObjectRemoved:Delete",
    ":",
    "aws:s3",
    "aws.s3",
    "Notification",
    "s3:TestEvent",
    "Amazon S3",
    "2.1",
    "2",
    "3.0",
    "1.0",
    "0.3",
    "us-east-1",
    "cn-north-1",
    "us-gov-west-1",
    "arn:aws:s3:::bucket",
    "arn:aws-cn:s3:::b",
    "arn::s3:::b",
    "arn:aws:s3:::",
    "arn:aws:s3:us-east-1:123456789012:b",
    "arn:aws:sqs:us-east-1:123456789012:q",
    "a b/c+d%e",
    "2024-01-31T12:34:56.789Z",
    "2024-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "1970-01-01T00:00:00+14:00",
    "+275760-09-13T00:00:00Z",
    "Object Created",
    "Object Deleted",
    "Records",
    "Message",
    "detail-type",
    "http://example.com/",
];

/// A short string: a token, a token pair, something URL-ish, or anything at all.
pub fn token() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(TOKENS).prop_map(str::to_owned),
        1 => (select(TOKENS), select(TOKENS)).prop_map(|(a, b)| format!("{a}{b}")),
        3 => "[a-zA-Z0-9:./%+*_ -]{0,16}",
        2 => any_text(12),
    ]
    .boxed()
}

pub fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        6 => token().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((token(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
        .boxed()
}

/// An object member: a plausible value mostly, any JSON value sometimes, absent sometimes.
pub fn field(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        12 => plausible.prop_map(Some),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
    .boxed()
}

/// An optional member: absent as often as not.
pub fn optional(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => plausible.prop_map(Some),
        1 => json_value().prop_map(Some),
        3 => Just(None),
    ]
    .boxed()
}

pub fn text(strings: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    strings.prop_map(Value::String).boxed()
}

pub fn one_of(options: &'static [&'static str]) -> BoxedStrategy<Value> {
    select(options)
        .prop_map(|s| Value::String(s.to_owned()))
        .boxed()
}

/// A JSON object of the members that are present.
pub fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect(),
    )
}

pub fn datetime() -> BoxedStrategy<DateTime<Utc>> {
    // Years 0000 to 9999: what RFC 3339 can write.
    (-62_167_219_200_i64..253_402_300_800, 0_u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap_or_default())
        .boxed()
}

pub fn time_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => datetime().prop_map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        1 => (datetime(), -86_399_i32..86_400).prop_map(|(t, offset)| {
            let offset = FixedOffset::east_opt(offset).expect("offset within a day");
            t.with_timezone(&offset).to_rfc3339()
        }),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|z|[+-][0-9]{2}:[0-9]{2})?",
        2 => token(),
    ]
    .boxed()
}

/// Text mutations, applied after rendering a generated document.
#[derive(Debug, Clone)]
pub enum Edit {
    Truncate(usize),
    Insert(usize, String),
    Remove(usize, usize),
    Repeat(usize, usize),
    DuplicateLine(usize),
    RemoveLine(usize),
    SwapLines(usize, usize),
}

/// No edit `untouched` times in `untouched + 1`, else one to three edits.
pub fn edits(untouched: u32) -> BoxedStrategy<Vec<Edit>> {
    let edit = prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), token()).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), 0_usize..12).prop_map(|(at, n)| Edit::Remove(at, n)),
        (any::<usize>(), 1_usize..40).prop_map(|(at, n)| Edit::Repeat(at, n)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::RemoveLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ];
    prop_oneof![
        untouched => Just(Vec::new()),
        1 => prop::collection::vec(edit, 1..4),
    ]
    .boxed()
}

/// The char boundary at or before `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_owned();
    for edit in edits {
        let pick = |text: &str, at: usize| floor_boundary(text, at % (text.len() + 1));
        match edit {
            Edit::Truncate(at) => text.truncate(pick(&text, *at)),
            Edit::Insert(at, s) => text.insert_str(pick(&text, *at), s),
            Edit::Remove(at, n) => {
                let start = pick(&text, *at);
                let end = floor_boundary(&text, start + n);
                text.replace_range(start..end, "");
            }
            Edit::Repeat(at, n) => {
                let start = pick(&text, *at);
                let end = floor_boundary(&text, start + n);
                let copy = text[start..end].to_owned();
                text.insert_str(end, &copy);
            }
            Edit::DuplicateLine(n) | Edit::RemoveLine(n) | Edit::SwapLines(n, _) => {
                let mut lines: Vec<String> =
                    text.split_inclusive('\n').map(str::to_owned).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = n % lines.len();
                match edit {
                    Edit::DuplicateLine(_) => lines.insert(i, lines[i].clone()),
                    Edit::RemoveLine(_) => {
                        lines.remove(i);
                    }
                    Edit::SwapLines(_, m) => {
                        let j = m % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                text = lines.concat();
            }
        }
    }
    text
}
