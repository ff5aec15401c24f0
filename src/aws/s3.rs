//! S3 clients as every component builds them: bounded call times, path-style addressing for
//! custom endpoints, and the bucket's region from `GetBucketLocation`.

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationError;

use super::call_metrics::CallMetrics;
use super::credentials::Refreshing;
use super::with_fresh_credentials;
use crate::telemetry::Component;

/// An S3 client from `sdk`, in `region` when given, its calls counted for `component`.
pub fn client(sdk: &SdkConfig, region: Option<&str>, component: &Component) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk)
        .interceptor(CallMetrics::new(component))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(region) = region {
        builder = builder.region(Region::new(region.to_string()));
    }
    // S3-compatible endpoints (spec.endpoint.url, AWS_ENDPOINT_URL[_S3]) rarely serve
    // virtual-hosted buckets: address them by path.
    if sdk.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
    {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The bucket's region. `GetBucketLocation` answers nothing for us-east-1 and `EU` for
/// eu-west-1 (a legacy name).
pub async fn bucket_region(
    client: &aws_sdk_s3::Client,
    credentials: &Refreshing,
    bucket: &str,
) -> Result<String, SdkError<GetBucketLocationError>> {
    let output = with_fresh_credentials(credentials, || {
        client.get_bucket_location().bucket(bucket).send()
    })
    .await?;
    Ok(region_of(
        output.location_constraint.as_ref().map(|c| c.as_str()),
    ))
}

fn region_of(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn legacy_location_constraints() {
        assert_eq!(super::region_of(None), "us-east-1");
        assert_eq!(super::region_of(Some("")), "us-east-1");
        assert_eq!(super::region_of(Some("EU")), "eu-west-1");
        assert_eq!(super::region_of(Some("ap-south-1")), "ap-south-1");
    }
}
