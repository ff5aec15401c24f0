//! `AWSS3Target` manifests.
//!
//! ```yaml
//! spec:
//!   arn: arn:aws:s3:::archive          # required: the bucket
//!   discardCloudEventContext: false    # true: the object is only `data`
//!   auth: { ... }                      # see config::auth
//! ```

use crate::aws::arn::BucketArn;
use crate::config::LoadOptions;
use crate::config::auth::{self, Auth};
use crate::config::common::{self, Metadata};
use crate::config::decode::{Obj, Problems};

/// The kind name used in metric labels and logs.
pub const COMPONENT: &str = "awss3target";

/// A decoded `AWSS3Target`.
#[derive(Debug, Clone)]
pub struct S3TargetConfig {
    pub metadata: Metadata,
    pub bucket: BucketArn,
    /// Only `data` as the object (otherwise the whole event, structured).
    pub discard_context: bool,
    pub auth: Auth,
    /// `spec.endpoint.url`: where this component's SQS and S3 calls go (before
    /// `AWS_ENDPOINT_URL*`).
    pub endpoint: Option<String>,
}

impl S3TargetConfig {
    pub fn decode(
        doc: &mut Obj<'_>,
        options: &LoadOptions,
        problems: &mut Problems,
    ) -> Option<Self> {
        let metadata = common::metadata(doc, problems);
        let mut spec = doc.require_obj("spec", problems)?;
        let bucket = spec.require_parsed::<BucketArn>("arn", problems);
        let discard_context = spec
            .bool("discardCloudEventContext", problems)
            .unwrap_or(false);
        let auth = auth::decode(&mut spec, options, problems);
        let endpoint = common::endpoint(&mut spec, problems);
        spec.get("adapterOverrides"); // Kubernetes deployment options: not ours
        spec.finish(problems);
        Some(S3TargetConfig {
            metadata: metadata?,
            bucket: bucket?,
            discard_context,
            auth: auth?,
            endpoint,
        })
    }
}
