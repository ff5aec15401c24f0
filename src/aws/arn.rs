//! Amazon Resource Names of the resources the adapter works with: S3 buckets and SQS queues.
//!
//! The queue URL is never built from an ARN by hand (it differs between partitions, endpoints
//! and emulators); the ARN gives the name and owner account that `GetQueueUrl` needs.

use std::fmt;

/// `arn:<partition>:s3:::<bucket>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketArn {
    pub partition: String,
    pub bucket: String,
}

/// `arn:<partition>:sqs:<region>:<account>:<queue name>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl QueueArn {
    /// FIFO queues' names end in `.fifo`.
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

impl fmt::Display for BucketArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:s3:::{}", self.partition, self.bucket)
    }
}

impl fmt::Display for QueueArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:sqs:{}:{}:{}",
            self.partition, self.region, self.account, self.name
        )
    }
}

/// Splits an ARN into its six parts after checking the service.
fn split<'a>(arn: &'a str, service: &str) -> Result<[&'a str; 5], String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, found, region, account, resource] if *found == service => {
            if partition.is_empty() {
                return Err(format!("{arn:?} has no partition"));
            }
            Ok([partition, found, region, account, resource])
        }
        ["arn", _, found, _, _, _] => Err(format!(
            "expected an {service} ARN, found a {found:?} ARN: {arn:?}"
        )),
        _ => Err(format!(
            "expected an ARN of the form arn:<partition>:{service}:..., found {arn:?}"
        )),
    }
}

impl std::str::FromStr for BucketArn {
    type Err = String;

    fn from_str(arn: &str) -> Result<Self, String> {
        let [partition, _, region, account, bucket] = split(arn, "s3")?;
        if !region.is_empty() || !account.is_empty() {
            return Err(format!(
                "a bucket ARN has no region or account: expected arn:{partition}:s3:::<bucket>, found {arn:?}"
            ));
        }
        validate_bucket_name(bucket)?;
        Ok(BucketArn {
            partition: partition.to_string(),
            bucket: bucket.to_string(),
        })
    }
}

impl std::str::FromStr for QueueArn {
    type Err = String;

    fn from_str(arn: &str) -> Result<Self, String> {
        let [partition, _, region, account, name] = split(arn, "sqs")?;
        if region.is_empty() {
            return Err(format!("the queue ARN {arn:?} has no region"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "the queue ARN {arn:?} needs a 12-digit account id, found {account:?}"
            ));
        }
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if name.is_empty()
            || name.len() > 80
            || !base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "the queue name {name:?} must be 1 to 80 letters, digits, '-' or '_' (plus \".fifo\")"
            ));
        }
        Ok(QueueArn {
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

/// S3's bucket naming rules (general purpose buckets), so typos fail at validation.
fn validate_bucket_name(bucket: &str) -> Result<(), String> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ok_ends && !bucket.contains("..") {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a valid bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_queue_arns() {
        let bucket: BucketArn = "arn:aws:s3:::logs.example.com".parse().unwrap();
        assert_eq!(bucket.bucket, "logs.example.com");
        assert_eq!(bucket.to_string(), "arn:aws:s3:::logs.example.com");
        let cn: BucketArn = "arn:aws-cn:s3:::b-1".parse().unwrap();
        assert_eq!(cn.partition, "aws-cn");

        let queue: QueueArn = "arn:aws:sqs:eu-west-1:123456789012:orders.fifo"
            .parse()
            .unwrap();
        assert_eq!(queue.region, "eu-west-1");
        assert_eq!(queue.account, "123456789012");
        assert!(queue.is_fifo());
        assert_eq!(
            queue.to_string(),
            "arn:aws:sqs:eu-west-1:123456789012:orders.fifo"
        );
    }

    #[test]
    fn explains_bad_arns() {
        let err = "arn:aws:sqs:us-east-1:123456789012:q"
            .parse::<BucketArn>()
            .unwrap_err();
        assert!(err.contains("expected an s3 ARN"), "{err}");
        assert!("arn:aws:s3:::UPPER".parse::<BucketArn>().is_err());
        assert!("not-an-arn".parse::<QueueArn>().is_err());
        assert!("arn:aws:sqs:us-east-1:123:q".parse::<QueueArn>().is_err());
        assert!("arn:aws:sqs::123456789012:q".parse::<QueueArn>().is_err());
        assert!(
            "arn:aws:sqs:us-east-1:123456789012:bad name"
                .parse::<QueueArn>()
                .is_err()
        );
    }
}
