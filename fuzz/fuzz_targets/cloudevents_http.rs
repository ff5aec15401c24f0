//! The CloudEvents HTTP decoder. Input: `name: value` header lines, an empty line, the body
//! (an HTTP/1 request without its request line). What decodes must re-encode.
#![no_main]

use aws_event_adapter::cloudevents::inbound::decode;
use aws_event_adapter::cloudevents::{decode_header_value, encode_header_value};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or((data, &[][..]), |at| (&data[..at], &data[at + 2..]));
    let (head, body) = split;
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(events) = decode(&headers, Bytes::copy_from_slice(body)) {
        serde_json::to_vec(&events).expect("an accepted event re-encodes");
    }
    let text = String::from_utf8_lossy(body);
    let encoded = encode_header_value(&text);
    assert!(encoded.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)));
    assert_eq!(
        decode_header_value(encoded.to_str().expect("visible ASCII")),
        text
    );
});
