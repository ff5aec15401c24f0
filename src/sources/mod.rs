//! Sources: components that read from AWS and send CloudEvents to a sink.

pub mod s3;
