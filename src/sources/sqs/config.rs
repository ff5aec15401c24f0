//! `AWSSQSSource` manifests: TriggerMesh's fields plus our documented options for receiving,
//! delivery and event encoding (as the `AWSS3Source` has them).
//!
//! ```yaml
//! spec:
//!   arn: arn:aws:sqs:us-east-1:123456789012:orders     # required: the queue (standard or FIFO)
//!   messageProcessor: default                          # or s3, eventbridge
//!   receiveOptions: { visibilityTimeout: 30s }         # TriggerMesh's
//!   auth: { credentials: {...} }                       # optional: default chain otherwise
//!   endpoint: { url: http://localstack:4566 }          # optional
//!   sink: { uri: http://broker/ }                      # required
//!   delivery: {...}                                    # as for AWSS3Source
//!   eventEncoding: binary                              # or structured
//!   receive: {...}                                     # as for AWSS3Source
//! ```

use crate::aws::arn::QueueArn;
use crate::config::LoadOptions;
use crate::config::auth;
use crate::config::common;
use crate::config::decode::{Obj, Problems};
use crate::sources::s3::config::{
    Conversion, Processor, S3SourceConfig, decode_receive, decode_sink_and_delivery,
    visibility_timeout,
};

/// Decodes an `AWSSQSSource` into the configuration the queue machinery runs.
pub fn decode(
    doc: &mut Obj<'_>,
    options: &LoadOptions,
    problems: &mut Problems,
) -> Option<S3SourceConfig> {
    let metadata = common::metadata(doc, problems);
    let mut spec = doc.require_obj("spec", problems)?;
    let queue = spec.require_parsed::<QueueArn>("arn", problems);
    let processor = match spec.string("messageProcessor", problems) {
        None => Some(Processor::Default),
        Some(name) => Processor::from_name(&name)
            .map_err(|message| problems.add(&spec.path_of("messageProcessor"), message))
            .ok(),
    };
    let auth = auth::decode(&mut spec, options, problems);
    let endpoint = common::endpoint(&mut spec, problems);
    let (sink, delivery, encoding) = decode_sink_and_delivery(&mut spec, problems);
    let mut receive = decode_receive(&mut spec, problems);
    // TriggerMesh's visibility timeout; our `receive.visibilityTimeout` says the same.
    if let Some(mut options) = spec.obj("receiveOptions", problems) {
        if let Some(timeout) = visibility_timeout(&mut options, problems) {
            receive.visibility_timeout = timeout;
        }
        options.finish(problems);
    }
    spec.get("adapterOverrides"); // Kubernetes deployment options: not ours
    spec.finish(problems);
    Some(S3SourceConfig {
        metadata: metadata?,
        bucket: None,
        event_types: Vec::new(),
        queue: Some(queue?),
        auth: auth?,
        endpoint,
        sink_ref: sink.as_ref().and_then(|s| s.reference.clone()),
        sink: sink?.uri,
        delivery,
        encoding,
        // TriggerMesh's s3 processor forwards the test event; other bodies always go out.
        forward_test_events: true,
        forward_unrecognized: true,
        receive,
        conversion: Conversion::SqsMessages(processor?),
        event_source: None,
        event_type: None,
    })
}
