//! TriggerMesh's manifests as users keep them: a folder of files (`--config DIR`) that holds
//! `Secret` documents with the keys, Knative `Broker`s and `Trigger`s that are not ours to run,
//! and the components themselves (sinks by `ref` to a Broker) — loaded by `validate` as they
//! are.

use std::path::Path;

mod common;
use common::command::{EXIT_CONFIG, run_in, write};

/// The keys of the samples' Secret; never printed.
const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYSAMPLEKEY";

/// A folder shaped like TriggerMesh's `config/samples/`: the Secret last, in a file of its
/// own, after the components that read it.
fn samples(dir: &Path) {
    write(
        dir,
        "awss3source.yaml",
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata:
  name: sample
spec:
  arn: arn:aws:s3:::triggermesh-sample
  destination:
    sqs:
      queueARN: arn:aws:sqs:us-east-1:123456789012:triggermesh-sample
  eventTypes:
  - s3:ObjectCreated:*
  auth:
    credentials:
      accessKeyID:
        valueFromSecret:
          name: awscreds
          key: aws_access_key_id
      secretAccessKey:
        valueFromSecret:
          name: awscreds
          key: aws_secret_access_key
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
"#,
    );
    write(
        dir,
        "awssqssource.yaml",
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSSQSSource
metadata:
  name: sample-sqs
spec:
  arn: arn:aws:sqs:us-east-1:123456789012:triggermesh-sqs
  receiveOptions:
    visibilityTimeout: 30m
  auth:
    credentials:
      accessKeyID:
        valueFromSecret:
          name: awscreds
          key: aws_access_key_id
      secretAccessKey:
        valueFromSecret:
          name: awscreds
          key: aws_secret_access_key
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
"#,
    );
    write(
        dir,
        "awstargets.yml",
        r#"apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata:
  name: sqs-sample
spec:
  arn: arn:aws:sqs:us-east-1:123456789012:triggermesh-target
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: awscreds, key: aws_access_key_id } }
      secretAccessKey: { valueFromSecret: { name: awscreds, key: aws_secret_access_key } }
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSS3Target
metadata:
  name: s3-sample
spec:
  arn: arn:aws:s3:::triggermesh-archive
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: awscreds, key: aws_access_key_id } }
      secretAccessKey: { valueFromSecret: { name: awscreds, key: aws_secret_access_key } }
"#,
    );
    write(
        dir,
        "broker-and-triggers.yaml",
        r#"apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: aws-sample-sqs-trigger
spec:
  broker: default
  filter: { attributes: { type: io.triggermesh.targets.aws.sqs.result } }
  subscriber: { ref: { apiVersion: targets.triggermesh.io/v1alpha1, kind: AWSSQSTarget, name: sqs-sample } }
"#,
    );
    // `data` is base64, `stringData` plain text: both as Kubernetes reads them.
    write(
        dir,
        "secret.yaml",
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: awscreds
type: Opaque
data:
  aws_access_key_id: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=
stringData:
  aws_secret_access_key: {SECRET_KEY}
"#
        ),
    );
    write(dir, "README.md", "not a manifest: ignored by --config DIR");
}

#[test]
fn a_folder_of_triggermesh_samples_validates_with_its_skip_lines() {
    let dir = tempfile::tempdir().unwrap();
    samples(dir.path());
    let out = run_in(dir.path(), &["validate", "--config", "."]);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let broker = "spec.sink.ref Broker (the pod's)/default (eventing.knative.dev/v1) is resolved at run time, through the Kubernetes API";
    assert_eq!(
        out.stdout,
        format!(
            "note: ./awss3source.yaml: document 1 (AWSS3Source \"sample\"): {broker}\n\
             note: ./awssqssource.yaml: document 1 (AWSSQSSource \"sample-sqs\"): {broker}\n\
             skipped: Broker \"default\" (not an adapter component)\n\
             skipped: Trigger \"aws-sample-sqs-trigger\" (not an adapter component)\n\
             ok: 4 component(s)\n"
        )
    );
    assert!(!out.stdout.contains(SECRET_KEY) && !out.stderr.contains(SECRET_KEY));
}

#[test]
fn a_key_missing_from_a_secret_document_is_named_and_no_value_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    samples(dir.path());
    let awkward = std::fs::read_to_string(dir.path().join("awstargets.yml"))
        .unwrap()
        .replacen("key: aws_access_key_id", "key: AWS_ACCESS_KEY_ID", 1);
    write(dir.path(), "awstargets.yml", &awkward);
    let out = run_in(dir.path(), &["validate", "--config", "."]);
    assert_eq!(out.code, EXIT_CONFIG, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(
            "awstargets.yml: document 1 (AWSSQSTarget \"sqs-sample\"): spec.auth.credentials.accessKeyID.valueFromSecret: the Secret document \"awscreds\" has no key \"AWS_ACCESS_KEY_ID\""
        ),
        "stderr:\n{}",
        out.stderr
    );
    assert!(!out.stdout.contains(SECRET_KEY) && !out.stderr.contains(SECRET_KEY));
}

#[test]
fn unknown_kinds_of_triggermesh_groups_stay_errors_and_empty_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sns.yaml",
        "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSNSTarget\nmetadata: { name: n }\nspec: {}\n",
    );
    let out = run_in(dir.path(), &["validate", "--config", "."]);
    assert_eq!(out.code, EXIT_CONFIG);
    assert!(
        out.stderr
            .contains("unknown kind \"AWSSNSTarget\": expected AWSS3Source"),
        "{}",
        out.stderr
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run_in(empty.path(), &["validate", "--config", "."]);
    assert_eq!(out.code, EXIT_CONFIG);
    assert!(
        out.stderr
            .contains("the folder holds no *.yaml, *.yml or *.json file"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_endpoint_url_must_be_http_or_https_with_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let target = |url: &str| {
        format!(
            "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: {{ name: t }}\nspec:\n  arn: arn:aws:sqs:us-east-1:123456789012:q\n  endpoint: {{ url: \"{url}\" }}\n"
        )
    };
    write(dir.path(), "ok.yaml", &target("http://localstack:4566"));
    let out = run_in(dir.path(), &["validate", "--config", "ok.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    write(dir.path(), "bad.yaml", &target("localstack:4566"));
    let out = run_in(dir.path(), &["validate", "--config", "bad.yaml"]);
    assert_eq!(out.code, EXIT_CONFIG);
    assert!(
        out.stderr.contains("spec.endpoint.url: expected an http:// or https:// URL with a host, found \"localstack:4566\""),
        "{}",
        out.stderr
    );
}
