//! Issue 5: an `AWSS3Source` without `destination` gets its queue, queue policy and bucket
//! notification created on the user's behalf (by `provision` and at `run` start), idempotently,
//! and removed again by `deprovision` — against moto, with the adapter binary run as a user
//! runs it. One test does it all under IAM enforcement with exactly the seed's policies.
//!
//! It stays one file of about 950 lines because its nine tests are all steps of the same
//! provisioning life cycle and use the same read-back helpers (queue entries, the provisioned
//! queue's policy and tags), which a split would only move into a file of their own.

mod common;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use aws_event_adapter::sources::s3::provision::{BUCKET_TAG, OWNER_TAG, queue_name};
use aws_sdk_s3::types::QueueConfiguration;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use cloudevents::AttributesReader;
use common::*;
use http::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);

/// The seed's provisioning policy ("create it on your behalf"), statement by statement.
const PROVISION_S3: [&str; 3] = [
    "s3:GetBucketLocation",
    "s3:GetBucketNotification",
    "s3:PutBucketNotification",
];
const PROVISION_SQS: [&str; 7] = [
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ListQueueTags",
    "sqs:TagQueue",
];

/// The manifest of an AWSS3Source without `destination` (so the adapter provisions its queue),
/// with literal keys.
fn provisioned_source(
    name: &str,
    namespace: Option<&str>,
    bucket: &str,
    event_types: &[&str],
    sink: &str,
    (key, secret): (&str, &str),
) -> String {
    let namespace = namespace.map_or(String::new(), |ns| format!(", namespace: {ns}"));
    let event_types = serde_json::to_string(event_types).unwrap();
    format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: {name}{namespace} }}
spec:
  arn: "arn:aws:s3:::{bucket}"
  eventTypes: {event_types}
  auth:
    credentials:
      accessKeyID: {{ value: "{key}" }}
      secretAccessKey: {{ value: "{secret}" }}
  sink: {{ uri: "{sink}" }}
  receive: {{ waitTimeSeconds: 1 }}
"#
    )
}

/// The keys the shared moto accepts.
const TESTING: (&str, &str) = ("testing", "testing");
/// The sink of manifests that are only provisioned, never run.
const NO_SINK: &str = "http://127.0.0.1:9/";

/// What one run of `aws-event-adapter provision|deprovision` did.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }

    /// The `operation` of every `AWS write call` log line (JSON logs on stderr).
    fn write_calls(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == "AWS write call")
            .map(|entry| entry["operation"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// Runs `aws-event-adapter <command> --config FILE --log-format json` on this manifest text,
/// with extra environment variables (e.g. the endpoint of a moto of the test's own).
async fn adapter_command(command: &str, manifest: &str, env: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, manifest).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aws-event-adapter"))
        .arg(command)
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json"])
        // `AWS write call` lines are at info: make sure an inherited RUST_LOG cannot hide them.
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output)
        .await
        .unwrap_or_else(|_| panic!("`{command}` still running after {WAIT:?}"))
        .expect("start the adapter binary");
    Outcome {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Clients for a moto of the test's own.
fn aws_on(sdk: &aws_config::SdkConfig) -> Aws {
    Aws {
        sqs: aws_sdk_sqs::Client::new(sdk),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        ),
    }
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// A bucket with one notification entry of someone else's: `s3:ObjectRemoved:*` to a queue of
/// its own. Returns that entry as S3 reports it.
async fn bucket_with_unrelated_entry(aws: &Aws, bucket: &str) -> QueueConfiguration {
    let (_, other) = aws.create_queue(&unique("prov-other")).await;
    aws.create_bucket_notifying(bucket, &other, &["s3:ObjectRemoved:*"])
        .await;
    let entries = queue_entries(aws, bucket).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

async fn queue_entries(aws: &Aws, bucket: &str) -> Vec<QueueConfiguration> {
    aws.s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("notification configuration of {bucket}: {e:?}"))
        .queue_configurations
        .unwrap_or_default()
}

/// The entry of the bucket's configuration that notifies this queue (exactly one).
fn entry_for(entries: &[QueueConfiguration], queue_arn: &str) -> QueueConfiguration {
    let ours: Vec<_> = entries
        .iter()
        .filter(|e| e.queue_arn() == queue_arn)
        .collect();
    assert_eq!(ours.len(), 1, "entries for {queue_arn}: {entries:#?}");
    ours[0].clone()
}

fn events(entry: &QueueConfiguration) -> Vec<String> {
    let mut events: Vec<String> = entry
        .events()
        .iter()
        .map(|e| e.as_str().to_string())
        .collect();
    events.sort();
    events
}

async fn queue_url(aws: &Aws, name: &str) -> String {
    aws.sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("queue {name} should exist: {e:?}"))
        .queue_url
        .unwrap()
}

async fn assert_queue_gone(aws: &Aws, name: &str) {
    let err = aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect_err("the queue should be deleted");
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    assert!(
        matches!(
            code,
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist"
        ),
        "{name}: {err:?}"
    );
}

/// Checks the provisioned queue: our tags and a policy letting S3 send only from this bucket
/// and the bucket owner's account.
async fn assert_provisioned_queue(aws: &Aws, name: &str, owner: &str, bucket: &str) {
    let url = queue_url(aws, name).await;
    let tags = aws
        .sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(
        tags.get(OWNER_TAG).map(String::as_str),
        Some(owner),
        "{tags:?}"
    );
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    assert_eq!(
        tags.get(BUCKET_TAG).map(String::as_str),
        Some(bucket_arn.as_str()),
        "{tags:?}"
    );
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::Policy)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attributes
            .get(&QueueAttributeName::QueueArn)
            .map(String::as_str),
        Some(queue_arn(name).as_str())
    );
    let policy: Value = serde_json::from_str(
        attributes
            .get(&QueueAttributeName::Policy)
            .expect("the queue has a policy"),
    )
    .unwrap();
    let statements = match &policy["Statement"] {
        Value::Array(statements) => statements.clone(),
        single => vec![single.clone()],
    };
    let one_of = |value: &Value, wanted: &str| match value {
        Value::String(s) => s == wanted,
        Value::Array(values) => values.len() == 1 && values[0] == wanted,
        _ => false,
    };
    assert!(
        statements.iter().any(|s| {
            s["Effect"] == "Allow"
                && one_of(&s["Principal"]["Service"], "s3.amazonaws.com")
                && one_of(&s["Action"], "sqs:SendMessage")
                && one_of(&s["Resource"], &queue_arn(name))
                && one_of(&s["Condition"]["ArnEquals"]["aws:SourceArn"], &bucket_arn)
                && one_of(
                    &s["Condition"]["StringEquals"]["aws:SourceAccount"],
                    ACCOUNT,
                )
        }),
        "no statement lets s3.amazonaws.com send from {bucket_arn} ({ACCOUNT}): {policy:#}"
    );
    // And nothing else is allowed: a single statement.
    assert_eq!(statements.len(), 1, "{policy:#}");
}

/// Waits until the queue holds an S3 record for this object key (proof that the bucket
/// really notifies the queue).
async fn wait_record(aws: &Aws, url: &str, key: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let messages = aws
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let found = messages.iter().any(|m| {
            serde_json::from_str::<Value>(m.body().unwrap_or_default())
                .ok()
                .and_then(|body| body["Records"].as_array().cloned())
                .is_some_and(|records| records.iter().any(|r| r["s3"]["object"]["key"] == key))
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no S3 record for {key:?} in {url} within {WAIT:?}"
        );
    }
}

async fn create_bucket(aws: &Aws, bucket: &str) {
    match aws.s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        // A fixed name (logs.example.com) may be left from an earlier run on the same moto.
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) => {}
        Err(err) => panic!("create bucket {bucket}: {err:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_destination_provisions_queue_policy_and_notification_and_delivers() {
    let aws = Aws::new().await;
    let bucket = unique("prov-run");
    let unrelated = bucket_with_unrelated_entry(&aws, &bucket).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    // No namespace in the metadata: the queue is named (and owned) in "default".
    let manifest = provisioned_source(
        "uploads",
        None,
        &bucket,
        &["s3:ObjectCreated:*"],
        &sink.uri(),
        TESTING,
    );
    let adapter = Adapter::start(&manifest, &[]).await;

    let name = queue_name("default", "uploads", &bucket);
    assert_provisioned_queue(&aws, &name, "default/uploads", &bucket).await;
    let entries = queue_entries(&aws, &bucket).await;
    assert_eq!(entries.len(), 2, "ours and the unrelated one: {entries:#?}");
    assert!(
        entries.contains(&unrelated),
        "the unrelated entry changed: {entries:#?}"
    );
    let ours = entry_for(&entries, &queue_arn(&name));
    assert_ne!(ours.id(), unrelated.id());
    assert_eq!(events(&ours), ["s3:ObjectCreated:*"]);

    aws.put_object(&bucket, "provisioned/hello.txt", b"hello")
        .await;
    wait_until(WAIT, "the upload at the sink", || {
        sink.accepted()
            .iter()
            .any(|(_, e)| e.subject() == Some("provisioned/hello.txt"))
    })
    .await;
    let accepted = sink.accepted();
    let (_, event) = accepted
        .iter()
        .find(|(_, e)| e.subject() == Some("provisioned/hello.txt"))
        .unwrap();
    assert_eq!(event.ty(), "com.amazon.s3.objectcreated");
    assert_eq!(event.source(), &format!("arn:aws:s3:::{bucket}"));
    drop(adapter);

    adapter_command("deprovision", &manifest, &[])
        .await
        .assert_success("deprovision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_twice_writes_nothing_and_an_event_type_change_updates_only_our_entry() {
    let aws = Aws::new().await;
    let bucket = unique("prov-idem");
    let unrelated = bucket_with_unrelated_entry(&aws, &bucket).await;
    let manifest = |events: &[&str]| {
        provisioned_source("orders", Some("shop"), &bucket, events, NO_SINK, TESTING)
    };
    let name = queue_name("shop", "orders", &bucket);

    let first = adapter_command("provision", &manifest(&["s3:ObjectCreated:*"]), &[]).await;
    first.assert_success("the first provision");
    let writes = first.write_calls();
    for operation in [
        "CreateQueue",
        "SetQueueAttributes",
        "PutBucketNotificationConfiguration",
    ] {
        assert!(
            writes.iter().any(|w| w == operation),
            "the first run should log {operation}: {writes:?}\n{}",
            first.stderr
        );
    }
    assert!(
        first.stdout.contains(&format!("created queue {name}")),
        "{}",
        first.stdout
    );
    assert_provisioned_queue(&aws, &name, "shop/orders", &bucket).await;
    let after_first = queue_entries(&aws, &bucket).await;
    // A witness that does not rely on our logs: every PutBucketNotificationConfiguration makes
    // S3 (moto) send an s3:TestEvent to each queue of the configuration, the unrelated one too.
    let other_url = queue_url(&aws, unrelated.queue_arn().rsplit(':').next().unwrap()).await;
    let test_events = aws.queue_depth(&other_url).await.0;

    let second = adapter_command("provision", &manifest(&["s3:ObjectCreated:*"]), &[]).await;
    second.assert_success("the second provision");
    assert!(
        !second.stderr.contains("AWS write call"),
        "the second run wrote: {:?}\n{}",
        second.write_calls(),
        second.stderr
    );
    assert!(
        second.stdout.contains("nothing to change"),
        "{}",
        second.stdout
    );
    assert_eq!(queue_entries(&aws, &bucket).await, after_first);
    assert_eq!(
        aws.queue_depth(&other_url).await.0,
        test_events,
        "the bucket's notification configuration was written again"
    );

    // Another set of events: our entry (same id, same queue) is rewritten, nothing else. (Not
    // overlapping the unrelated entry's s3:ObjectRemoved:*, which S3 would refuse.)
    let changed = ["s3:ObjectCreated:Put", "s3:ObjectCreated:Copy"];
    let third = adapter_command("provision", &manifest(&changed), &[]).await;
    third.assert_success("provision after an eventTypes change");
    assert_eq!(
        third.write_calls(),
        ["PutBucketNotificationConfiguration"],
        "{}",
        third.stderr
    );
    assert!(
        third.stdout.contains("updated notification entry"),
        "{}",
        third.stdout
    );
    let entries = queue_entries(&aws, &bucket).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert!(
        entries.contains(&unrelated),
        "the unrelated entry changed: {entries:#?}"
    );
    let before = entry_for(&after_first, &queue_arn(&name));
    let ours = entry_for(&entries, &queue_arn(&name));
    assert_eq!(ours.id(), before.id());
    assert_eq!(
        events(&ours),
        ["s3:ObjectCreated:Copy", "s3:ObjectCreated:Put"]
    );
    assert_eq!(aws.queue_depth(&other_url).await.0, test_events + 1);

    let fourth = adapter_command("provision", &manifest(&changed), &[]).await;
    fourth.assert_success("provision after the update");
    assert!(
        fourth.write_calls().is_empty() && fourth.stdout.contains("nothing to change"),
        "{}\n{}",
        fourth.stdout,
        fourth.stderr
    );

    adapter_command("deprovision", &manifest(&changed), &[])
        .await
        .assert_success("deprovision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotted_and_63_character_buckets_get_valid_distinct_queues() {
    let aws = Aws::new().await;
    let dotted = "logs.example.com";
    // 63 characters, the longest legal bucket name, unique to this run.
    let long = format!("{:a<63}", unique("prov-long"));
    assert_eq!(long.len(), 63);
    create_bucket(&aws, dotted).await;
    create_bucket(&aws, &long).await;
    // A 63-character namespace (Kubernetes' longest): for the last two sources the readable
    // part of the name is cut before the names differ, so only the hash tells them apart.
    let namespace = format!("{:n<63}", "team-");
    let sources = [
        (
            "default".to_string(),
            unique("logs"),
            dotted.to_string(),
            "s3:ObjectCreated:*",
        ),
        (
            namespace.clone(),
            unique("site-created"),
            long.clone(),
            "s3:ObjectCreated:*",
        ),
        // S3 refuses two entries of one bucket for the same event type: another type.
        (
            namespace.clone(),
            unique("site-removed"),
            long.clone(),
            "s3:ObjectRemoved:*",
        ),
    ];
    let names: Vec<String> = sources
        .iter()
        .map(|(ns, name, bucket, _)| queue_name(ns, name, bucket))
        .collect();
    for name in &names {
        assert!(name.len() <= 80, "{name} has {} characters", name.len());
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{name}"
        );
    }
    assert_ne!(names[0], names[1]);
    assert_ne!(names[1], names[2]);
    assert_ne!(names[0], names[2]);

    let manifest = sources
        .iter()
        .map(|(ns, name, bucket, events)| {
            let ns = (ns != "default").then_some(ns.as_str());
            provisioned_source(name, ns, bucket, &[events], NO_SINK, TESTING)
        })
        .collect::<Vec<_>>()
        .join("---\n");
    let provision = adapter_command("provision", &manifest, &[]).await;
    provision.assert_success("provision");
    for ((ns, source, bucket, wanted), name) in sources.iter().zip(&names) {
        assert!(
            provision.stdout.contains(&format!("created queue {name}")),
            "{}",
            provision.stdout
        );
        assert_provisioned_queue(&aws, name, &format!("{ns}/{source}"), bucket).await;
        let ours = entry_for(&queue_entries(&aws, bucket).await, &queue_arn(name));
        assert_eq!(events(&ours), [*wanted]);
    }

    // For real: an upload to each bucket reaches the queue provisioned for it.
    aws.put_object(dotted, "dotted.txt", b"x").await;
    aws.put_object(&long, "long.txt", b"x").await;
    wait_record(&aws, &queue_url(&aws, &names[0]).await, "dotted.txt").await;
    wait_record(&aws, &queue_url(&aws, &names[1]).await, "long.txt").await;

    let deprovision = adapter_command("deprovision", &manifest, &[]).await;
    deprovision.assert_success("deprovision");
    for name in &names {
        assert_queue_gone(&aws, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_removes_our_entry_and_queue_keeps_the_rest_and_can_run_twice() {
    let aws = Aws::new().await;
    let bucket = unique("prov-deprov");
    let unrelated = bucket_with_unrelated_entry(&aws, &bucket).await;
    let manifest = provisioned_source(
        "uploads",
        None,
        &bucket,
        &["s3:ObjectCreated:*"],
        NO_SINK,
        TESTING,
    );
    let name = queue_name("default", "uploads", &bucket);
    adapter_command("provision", &manifest, &[])
        .await
        .assert_success("provision");
    assert_eq!(queue_entries(&aws, &bucket).await.len(), 2);

    let first = adapter_command("deprovision", &manifest, &[]).await;
    first.assert_success("deprovision");
    assert!(
        first.stdout.contains("removed notification entry")
            && first.stdout.contains(&format!("deleted queue {name}")),
        "{}",
        first.stdout
    );
    assert_eq!(
        queue_entries(&aws, &bucket).await,
        std::slice::from_ref(&unrelated)
    );
    assert_queue_gone(&aws, &name).await;
    // The other queue is not ours and stays.
    queue_url(&aws, unrelated.queue_arn().rsplit(':').next().unwrap()).await;

    // Again: nothing left to remove is not an error, and nothing is written.
    let second = adapter_command("deprovision", &manifest, &[]).await;
    second.assert_success("the second deprovision");
    assert!(second.write_calls().is_empty(), "{}", second.stderr);
    assert!(
        second.stdout.contains("does not exist"),
        "{}",
        second.stdout
    );
    assert_eq!(queue_entries(&aws, &bucket).await, [unrelated]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_leaves_queues_it_did_not_create_and_tolerates_a_missing_bucket() {
    let aws = Aws::new().await;

    // A source WITH destination: the user's queue and the user's notification stay.
    let bucket = unique("prov-user");
    let (user_url, user_arn) = aws.create_queue(&unique("prov-user-queue")).await;
    aws.create_bucket_notifying(&bucket, &user_arn, &["s3:ObjectCreated:*"])
        .await;
    let before = queue_entries(&aws, &bucket).await;
    let manifest = source_manifest("uploads", &bucket, &user_arn, NO_SINK, "");
    let outcome = adapter_command("deprovision", &manifest, &[]).await;
    outcome.assert_success("deprovision of a source with a destination");
    assert!(outcome.write_calls().is_empty(), "{}", outcome.stderr);
    aws.sqs
        .get_queue_attributes()
        .queue_url(&user_url)
        .send()
        .await
        .expect("the user's queue is still there");
    assert_eq!(queue_entries(&aws, &bucket).await, before);

    // No destination, a bucket that does not exist, and a queue of our name that our tags do
    // not mark as ours: not an error, and the queue stays.
    let missing = unique("prov-missing");
    let name = queue_name("default", "ghost", &missing);
    aws.create_queue(&name).await;
    let manifest = provisioned_source(
        "ghost",
        None,
        &missing,
        &["s3:ObjectCreated:*"],
        NO_SINK,
        TESTING,
    );
    let outcome = adapter_command("deprovision", &manifest, &[]).await;
    outcome.assert_success("deprovision with a missing bucket");
    assert!(outcome.write_calls().is_empty(), "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains(&format!("bucket {missing} does not exist")),
        "{}",
        outcome.stdout
    );
    queue_url(&aws, &name).await;

    // Neither bucket nor queue: still fine.
    let url = queue_url(&aws, &name).await;
    aws.sqs.delete_queue().queue_url(url).send().await.unwrap();
    adapter_command("deprovision", &manifest, &[])
        .await
        .assert_success("deprovision with nothing there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_gets_its_queue_in_that_region() {
    let aws = Aws::new().await;
    let bucket = unique("prov-eu");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket in eu-west-1");
    // The adapter's default region stays us-east-1: eu-west-1 comes from GetBucketLocation.
    let manifest = provisioned_source(
        "uploads",
        None,
        &bucket,
        &["s3:ObjectCreated:*"],
        NO_SINK,
        TESTING,
    );
    adapter_command("provision", &manifest, &[("AWS_REGION", REGION)])
        .await
        .assert_success("provision");
    let name = queue_name("default", "uploads", &bucket);
    let eu_sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(endpoint())
        .load()
        .await;
    let eu = aws_on(&eu_sdk);
    let url = queue_url(&eu, &name).await;
    let arn = format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{name}");
    let attributes = eu
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attributes.get(&QueueAttributeName::QueueArn),
        Some(&arn),
        "{attributes:?}"
    );
    entry_for(&queue_entries(&eu, &bucket).await, &arn);
    adapter_command("deprovision", &manifest, &[("AWS_REGION", REGION)])
        .await
        .assert_success("deprovision");
    assert_queue_gone(&eu, &name).await;
}

/// Creates an IAM user holding the seed's provisioning policy (minus `without`) and its
/// consumption policy, as two inline policies; returns its keys.
async fn seed_user(iam: &aws_sdk_iam::Client, name: &str, without: &[&str]) -> (String, String) {
    iam.create_user().user_name(name).send().await.unwrap();
    let keep = |actions: &[&'static str]| -> Vec<&'static str> {
        actions
            .iter()
            .copied()
            .filter(|a| !without.contains(a))
            .collect()
    };
    let provisioning = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3SourceGetBucketLocation",
                "Effect": "Allow",
                "Action": keep(&PROVISION_S3),
                "Resource": "arn:aws:s3:::*"
            },
            {
                "Sid": "S3SourceManageQueue",
                "Effect": "Allow",
                "Action": keep(&PROVISION_SQS),
                "Resource": "arn:aws:sqs:*:*:*"
            }
        ]
    });
    let consumption = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "S3SourceConsumeMessages",
            "Effect": "Allow",
            "Action": SOURCE_MINIMAL_POLICY,
            "Resource": "arn:aws:sqs:*:*:*"
        }]
    });
    for (policy_name, document) in [("provisioning", provisioning), ("consumption", consumption)] {
        iam.put_user_policy()
            .user_name(name)
            .policy_name(policy_name)
            .policy_document(document.to_string())
            .send()
            .await
            .unwrap();
    }
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_policies_suffice_to_provision_deliver_and_deprovision() {
    let moto = OwnMoto::start().await;
    // While enforcement is off: the identities, and a bucket with someone else's entry.
    let admin = aws_on(&moto.sdk_config("testing", "testing").await);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config("testing", "testing").await);
    let adapter_keys = seed_user(&iam, "provisioner", &[]).await;
    let denied_keys = seed_user(&iam, "no-put", &["s3:PutBucketNotification"]).await;
    let (operator_key, operator_secret) = iam_user(&iam, "operator", &["s3:*", "sqs:*"], "*").await;
    let operator = aws_on(&moto.sdk_config(&operator_key, &operator_secret).await);
    let bucket = unique("prov-iam");
    let unrelated = bucket_with_unrelated_entry(&admin, &bucket).await;
    moto.enforce_auth(true).await;
    // Enforcement is really on: unknown keys are refused.
    let stranger = aws_on(&moto.sdk_config("AKIAUNKNOWN", "nope").await);
    assert!(
        stranger
            .s3
            .get_bucket_notification_configuration()
            .bucket(&bucket)
            .send()
            .await
            .is_err()
    );
    let env = [("AWS_ENDPOINT_URL", moto.endpoint.as_str())];
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let (key, secret) = (adapter_keys.0.as_str(), adapter_keys.1.as_str());
    let manifest = provisioned_source(
        "uploads",
        Some("iam"),
        &bucket,
        &["s3:ObjectCreated:*"],
        &sink.uri(),
        (key, secret),
    );
    let name = queue_name("iam", "uploads", &bucket);

    let provision = adapter_command("provision", &manifest, &env).await;
    provision.assert_success("provision with the seed's policies");
    assert_provisioned_queue(&operator, &name, "iam/uploads", &bucket).await;
    let entries = queue_entries(&operator, &bucket).await;
    assert!(entries.contains(&unrelated), "{entries:#?}");
    entry_for(&entries, &queue_arn(&name));

    // `run` (which checks the provisioning again at start) delivers an upload.
    let adapter = Adapter::spawn_with_env(&manifest, &[], &env);
    adapter.wait_ready(WAIT).await;
    operator
        .put_object(&bucket, "iam/hello.txt", b"hello")
        .await;
    wait_until(WAIT, "the upload at the sink", || {
        sink.accepted().iter().any(|(_, e)| {
            e.subject() == Some("iam/hello.txt") && e.ty() == "com.amazon.s3.objectcreated"
        })
    })
    .await;
    assert!(
        !adapter.log().contains("AWS write call"),
        "`run` found the provisioning done and changed nothing:\n{}",
        adapter.log()
    );
    drop(adapter);

    let deprovision = adapter_command("deprovision", &manifest, &env).await;
    deprovision.assert_success("deprovision with the seed's policies");
    assert_queue_gone(&operator, &name).await;
    assert_eq!(queue_entries(&operator, &bucket).await, [unrelated]);

    // Without s3:PutBucketNotification, provisioning fails and says what is missing.
    let (key, secret) = (denied_keys.0.as_str(), denied_keys.1.as_str());
    let manifest = provisioned_source(
        "denied",
        Some("iam"),
        &bucket,
        &["s3:ObjectCreated:*"],
        NO_SINK,
        (key, secret),
    );
    let denied = adapter_command("provision", &manifest, &env).await;
    assert_eq!(
        denied.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        denied.stdout,
        denied.stderr
    );
    let error = denied
        .stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line:\n{}", denied.stderr));
    assert!(error.contains("s3:PutBucketNotification"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_refuses_to_take_over_a_queue_it_did_not_create() {
    let aws = Aws::new().await;
    let bucket = unique("prov-squat");
    create_bucket(&aws, &bucket).await;
    // Someone else's queue that happens to carry the name we would compute.
    let name = queue_name("default", "squatted", &bucket);
    aws.create_queue(&name).await;
    let manifest = provisioned_source(
        "squatted",
        None,
        &bucket,
        &["s3:ObjectCreated:*"],
        NO_SINK,
        TESTING,
    );
    let outcome = adapter_command("provision", &manifest, &[]).await;
    assert!(!outcome.status.success(), "{}", outcome.stdout);
    assert!(
        outcome
            .stderr
            .contains("was not created by aws-event-adapter"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.write_calls().is_empty(), "{}", outcome.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_refuses_an_entry_that_overlaps_another_as_real_s3_would() {
    let aws = Aws::new().await;
    let bucket = unique("prov-overlap");
    let unrelated = bucket_with_unrelated_entry(&aws, &bucket).await;
    let source = |name: &str, events: &[&str]| {
        provisioned_source(name, None, &bucket, events, NO_SINK, TESTING)
    };
    adapter_command("provision", &source("all", &["s3:ObjectCreated:*"]), &[])
        .await
        .assert_success("the first source");
    let before = queue_entries(&aws, &bucket).await;
    assert_eq!(before.len(), 2);

    // moto would take both; S3 answers "Configuration is ambiguously defined".
    for (name, events, overlapped) in [
        (
            "puts",
            "s3:ObjectCreated:Put",
            "aws-event-adapter.default.all".to_string(),
        ),
        (
            "deletes",
            "s3:ObjectRemoved:Delete",
            unrelated.id().unwrap().to_string(),
        ),
    ] {
        let outcome = adapter_command("provision", &source(name, &[events]), &[]).await;
        assert!(!outcome.status.success(), "{name}: {}", outcome.stdout);
        let said = format!("{}{}", outcome.stdout, outcome.stderr);
        assert!(
            said.contains(&format!("{overlapped:?}")) && said.contains("ambiguously defined"),
            "{name}: the error names the overlapped entry {overlapped}:\n{said}"
        );
        assert!(
            outcome.write_calls().is_empty(),
            "{name}: nothing written, not even its queue: {:?}",
            outcome.write_calls()
        );
        assert_queue_gone(&aws, &queue_name("default", name, &bucket)).await;
    }
    assert_eq!(
        queue_entries(&aws, &bucket).await,
        before,
        "nothing changed"
    );

    // Event types that overlap nothing go in.
    adapter_command(
        "provision",
        &source("restores", &["s3:ObjectRestore:*"]),
        &[],
    )
    .await
    .assert_success("a source of other event types");
    assert_eq!(queue_entries(&aws, &bucket).await.len(), 3);
}
