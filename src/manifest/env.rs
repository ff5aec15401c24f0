//! TriggerMesh's environment-variable mode: with no `--config`, the adapter reads the variables
//! TriggerMesh's controller sets on its adapter images, so a TriggerMesh installation can run
//! this image unchanged (`AWSSQSSOURCE_IMAGE`, `AWSSQSTARGET_IMAGE`, `AWSS3TARGET_IMAGE`).
//!
//! | variable | meaning |
//! |---|---|
//! | `K_COMPONENT` | `awss3source`, `awssqssource`, `awssqstarget`, `awss3target` |
//! | `SQS_MESSAGE_PROCESSOR` | `awssqssource`: `default` (the default), `s3` or `eventbridge` |
//! | `CE_SOURCE`, `CE_TYPE` | `awssqssource`: the source and type of events made from plain messages |
//! | `ARN` | the queue (source, SQS target) or the bucket (S3 target) |
//! | `K_SINK` | the source's sink URL |
//! | `NAME`, `NAMESPACE` | the component's identity |
//! | `K_SINK_TIMEOUT` | seconds allowed for one sink request |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | keys (else the default chain) |
//! | `AWS_ASSUME_ROLE_ARN` | a role assumed with those keys |
//! | `SQS_VISIBILITY_TIMEOUT` | Go duration, e.g. `45s` |
//! | `AWS_DISCARD_CE_CONTEXT` | `true`: only `data` is written |
//! | `AWS_MESSAGE_GROUP_ID` | FIFO queues' group |
//! | `METRICS_PROMETHEUS_PORT` | the metrics port |
//!
//! Variables are read through [`Env`], so tests use a map instead of the process environment.

use std::collections::HashMap;
use std::time::Duration;

use super::Config;
use crate::aws::arn::{BucketArn, QueueArn};
use crate::cloudevents::Encoding;
use crate::config::auth::{Auth, AuthMode, Keys};
use crate::config::common::{Delivery, Metadata};
use crate::config::decode::Problem;
use crate::config::secret::{Secret, SecretSource};
use crate::config::{common, duration, pem};
use crate::sources::s3::config::{Conversion, Processor, Receive, S3SourceConfig};
use crate::targets::s3::config::S3TargetConfig;
use crate::targets::sqs::config::SqsTargetConfig;

/// Where variables come from.
pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<&str, &str> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key)
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty())
    }
}

/// Whether the environment looks like TriggerMesh's (so `run` without `--config` is meant).
pub fn present(env: &dyn Env) -> bool {
    env.get("K_COMPONENT").is_some()
}

/// The metrics port TriggerMesh configures, if any.
pub fn metrics_port(env: &dyn Env) -> Option<u16> {
    env.get("METRICS_PROMETHEUS_PORT")?.parse().ok()
}

/// Builds the one component the variables describe; every bad variable is reported.
pub fn load(env: &dyn Env) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |variable: &str, message: String| {
        problems.push(Problem {
            document: "environment".into(),
            path: variable.into(),
            message,
        })
    };
    let component = env.get("K_COMPONENT").unwrap_or_default();
    let metadata = Metadata {
        name: env.get("NAME").unwrap_or_else(|| component.clone()),
        namespace: env.get("NAMESPACE"),
    };
    let auth = auth(env, &mut problem);
    let discard = match env.get("AWS_DISCARD_CE_CONTEXT").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            problem(
                "AWS_DISCARD_CE_CONTEXT",
                format!("expected true or false, found {other:?}"),
            );
            false
        }
    };
    let arn = env.get("ARN");
    if arn.is_none() {
        problem("ARN", "is required".into());
    }
    let mut config = Config::default();
    match component.as_str() {
        "awss3source" | "awssqssource" => {
            // TriggerMesh's AWSS3Source runs the awssqssource image with the s3 processor;
            // awss3source (ours) reads S3 notifications only.
            let conversion = if component == "awssqssource" {
                let processor = env.get("SQS_MESSAGE_PROCESSOR");
                match processor.as_deref().map(Processor::from_name) {
                    None => Conversion::SqsMessages(Processor::Default),
                    Some(Ok(processor)) => Conversion::SqsMessages(processor),
                    Some(Err(message)) => {
                        problem("SQS_MESSAGE_PROCESSOR", message);
                        Conversion::SqsMessages(Processor::Default)
                    }
                }
            } else {
                Conversion::S3Notifications
            };
            let queue = arn.as_deref().and_then(|arn| {
                arn.parse::<QueueArn>()
                    .map_err(|message| problem("ARN", message))
                    .ok()
            });
            let sink = match env.get("K_SINK") {
                Some(uri) => common::sink_uri(&uri)
                    .map_err(|message| problem("K_SINK", message))
                    .ok(),
                None => {
                    problem("K_SINK", "is required".into());
                    None
                }
            };
            let mut delivery = Delivery::default();
            // Knative sets K_CA_CERTS for sinks served over HTTPS with their own CA.
            if let Some(pem) = env.get("K_CA_CERTS") {
                match pem::parse_ca_pem(&pem) {
                    Ok(_) => delivery.ca_certs.push(pem),
                    Err(message) => problem("K_CA_CERTS", message),
                }
            }
            if let Some(seconds) = env.get("K_SINK_TIMEOUT") {
                match seconds.parse::<u64>() {
                    Ok(seconds) if seconds > 0 => delivery.timeout = Duration::from_secs(seconds),
                    _ => problem(
                        "K_SINK_TIMEOUT",
                        format!("expected a number of seconds, found {seconds:?}"),
                    ),
                }
            }
            let mut receive = Receive::default();
            if let Some(text) = env.get("SQS_VISIBILITY_TIMEOUT") {
                match duration::parse(&text) {
                    Ok(d) if d >= Duration::from_secs(1) => receive.visibility_timeout = d,
                    Ok(_) => problem("SQS_VISIBILITY_TIMEOUT", "must be at least 1s".into()),
                    Err(message) => problem("SQS_VISIBILITY_TIMEOUT", message),
                }
            }
            if let (Some(queue), Some(sink), Some(auth)) = (queue, sink, auth) {
                config.s3_sources.push(S3SourceConfig {
                    metadata: metadata.clone(),
                    // TriggerMesh's source adapter is told the queue only.
                    bucket: None,
                    event_types: Vec::new(),
                    queue: Some(queue),
                    auth,
                    endpoint: None,
                    sink,
                    sink_ref: None,
                    delivery,
                    encoding: Encoding::Binary,
                    // TriggerMesh's s3 processor forwards the test event.
                    forward_test_events: conversion != Conversion::S3Notifications,
                    forward_unrecognized: true,
                    receive,
                    conversion,
                    event_source: env.get("CE_SOURCE"),
                    event_type: env.get("CE_TYPE"),
                });
            }
        }
        "awssqstarget" => {
            let queue = arn.as_deref().and_then(|arn| {
                arn.parse::<QueueArn>()
                    .map_err(|message| problem("ARN", message))
                    .ok()
            });
            let message_group_id = env.get("AWS_MESSAGE_GROUP_ID");
            if let Some(queue) = &queue
                && queue.is_fifo()
                && message_group_id.is_none()
            {
                problem(
                    "AWS_MESSAGE_GROUP_ID",
                    format!("is required: {} is a FIFO queue", queue.name),
                );
            }
            if let (Some(queue), Some(auth)) = (queue, auth) {
                let fifo = queue.is_fifo();
                config.sqs_targets.push(SqsTargetConfig {
                    metadata: metadata.clone(),
                    queue,
                    discard_context: discard,
                    message_group_id: message_group_id.filter(|_| fifo),
                    auth,
                    endpoint: None,
                });
            }
        }
        "awss3target" => {
            let bucket = arn.as_deref().and_then(|arn| {
                arn.parse::<BucketArn>()
                    .map_err(|message| problem("ARN", message))
                    .ok()
            });
            if let (Some(bucket), Some(auth)) = (bucket, auth) {
                config.s3_targets.push(S3TargetConfig {
                    metadata: metadata.clone(),
                    bucket,
                    discard_context: discard,
                    auth,
                    endpoint: None,
                });
            }
        }
        other => problem(
            "K_COMPONENT",
            format!(
                "expected awss3source, awssqssource, awssqstarget or awss3target, found {other:?}"
            ),
        ),
    }
    if problems.is_empty() {
        config.documents.push((metadata.name, "environment".into()));
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Keys from the variables (with an optional role), else the SDK's default chain.
fn auth(env: &dyn Env, problem: &mut impl FnMut(&str, String)) -> Option<Auth> {
    let literal = |key: &str| env.get(key).map(|v| SecretSource::Literal(Secret::new(v)));
    let keys = match (
        literal("AWS_ACCESS_KEY_ID"),
        literal("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Keys {
            access_key_id,
            secret_access_key,
            session_token: literal("AWS_SESSION_TOKEN"),
        }),
        (None, None) => None,
        _ => {
            problem(
                "AWS_ACCESS_KEY_ID",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together".into(),
            );
            return None;
        }
    };
    let mode = match (keys, env.get("AWS_ASSUME_ROLE_ARN")) {
        (Some(base), Some(role_arn)) => AuthMode::AssumeRole { base, role_arn },
        (Some(keys), None) => AuthMode::Keys(keys),
        (None, Some(_)) => {
            problem(
                "AWS_ASSUME_ROLE_ARN",
                "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as the base identity".into(),
            );
            return None;
        }
        (None, None) => AuthMode::DefaultChain,
    };
    Some(Auth {
        mode,
        ..Auth::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triggermesh_source_environment() {
        let env = HashMap::from([
            ("K_COMPONENT", "awssqssource"),
            ("SQS_MESSAGE_PROCESSOR", "s3"),
            ("ARN", "arn:aws:sqs:us-east-1:123456789012:uploads"),
            ("K_SINK", "http://broker.default.svc/"),
            ("NAME", "uploads"),
            ("NAMESPACE", "team"),
            ("K_SINK_TIMEOUT", "15"),
            ("SQS_VISIBILITY_TIMEOUT", "45s"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let config = load(&env).unwrap();
        let source = &config.s3_sources[0];
        assert_eq!(source.metadata.name, "uploads");
        assert_eq!(source.queue.as_ref().unwrap().name, "uploads");
        assert_eq!(source.delivery.timeout, Duration::from_secs(15));
        assert_eq!(source.receive.visibility_timeout, Duration::from_secs(45));
        assert!(matches!(source.auth.mode, AuthMode::Keys(_)));
    }

    #[test]
    fn targets_and_every_bad_variable_reported() {
        let env = HashMap::from([
            ("K_COMPONENT", "awssqstarget"),
            ("ARN", "arn:aws:sqs:us-east-1:123456789012:orders.fifo"),
            ("AWS_DISCARD_CE_CONTEXT", "maybe"),
            ("AWS_ASSUME_ROLE_ARN", "arn:aws:iam::123456789012:role/x"),
        ]);
        let problems = load(&env).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "AWS_ASSUME_ROLE_ARN",
                "AWS_DISCARD_CE_CONTEXT",
                "AWS_MESSAGE_GROUP_ID"
            ]
        );

        let env = HashMap::from([
            ("K_COMPONENT", "awss3target"),
            ("ARN", "arn:aws:s3:::archive"),
            ("AWS_DISCARD_CE_CONTEXT", "true"),
        ]);
        let config = load(&env).unwrap();
        assert!(config.s3_targets[0].discard_context);
        assert_eq!(config.s3_targets[0].auth.mode, AuthMode::DefaultChain);
    }
}
