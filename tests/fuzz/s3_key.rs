//! `s3_key::`: the object key decoder (`decode(encode(k)) == k` for any Unicode key, in S3's and
//! moto's form encoding, and any text accepted) and the `spec.eventTypes` matcher against a
//! reference glob matcher.

use aws_event_adapter::sources::s3::notification::{decode_key, event_type_matches};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::sample::select;

use crate::generators::*;
use crate::run;
use crate::sqs_body::EVENT_NAMES;

/// What S3 leaves as it is in notification keys: unreserved characters and `/`.
const S3_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// moto encodes `/` too.
const MOTO_KEY: &AsciiSet = &S3_KEY.add(b'/');

/// Form encoding: `%XX` of the UTF-8 bytes, then a space is `+`. `%` itself is encoded
/// (`%25`), so every `%20` of the output is a space.
fn form_encode(key: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(key, set)
        .to_string()
        .replace("%20", "+")
}

pub fn encoded_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any_text(24).prop_map(|k| form_encode(&k, S3_KEY)),
        1 => any_text(24).prop_map(|k| form_encode(&k, MOTO_KEY)),
        2 => token(),
    ]
    .boxed()
}

/// `*`-glob by dynamic programming, the reference for `event_type_matches`.
fn reference_glob(pattern: &str, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for p in pattern.chars() {
        let mut next = vec![false; text.len() + 1];
        if p == '*' {
            let mut any = false;
            for (slot, &m) in next.iter_mut().zip(&matched) {
                any |= m;
                *slot = any;
            }
        } else {
            for (j, &c) in text.iter().enumerate() {
                next[j + 1] = matched[j] && c == p;
            }
        }
        matched = next;
    }
    matched[text.len()]
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any_text(64),
        1 => "[ +%/~._a-zA-Z0-9-]{0,24}",
        1 => prop::collection::vec(
            select(&[" ", "+", "%", "%2B", "%20", "/", "é", "😀", "\u{0}", "a"][..]), 0..12
        ).prop_map(|parts| parts.concat()),
    ]
    .boxed()
}

#[test]
fn decode_inverts_form_encoding() {
    run("s3_key::decode_inverts_form_encoding", 5000, key(), |key| {
        let s3 = form_encode(&key, S3_KEY);
        prop_assert_eq!(decode_key(&s3), key.clone(), "S3 encoding {:?}", s3);
        let moto = form_encode(&key, MOTO_KEY);
        prop_assert!(!moto.contains('/'));
        prop_assert_eq!(decode_key(&moto), key.clone(), "moto encoding {:?}", moto);
        Ok(())
    });
}

#[test]
fn decode_takes_anything() {
    let strategy = prop_oneof![
        2 => any_text(64),
        2 => "[%+0-9a-fA-FzZ/é ]{0,32}",
    ];
    run("s3_key::decode_takes_anything", 5000, strategy, |encoded| {
        let decoded = decode_key(&encoded);
        if !encoded.contains('%') {
            prop_assert_eq!(decoded, encoded.replace('+', " "));
        }
        Ok(())
    });
}

#[test]
fn event_types_match_like_a_glob() {
    let pattern = prop_oneof![
        4 => "(s3:)?[ab:*]{0,8}",
        1 => select(&["*", "s3:*", "s3:ObjectCreated:*", "ObjectCreated:Put", "s3:"][..])
            .prop_map(str::to_owned),
        1 => any_text(8),
    ];
    let name = prop_oneof![
        4 => "(s3:)?[ab:]{0,10}",
        1 => select(EVENT_NAMES).prop_map(str::to_owned),
        1 => any_text(8),
    ];
    let strategy = (prop::collection::vec(pattern, 0..3), name);
    run(
        "s3_key::event_types_match_like_a_glob",
        5000,
        strategy,
        |(patterns, name)| {
            let strip = |s: &str| s.strip_prefix("s3:").unwrap_or(s).to_owned();
            let expected = patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| reference_glob(&strip(p), &strip(&name)));
            prop_assert_eq!(event_type_matches(&patterns, &name), expected);
            Ok(())
        },
    );
}
