//! The shared AWS emulator (moto, started by `./scripts/test`; LocalStack for the tests it runs
//! against both): its endpoint, account and address, names unique to a run, SQS and S3 clients
//! pointed at it, and queue depths.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use bytes::Bytes;
use tokio::time::Instant;

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// The emulator's account: moto's, unless `./scripts/test` names another emulator's in
/// `AWS_EVENT_ADAPTER_TEST_ACCOUNT` (LocalStack's is `000000000000`). Only the tests that run
/// against both emulators need it; the moto-only ones use [`ACCOUNT`].
pub fn account() -> String {
    std::env::var("AWS_EVENT_ADAPTER_TEST_ACCOUNT").unwrap_or_else(|_| ACCOUNT.to_string())
}
pub const REGION: &str = "us-east-1";

/// The emulator's endpoint; the tests need `./scripts/test` (or an exported AWS_ENDPOINT_URL).
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the integration tests through ./scripts/test, which starts the AWS emulator",
    )
}

/// A name unique to this test run (lowercase, valid for buckets and queues).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

pub struct Aws {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    pub async fn new() -> Aws {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint())
            .load()
            .await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Aws {
            sqs: aws_sdk_sqs::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }

    /// Creates a queue; returns (url, arn).
    pub async fn create_queue(&self, name: &str) -> (String, String) {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        (url, format!("arn:aws:sqs:{REGION}:{}:{name}", account()))
    }

    /// Creates a bucket whose notifications for `events` go to the queue.
    pub async fn create_bucket_notifying(&self, bucket: &str, queue_arn: &str, events: &[&str]) {
        use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
        self.s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
        let queue_config = QueueConfiguration::builder()
            .id("adapter-test")
            .queue_arn(queue_arn)
            .set_events(Some(events.iter().map(|e| S3Event::from(*e)).collect()))
            .build()
            .unwrap();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue_config)
                    .build(),
            )
            .send()
            .await
            .expect("put bucket notification");
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: &'static [u8]) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(Bytes::from_static(body).into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
    }

    pub async fn send(&self, queue_url: &str, body: &str) -> String {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send message")
            .message_id
            .unwrap()
    }

    /// Visible + in-flight messages, as SQS counts them.
    pub async fn queue_depth(&self, queue_url: &str) -> (u64, u64) {
        queue_depth(&self.sqs, queue_url).await
    }

    /// Waits until the queue holds no message at all (visible or in flight).
    pub async fn wait_queue_empty(&self, queue_url: &str, timeout: Duration) {
        wait_queue_empty(&self.sqs, queue_url, timeout, String::new).await
    }
}

/// (visible, in flight) messages of the queue, read with `sqs`.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    let get = |name: &A| attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        get(&A::ApproximateNumberOfMessages),
        get(&A::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Waits until the queue holds no message at all (visible or in flight), read with `sqs` (an
/// operator's client, when the adapter runs with restricted credentials). On timeout the
/// failure shows `log()`, e.g. the adapter's output.
pub async fn wait_queue_empty(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    timeout: Duration,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let depth = queue_depth(sqs, queue_url).await;
        if depth == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue still holds (visible, in flight) = {depth:?} after {timeout:?}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// moto's address, from AWS_ENDPOINT_URL.
pub async fn moto_addr() -> SocketAddr {
    let endpoint = endpoint();
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    tokio::net::lookup_host(&authority)
        .await
        .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))
        .next()
        .expect("an address for AWS_ENDPOINT_URL")
}
