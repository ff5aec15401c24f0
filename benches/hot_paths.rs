//! Micro-benchmarks of the per-event hot paths, run with `cargo bench --bench hot_paths`:
//!
//! - source: one SQS message body with 1 or 10 S3 records → parsed → encoded HTTP requests
//!   (binary and structured mode);
//! - targets: one CloudEvent HTTP request (binary or structured) → decoded → SQS batch entry.
//!
//! Criterion reports time per iteration; BENCHMARKS.md relates them to each other.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;

use aws_event_adapter::cloudevents::{Encoding, inbound};
use aws_event_adapter::sources::s3::notification::{Body, Record, parse_body};
use aws_event_adapter::sources::s3::process::s3_event;
use aws_event_adapter::targets::sqs::config::SqsTargetConfig;
use aws_event_adapter::targets::sqs::to_message;

const PUT: &str = include_str!("../tests/fixtures/samples/s3-records-put.json");

/// A body with `n` copies of the sample record, each with its own key.
fn body_with(n: usize) -> String {
    let record = PUT
        .split_once("\"Records\": [")
        .and_then(|(_, rest)| rest.rsplit_once(']'))
        .map(|(record, _)| record.trim().to_string())
        .expect("the sample has one record");
    let records: Vec<String> = (0..n)
        .map(|i| record.replace("red+flower", &format!("red+flower-{i}")))
        .collect();
    format!("{{\"Records\": [{}]}}", records.join(","))
}

fn source(c: &mut Criterion) {
    let mut group = c.benchmark_group("source: SQS body to CloudEvent requests");
    for records in [1usize, 10] {
        let body = body_with(records);
        group.throughput(Throughput::Elements(records as u64));
        for (mode, encoding) in [
            ("binary", Encoding::Binary),
            ("structured", Encoding::Structured),
        ] {
            group.bench_with_input(BenchmarkId::new(mode, records), &body, |b, body| {
                b.iter(|| {
                    let Body::Records(parsed) = parse_body(black_box(body)) else {
                        panic!("records expected");
                    };
                    parsed
                        .into_iter()
                        .filter_map(|record| match record {
                            Record::Event(event) => Some(s3_event(event).encode(encoding)),
                            Record::Invalid(_) => None,
                        })
                        .count()
                })
            });
        }
    }
    group.finish();
}

fn target(c: &mut Criterion) {
    let config = serde_yaml_ng::from_str::<serde_json::Value>(
        "{apiVersion: targets.triggermesh.io/v1alpha1, kind: AWSSQSTarget, metadata: {name: q}, spec: {arn: 'arn:aws:sqs:us-east-1:123456789012:q'}}",
    )
    .expect("yaml");
    let mut problems = aws_event_adapter::config::decode::Problems::default();
    let mut doc =
        aws_event_adapter::config::decode::Obj::new(&config, "", &mut problems).expect("a mapping");
    let options = aws_event_adapter::config::LoadOptions::new("/nonexistent".into());
    let config =
        SqsTargetConfig::decode(&mut doc, &options, &mut problems).expect("a valid target");

    let data =
        Bytes::from_static(br#"{"order":{"id":"o-1","items":[{"sku":"a","qty":2}],"total":12.5}}"#);
    let mut binary = HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "e-1"),
        ("ce-source", "https://shop.example.com"),
        ("ce-type", "com.example.order.created"),
        ("ce-subject", "orders/o-1"),
        ("content-type", "application/json"),
    ] {
        binary.insert(name, value.parse().expect("header"));
    }
    let structured_body = Bytes::from(format!(
        r#"{{"specversion":"1.0","id":"e-1","source":"https://shop.example.com","type":"com.example.order.created","subject":"orders/o-1","datacontenttype":"application/json","data":{}}}"#,
        std::str::from_utf8(&data).expect("utf-8")
    ));
    let mut structured = HeaderMap::new();
    structured.insert(
        "content-type",
        "application/cloudevents+json".parse().expect("header"),
    );

    let mut group = c.benchmark_group("target: CloudEvent request to SQS entry");
    group.throughput(Throughput::Elements(1));
    for (mode, headers, body) in [
        ("binary", &binary, &data),
        ("structured", &structured, &structured_body),
    ] {
        group.bench_function(mode, |b| {
            b.iter(|| {
                let events =
                    inbound::decode(black_box(headers), black_box(body.clone())).expect("an event");
                to_message(&config, &events[0]).expect("a message").size()
            })
        });
    }
    group.finish();
}

/// Short windows: these paths take microseconds, so 2 s gives millions of iterations, and the
/// whole of `cargo bench` stays under its 10-minute budget on 2 cores from a fresh clone.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = source, target
}
criterion_main!(benches);
