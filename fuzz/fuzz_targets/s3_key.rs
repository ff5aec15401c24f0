//! The S3 key decoder: any text decodes without panic, and S3's and moto's form encodings of
//! any key decode back to it. Also the `spec.eventTypes` matcher: first line the patterns
//! (comma-separated), the rest the event name.
#![no_main]

use aws_event_adapter::sources::s3::notification::{decode_key, event_type_matches};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const S3_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
const MOTO_KEY: &AsciiSet = &S3_KEY.add(b'/');

fn form_encode(key: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(key, set)
        .to_string()
        .replace("%20", "+")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = decode_key(&text);
    assert_eq!(decode_key(&form_encode(&text, S3_KEY)), text);
    assert_eq!(decode_key(&form_encode(&text, MOTO_KEY)), text);
    let (patterns, name) = text.split_once('\n').unwrap_or((&text, ""));
    let patterns: Vec<String> = patterns.split(',').map(str::to_owned).collect();
    let _ = event_type_matches(&patterns, name);
});
