//! `config_loader::`: the manifest loader (`load_text`) on YAML-ish text and on six valid
//! manifests changed field by field, plus the duration and ARN parsers beneath it.

use std::path::Path;

use aws_event_adapter::aws::arn::{BucketArn, QueueArn};
use aws_event_adapter::config::{self, LoadOptions};
use aws_event_adapter::manifest;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

use crate::generators::*;
use crate::run;

const BASE_MANIFESTS: &[&str] = &[
    r#"
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: uploads }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  sink: { uri: "http://127.0.0.1:9/" }
"#,
    r#"
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata:
  name: media-uploads
  namespace: default
  labels: { app: adapter }
spec:
  arn: arn:aws-cn:s3:::media-uploads
  eventTypes: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  auth:
    iam:
      roleArn: arn:aws:iam::123456789012:role/aws-event-adapter
      serviceAccount: adapter
    sessionName: adapter-session
    refreshMargin: 5m
  sink: { uri: "http://broker-ingress.knative-eventing.svc.cluster.local/default/default" }
  delivery:
    retry: 5
    backoffPolicy: linear
    backoffDelay: PT0.5S
    backoffMaxDelay: PT30S
    timeout: 10s
    deadLetterSink: { uri: "http://dead-letters.default.svc.cluster.local/" }
  eventEncoding: structured
  forwardTestEvents: true
  forwardUnrecognized: false
  receive:
    pollers: 2
    maxMessages: 10
    waitTimeSeconds: 20
    visibilityTimeout: 30s
    maxInFlightMessages: 100
    visibilityHeartbeat: true
    redeliveryDelay: 10s
    maxRedeliveryDelay: 15m
  adapterOverrides: { public: false }
status: { conditions: [] }
"#,
    r#"
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: keyed }
spec:
  arn: arn:aws:s3:::keyed-bucket
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }
      secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }
      sessionToken: { valueFromSecret: { name: aws, key: AWS_SESSION_TOKEN } }
      assumeIamRole: arn:aws:iam::210987654321:role/cross-account
    externalID: ext-1
    sessionDuration: 1h
  sink: { uri: "http://sink:8080/events" }
"#,
    r#"
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata: { name: orders }
spec:
  arn: arn:aws:sqs:us-east-1:123456789012:orders
  discardCloudEventContext: true
  auth:
    credentials:
      accessKeyID: { value: AKIAEXAMPLE }
      secretAccessKey: { value: secret }
"#,
    r#"
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata: { name: fifo-orders }
spec:
  arn: arn:aws:sqs:eu-west-1:123456789012:orders.fifo
  messageGroupId: group-1
"#,
    r#"
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSS3Target
metadata: { name: archive }
spec:
  arn: arn:aws:s3:::example-archive
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }
      secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }
      assumeIamRole: arn:aws:iam::210987654321:role/cross-account
    externalID: aws-event-adapter-archive
  adapterOverrides: {}
"#,
];

const CONFIG_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "spec",
    "status",
    "arn",
    "eventTypes",
    "destination",
    "sqs",
    "queueARN",
    "auth",
    "credentials",
    "iam",
    "roleArn",
    "serviceAccount",
    "accessKeyID",
    "secretAccessKey",
    "sessionToken",
    "assumeIamRole",
    "value",
    "valueFromSecret",
    "key",
    "externalID",
    "sessionDuration",
    "sessionName",
    "refreshMargin",
    "sink",
    "uri",
    "ref",
    "delivery",
    "retry",
    "backoffPolicy",
    "backoffDelay",
    "backoffMaxDelay",
    "timeout",
    "deadLetterSink",
    "eventEncoding",
    "forwardTestEvents",
    "forwardUnrecognized",
    "receive",
    "pollers",
    "maxMessages",
    "waitTimeSeconds",
    "visibilityTimeout",
    "maxInFlightMessages",
    "visibilityHeartbeat",
    "redeliveryDelay",
    "maxRedeliveryDelay",
    "adapterOverrides",
    "discardCloudEventContext",
    "messageGroupId",
];

const CONFIG_TOKENS: &[&str] = &[
    "AWSS3Source",
    "AWSSQSTarget",
    "AWSS3Target",
    "Other",
    "sources.triggermesh.io/v1alpha1",
    "targets.triggermesh.io/v1alpha1",
    "uploads",
    "a",
    "-a",
    "A",
    "a.b",
    "",
    "arn:aws:s3:::media-uploads",
    "arn:aws-cn:s3:::b-1",
    "arn:aws:s3:::UPPER",
    "arn:aws:s3:::a..b",
    "arn:aws:s3:us-east-1:123456789012:b",
    "arn::s3:::bucket",
    "arn:aws:s3",
    "arn:aws:sqs:us-east-1:123456789012:uploads",
    "arn:aws:sqs:us-east-1:123456789012:q.fifo",
    "arn:aws:sqs::123456789012:q",
    "arn:aws:sqs:us-east-1:123:q",
    "arn:aws:sqs:us-east-1:123456789012:",
    "arn:aws:sqs:us-east-1:123456789012:.fifo",
    "arn:aws:iam::123456789012:role/x",
    "arn:aws:iam::123456789012:role/",
    "arn:aws:iam::123:role/x",
    "arn:aws:iam::123456789012:user/x",
    "http://127.0.0.1:9/",
    "https://sink/",
    "http://user:pw@sink/",
    "http://",
    "http:///x",
    "//sink/",
    "sink",
    "http://[::1]:8080/p?q#f",
    "http://a:99999/",
    "http://%zz/",
    "http://é/",
    "file:///etc/passwd",
    "PT0.5S",
    "P1DT1H",
    "P",
    "PT",
    "p1d",
    "PT1.2.3S",
    "PT.S",
    "1m30s",
    "500ms",
    "0",
    "-1s",
    "1x",
    "1e3s",
    "1.5h",
    "µs",
    "1µs",
    ".s",
    "99999999999999999999999s",
    "PT99999999999999999999H",
    "P1W",
    "12h",
    "0s",
    "exponential",
    "linear",
    "binary",
    "structured",
    "s3:ObjectCreated:*",
    "*",
    "aws",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "..",
    ".",
    "a/b",
    "group-1",
    "has space",
];

fn config_token() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(CONFIG_TOKENS).prop_map(str::to_owned),
        1 => token(),
    ]
    .boxed()
}

/// A value to put into a manifest: mostly what some field wants, sometimes anything.
fn config_value() -> BoxedStrategy<Value> {
    let secret = prop_oneof![
        (
            select(&["aws", "missing", ".", "..", "a/b", ""][..]),
            select(&["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "nope", "", ".."][..]),
        )
            .prop_map(|(name, key)| json!({"valueFromSecret": {"name": name, "key": key}})),
        config_token().prop_map(|v| json!({ "value": v })),
        config_token().prop_map(|v| json!({ "value": v, "valueFromSecret": {"name": "aws", "key": "AWS_SESSION_TOKEN"} })),
    ];
    prop_oneof![
        5 => text(config_token()),
        1 => select(&[0_i64, 1, -1, 10, 11, 64, 65, 100, 101, 10_000, 10_001, i64::MIN][..])
            .prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
        1 => secret,
        1 => text(config_token()).prop_map(|uri| json!({ "uri": uri })),
        1 => prop::collection::vec(text(config_token()), 0..3).prop_map(Value::Array),
        1 => json_value(),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A change to a manifest; node numbers pick a node of the document in preorder.
#[derive(Debug, Clone)]
enum Change {
    Delete(usize),
    Replace(usize, Value),
    Insert(usize, String, Value),
    Rename(usize, String),
    Copy(usize, usize),
}

fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                prefix.push(Step::Key(key.clone()));
                paths(member, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                prefix.push(Step::Index(index));
                paths(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(mut value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        value = match step {
            Step::Key(key) => value.get_mut(key.as_str())?,
            Step::Index(index) => value.get_mut(*index)?,
        };
    }
    Some(value)
}

fn apply_change(doc: &mut Value, change: &Change) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let pick = |n: usize| all[n % all.len()].clone();
    match change {
        Change::Delete(n) => {
            let path = pick(*n);
            if let Some((last, parent)) = path.split_last()
                && let Some(parent) = node_mut(doc, parent)
            {
                match (last, parent) {
                    (Step::Key(key), Value::Object(members)) => {
                        members.remove(key);
                    }
                    (Step::Index(index), Value::Array(items)) => {
                        items.remove(*index);
                    }
                    _ => {}
                }
            }
        }
        Change::Replace(n, value) => {
            if let Some(node) = node_mut(doc, &pick(*n)) {
                *node = value.clone();
            }
        }
        Change::Insert(n, key, value) => match node_mut(doc, &pick(*n)) {
            Some(Value::Object(members)) => {
                members.insert(key.clone(), value.clone());
            }
            Some(Value::Array(items)) => items.push(value.clone()),
            _ => {}
        },
        Change::Rename(n, new_key) => {
            let path = pick(*n);
            if let Some((Step::Key(old_key), parent)) = path.split_last()
                && let Some(Value::Object(members)) = node_mut(doc, parent)
                && let Some(value) = members.remove(old_key)
            {
                members.insert(new_key.clone(), value);
            }
        }
        Change::Copy(from, to) => {
            let from = pick(*from);
            let Some(copy) = node_mut(doc, &from).map(|v| v.clone()) else {
                return;
            };
            let key = match from.last() {
                Some(Step::Key(key)) => key.clone(),
                _ => "copy".to_owned(),
            };
            match node_mut(doc, &pick(*to)) {
                Some(Value::Object(members)) => {
                    members.insert(key, copy);
                }
                Some(Value::Array(items)) => items.push(copy),
                _ => {}
            }
        }
    }
}

fn change() -> BoxedStrategy<Change> {
    let key = prop_oneof![
        4 => select(CONFIG_KEYS).prop_map(str::to_owned),
        1 => token(),
    ];
    prop_oneof![
        3 => any::<usize>().prop_map(Change::Delete),
        4 => (any::<usize>(), config_value()).prop_map(|(n, v)| Change::Replace(n, v)),
        2 => (any::<usize>(), key.clone(), config_value())
            .prop_map(|(n, k, v)| Change::Insert(n, k, v)),
        1 => (any::<usize>(), key).prop_map(|(n, k)| Change::Rename(n, k)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Change::Copy(a, b)),
    ]
    .boxed()
}

/// One to three valid manifests, each changed field by field, rendered, and its text mutated.
fn mutated_manifests() -> BoxedStrategy<String> {
    let document = (
        0..BASE_MANIFESTS.len(),
        prop::collection::vec(change(), 0..5),
        edits(6),
    )
        .prop_map(|(base, changes, edits)| {
            let mut doc: Value = serde_yaml_ng::from_str(BASE_MANIFESTS[base]).unwrap_or_default();
            for change in &changes {
                apply_change(&mut doc, change);
            }
            let text = serde_yaml_ng::to_string(&doc).unwrap_or_default();
            apply_edits(&text, &edits)
        });
    prop::collection::vec(document, 1..4)
        .prop_map(|documents| documents.join("---\n"))
        .boxed()
}

/// Lines of YAML syntax with manifest words.
fn yaml_ish_text() -> BoxedStrategy<String> {
    let key = prop_oneof![
        3 => select(CONFIG_KEYS).prop_map(str::to_owned),
        1 => token(),
    ];
    let scalar = prop_oneof![
        4 => config_token(),
        2 => select(&[
            "~", "null", "'quoted'", "\"dq\\u00e9\\x\"", ".inf", "-.nan", "0x1F", "0o17",
            "1e400", "-0", "18446744073709551616", "yes", "on", "!!binary aGk=", "!!str 1",
            "!custom x", "&a x", "*a", "[a, b]", "{a: b}", "{", "[", "|", ">-", "'", "\"",
        ][..])
            .prop_map(str::to_owned),
    ];
    let line = (0_usize..4, key, scalar, 0_usize..12).prop_map(|(indent, key, scalar, form)| {
        let pad = "  ".repeat(indent);
        match form {
            0..=3 => format!("{pad}{key}: {scalar}"),
            4 => format!("{pad}{key}:"),
            5 => format!("{pad}- {scalar}"),
            6 => format!("{pad}- {key}: {scalar}"),
            7 => "---".to_owned(),
            8 => format!("{pad}{key}: &a {{{key}: {scalar}}}"),
            9 => format!("{pad}<<: *a"),
            10 => format!("{pad}? {key}"),
            _ => format!("{pad}{scalar}"),
        }
    });
    prop_oneof![
        4 => prop::collection::vec(line, 0..16).prop_map(|lines| lines.join("\n")),
        1 => any_text(120),
        1 => (0_usize..200, select(&["[", "{a: ", "- "][..]))
            .prop_map(|(depth, open)| format!("spec: {}", open.repeat(depth))),
    ]
    .boxed()
}

/// A secrets directory with the keys the manifests name.
fn secrets_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let aws = dir.path().join("aws");
    std::fs::create_dir(&aws).expect("secret directory");
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ] {
        std::fs::write(aws.join(key), value).expect("secret file");
    }
    dir
}

/// `load_text` never panics, whatever the text; its problems print.
fn check_load(text: &str, secrets_dir: &Path) -> Result<(), TestCaseError> {
    let options = LoadOptions::new(secrets_dir.to_path_buf());
    let mut config = manifest::Config::default();
    let mut problems = Vec::new();
    manifest::load_text(text, "fuzz.yaml", &options, &mut config, &mut problems);
    for problem in &problems {
        prop_assert!(!problem.to_string().is_empty());
    }
    Ok(())
}

#[test]
fn base_manifests_are_valid() {
    let dir = secrets_dir();
    for manifest in BASE_MANIFESTS {
        let options = LoadOptions::new(dir.path().to_path_buf());
        let mut config = manifest::Config::default();
        let mut problems = Vec::new();
        manifest::load_text(manifest, "base.yaml", &options, &mut config, &mut problems);
        assert!(problems.is_empty(), "{manifest}: {problems:?}");
        assert_eq!(config.component_count(), 1, "{manifest}");
    }
}

#[test]
fn yaml_ish_text_loads_without_panic() {
    let dir = secrets_dir();
    run(
        "config_loader::yaml_ish_text_loads_without_panic",
        2000,
        yaml_ish_text(),
        |text| check_load(&text, dir.path()),
    );
}

#[test]
fn mutated_manifests_load_without_panic() {
    let dir = secrets_dir();
    run(
        "config_loader::mutated_manifests_load_without_panic",
        1200,
        mutated_manifests(),
        |text| check_load(&text, dir.path()),
    );
}

#[test]
fn durations_parse_without_panic() {
    let strategy = (
        prop_oneof![
            3 => config_token(),
            2 => "[pPtTdDhHmMsSnuµ0-9.]{0,12}",
            1 => any_text(16),
        ],
        0_u64..10_000,
        0_u64..100,
        0_u64..60,
    );
    run(
        "config_loader::durations_parse_without_panic",
        5000,
        strategy,
        |(text, h, m, s)| {
            let _ = config::duration::parse(&text);
            let total = std::time::Duration::from_secs(h * 3600 + m * 60 + s);
            prop_assert_eq!(config::duration::parse(&format!("{h}h{m}m{s}s")), Ok(total));
            prop_assert_eq!(
                config::duration::parse(&format!("PT{h}H{m}M{s}S")),
                Ok(total)
            );
            Ok(())
        },
    );
}

#[test]
fn arns_parse_without_panic() {
    let part = || {
        prop_oneof![
            3 => select(&[
                "", "aws", "aws-cn", "s3", "sqs", "us-east-1", "123456789012", "123",
                "bucket", "b", "q.fifo", "my-queue", ".fifo", "a..b", "UPPER", "a:b",
            ][..])
                .prop_map(str::to_owned),
            1 => token(),
        ]
    };
    let strategy = prop_oneof![
        3 => prop::collection::vec(part(), 0..7).prop_map(|parts| parts.join(":")),
        1 => config_token(),
    ];
    run(
        "config_loader::arns_parse_without_panic",
        5000,
        strategy,
        |arn| {
            if let Ok(bucket) = arn.parse::<BucketArn>() {
                prop_assert_eq!(bucket.to_string(), arn.clone());
            }
            if let Ok(queue) = arn.parse::<QueueArn>() {
                prop_assert_eq!(queue.to_string(), arn.clone());
            }
            Ok(())
        },
    );
}
