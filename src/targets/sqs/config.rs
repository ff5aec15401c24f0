//! `AWSSQSTarget` manifests.
//!
//! ```yaml
//! spec:
//!   arn: arn:aws:sqs:us-east-1:123456789012:orders   # required: the queue
//!   discardCloudEventContext: false                   # true: the message body is only `data`
//!   messageGroupId: orders                            # required for FIFO queues (.fifo)
//!   auth: { ... }                                     # see config::auth
//! ```

use crate::aws::arn::QueueArn;
use crate::config::LoadOptions;
use crate::config::auth::{self, Auth};
use crate::config::common::{self, Metadata};
use crate::config::decode::{Obj, Problems};

/// The kind name used in metric labels and logs.
pub const COMPONENT: &str = "awssqstarget";

/// A decoded `AWSSQSTarget`.
#[derive(Debug, Clone)]
pub struct SqsTargetConfig {
    pub metadata: Metadata,
    pub queue: QueueArn,
    /// Only `data` as the message body (the context goes into message attributes).
    pub discard_context: bool,
    /// FIFO queues: the group of every message.
    pub message_group_id: Option<String>,
    pub auth: Auth,
    /// `spec.endpoint.url`: where this component's SQS and S3 calls go (before
    /// `AWS_ENDPOINT_URL*`).
    pub endpoint: Option<String>,
}

impl SqsTargetConfig {
    pub fn decode(
        doc: &mut Obj<'_>,
        options: &LoadOptions,
        problems: &mut Problems,
    ) -> Option<Self> {
        let metadata = common::metadata(doc, problems);
        let mut spec = doc.require_obj("spec", problems)?;
        let queue = spec.require_parsed::<QueueArn>("arn", problems);
        let discard_context = spec
            .bool("discardCloudEventContext", problems)
            .unwrap_or(false);
        let group_path = spec.path_of("messageGroupId");
        let message_group_id = spec.string("messageGroupId", problems);
        let auth = auth::decode(&mut spec, options, problems);
        let endpoint = common::endpoint(&mut spec, problems);
        spec.get("adapterOverrides"); // Kubernetes deployment options: not ours
        spec.finish(problems);
        if let Some(queue) = &queue {
            match (&message_group_id, queue.is_fifo()) {
                (None, true) => problems.add(
                    &group_path,
                    format!(
                        "is required: {} is a FIFO queue, and every message needs a group",
                        queue.name
                    ),
                ),
                (Some(_), false) => problems.add(
                    &group_path,
                    format!(
                        "only FIFO queues (.fifo) take a message group id; {} is a standard queue",
                        queue.name
                    ),
                ),
                (Some(group), true) if !valid_group_id(group) => problems.add(
                    &group_path,
                    "must be 1 to 128 characters of letters, digits and punctuation",
                ),
                _ => {}
            }
        }
        Some(SqsTargetConfig {
            metadata: metadata?,
            queue: queue?,
            discard_context,
            message_group_id,
            auth: auth?,
            endpoint,
        })
    }
}

/// SQS message group ids: 1 to 128 characters from `!` to `~`.
fn valid_group_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| (b'!'..=b'~').contains(&b))
}
