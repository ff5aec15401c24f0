//! S3 event notifications to preload: the body S3 itself sends to a queue, one
//! `ObjectCreated:Put` record per object, every object key distinct (across calls too).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::protocol::md5_hex;
use crate::queue::NewMessage;

pub struct Generator {
    /// Already JSON-quoted.
    bucket: String,
    region: String,
    next_object: AtomicU64,
}

impl Generator {
    pub fn new(bucket: &str, region: &str) -> Generator {
        Generator {
            bucket: serde_json::to_string(bucket).unwrap_or_default(),
            region: serde_json::to_string(region).unwrap_or_default(),
            next_object: AtomicU64::new(0),
        }
    }

    /// `count` messages of `records` records each.
    pub fn messages(&self, count: usize, records: usize) -> Vec<NewMessage> {
        let records = records.max(1);
        let first = self
            .next_object
            .fetch_add((count * records) as u64, Ordering::Relaxed);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let time = serde_json::to_string(&time).unwrap_or_default();
        (0..count)
            .map(|m| {
                let mut body = String::with_capacity(40 + records * 1100);
                body.push_str("{\"Records\":[");
                for r in 0..records {
                    if r > 0 {
                        body.push(',');
                    }
                    self.record(&mut body, first + (m * records + r) as u64, &time);
                }
                body.push_str("]}");
                NewMessage {
                    md5_of_body: md5_hex(body.as_bytes()).into(),
                    body: Arc::from(body),
                    attributes: None,
                    delay: Duration::ZERO,
                    group_id: None,
                    deduplication_id: None,
                }
            })
            .collect()
    }

    fn record(&self, out: &mut String, object: u64, time: &str) {
        use std::fmt::Write;
        let (bucket, region) = (&self.bucket, &self.region);
        let plain_bucket = &bucket[1..bucket.len() - 1];
        let random: u128 = rand::random();
        let request_id = format!("{:016X}", (random >> 64) as u64);
        let etag = format!("{:032x}", random ^ u128::from(object));
        let _ = write!(
            out,
            concat!(
                "{{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":{region},",
                "\"eventTime\":{time},\"eventName\":\"ObjectCreated:Put\",",
                "\"userIdentity\":{{\"principalId\":\"AWS:AIDAEXAMPLEUSERID\"}},",
                "\"requestParameters\":{{\"sourceIPAddress\":\"203.0.113.10\"}},",
                "\"responseElements\":{{\"x-amz-request-id\":\"{request_id}\",",
                "\"x-amz-id-2\":\"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD\"}},",
                "\"s3\":{{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"bench\",",
                "\"bucket\":{{\"name\":{bucket},\"ownerIdentity\":{{\"principalId\":\"A3NL1KOZZKExample\"}},",
                "\"arn\":\"arn:aws:s3:::{plain_bucket}\"}},",
                "\"object\":{{\"key\":\"bench/{shard:02x}/object-{object:010}.jpg\",\"size\":{size},",
                "\"eTag\":\"{etag}\",\"sequencer\":\"{sequencer:018X}\"}}}}}}"
            ),
            region = region,
            time = time,
            request_id = request_id,
            bucket = bucket,
            plain_bucket = plain_bucket,
            shard = object % 256,
            object = object,
            size = 1024 + object % 4096,
            etag = etag,
            sequencer = 0x55AE_D6DC_D902_81E5_u128 + u128::from(object),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_s3_notifications_with_distinct_keys() {
        let generator = Generator::new("media-uploads", "us-east-1");
        let mut keys = std::collections::HashSet::new();
        for round in 0..2 {
            for message in generator.messages(3, 2 + round) {
                let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
                assert_eq!(&*message.md5_of_body, md5_hex(message.body.as_bytes()));
                let records = body["Records"].as_array().unwrap();
                assert_eq!(records.len(), 2 + round);
                for record in records {
                    assert_eq!(record["eventName"], "ObjectCreated:Put");
                    assert_eq!(record["s3"]["bucket"]["name"], "media-uploads");
                    assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::media-uploads");
                    assert!(record["eventTime"].as_str().unwrap().ends_with('Z'));
                    let key = record["s3"]["object"]["key"].as_str().unwrap().to_string();
                    assert!(keys.insert(key));
                }
            }
        }
        assert_eq!(keys.len(), 3 * 2 + 3 * 3);
    }
}
