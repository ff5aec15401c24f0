//! Fuzzing of the pure parsers with proptest (issue 8): whatever the input, nothing panics.
//!
//! Four targets, each a file of properties here (`tests/fuzz/<target>.rs`), with the generators
//! they share in `generators.rs`:
//! - `sqs_body`: the SQS message body parser (`parse_body`), on any text and on generated S3
//!   notifications (random and missing fields), SNS envelopes and EventBridge events, plain or
//!   cut, spliced and repeated; plus the sink side of the same events (encode, then decode);
//! - `s3_key`: the object key decoder (`decode(encode(k)) == k` for any Unicode key, in S3's and
//!   moto's form encoding) and the `spec.eventTypes` matcher against a reference matcher;
//! - `cloudevents_http`: the HTTP decoder (random `ce-` headers, content types and bodies, and
//!   CloudEvents with random attributes in binary, structured and batch mode; what it accepts
//!   re-encodes and decodes again to the same attributes) and the header-value percent-coding;
//! - `config_loader`: the manifest loader on YAML-ish text and on valid manifests mutated field by
//!   field, plus the duration and ARN parsers beneath it.
//!
//! Each property runs `PROPTEST_CASES` inputs (default: a short run for the suite) and prints
//! its count and rate. The long run recorded in TESTING.md is, per target:
//!
//! ```sh
//! PROPTEST_CASES=2500000 cargo test --release --test fuzz -- --nocapture --test-threads 1 sqs_body::
//! ```
//!
//! A failure prints the minimal failing input (after shrinking); failures are not persisted to
//! files, so paste that input into a unit test.

mod cloudevents_http;
mod config_loader;
mod generators;
mod s3_key;
mod sqs_body;

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

/// Runs `test` on `PROPTEST_CASES` inputs (default `default_cases`) drawn from `strategy`.
fn run<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        max_local_rejects: u32::MAX,
        max_global_rejects: u32::MAX,
        ..RunnerConfig::default()
    });
    let started = Instant::now();
    let result = runner.run(&strategy, test);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {cases} inputs in {seconds:.1} s ({:.0} inputs/s)",
        f64::from(cases) / seconds
    );
    if let Err(err) = result {
        panic!("fuzz {name} failed: {err}");
    }
}
