//! The SQS message body parser: any bytes (as UTF-8, lossily, as SQS bodies are text).
#![no_main]

use aws_event_adapter::sources::s3::notification::{Body, Record, parse_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let body = parse_body(&text);
    if let Body::Records(records) = &body {
        for record in records {
            if let Record::Event(event) = record {
                assert!(event.ce_type.starts_with("com.amazon.s3."), "{event:?}");
                assert!(event.source.starts_with("arn:"), "{event:?}");
                assert!(serde_json::from_slice::<serde_json::Value>(&event.data).is_ok());
            }
        }
    }
    assert_eq!(parse_body(&text), body, "not deterministic");
});
