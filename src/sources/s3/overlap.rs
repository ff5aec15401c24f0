//! The check S3 makes of a bucket's notification configuration, made before we write ours:
//! real S3 refuses ("Configuration is ambiguously defined") two entries — queue, topic or
//! Lambda alike — whose event types overlap while neither their key prefixes nor their key
//! suffixes tell them apart. moto accepts such configurations, so without this check a test
//! would pass that production fails; with it, the error names both entries.

use aws_sdk_s3::types::{
    FilterRuleName, LambdaFunctionConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, TopicConfiguration,
};

/// One entry of a bucket's notification configuration, as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The entry's id (S3 makes one up when the writer gave none).
    pub id: String,
    /// Where it sends, for messages: a queue, topic or function ARN.
    pub destination: String,
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

/// Two entries that S3 would find ambiguous, and the event types through which they overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub other: Subscription,
    pub ours: String,
    pub theirs: String,
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the bucket's notification entry {:?} (to {}) already subscribes to {}, which overlaps \
             this source's {} with no key prefix or suffix to tell them apart; S3 refuses such a \
             configuration (\"Configuration is ambiguously defined\"). Give the sources event \
             types that do not overlap, or remove that entry",
            self.other.id, self.other.destination, self.theirs, self.ours
        )
    }
}

/// Whether S3 would notify both event types for one change: equal, or one a wildcard family
/// (`s3:ObjectCreated:*`) that holds the other.
pub fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |family: &str, event: &str| {
        family
            .strip_suffix('*')
            .is_some_and(|stem| event.starts_with(stem))
    };
    a == b || covers(a, b) || covers(b, a)
}

/// Whether one key can match both filters: the prefixes agree (one starts the other; no prefix
/// matches all) and so do the suffixes.
fn filters_overlap(a: &Subscription, b: &Subscription) -> bool {
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    prefixes && suffixes
}

/// The first entry of `others` (ours, by id, excluded) that S3 would find ambiguous with `ours`.
pub fn find_overlap(ours: &Subscription, others: &[Subscription]) -> Option<Overlap> {
    others
        .iter()
        .filter(|other| other.id != ours.id && filters_overlap(ours, other))
        .find_map(|other| {
            ours.events.iter().find_map(|mine| {
                other
                    .events
                    .iter()
                    .find(|theirs| events_overlap(mine, theirs))
                    .map(|theirs| Overlap {
                        other: other.clone(),
                        ours: mine.clone(),
                        theirs: theirs.clone(),
                    })
            })
        })
}

fn key_filter(filter: Option<&NotificationConfigurationFilter>) -> (String, String) {
    let (mut prefix, mut suffix) = (String::new(), String::new());
    let rules = filter
        .and_then(|f| f.key())
        .map(|key| key.filter_rules())
        .unwrap_or_default();
    for rule in rules {
        let value = rule.value().unwrap_or_default().to_string();
        match rule.name() {
            Some(FilterRuleName::Prefix) => prefix = value,
            Some(FilterRuleName::Suffix) => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

fn subscription(
    id: Option<&str>,
    destination: &str,
    events: &[aws_sdk_s3::types::Event],
    filter: Option<&NotificationConfigurationFilter>,
) -> Subscription {
    let (prefix, suffix) = key_filter(filter);
    Subscription {
        id: id.unwrap_or("(no id)").to_string(),
        destination: destination.to_string(),
        events: events.iter().map(|e| e.as_str().to_string()).collect(),
        prefix,
        suffix,
    }
}

/// Every queue, topic and Lambda entry of a configuration (EventBridge takes everything and
/// conflicts with nothing).
pub fn subscriptions(
    queues: &[QueueConfiguration],
    topics: &[TopicConfiguration],
    lambdas: &[LambdaFunctionConfiguration],
) -> Vec<Subscription> {
    let queues = queues
        .iter()
        .map(|q| subscription(q.id(), q.queue_arn(), q.events(), q.filter()));
    let topics = topics
        .iter()
        .map(|t| subscription(t.id(), t.topic_arn(), t.events(), t.filter()));
    let lambdas = lambdas
        .iter()
        .map(|l| subscription(l.id(), l.lambda_function_arn(), l.events(), l.filter()));
    queues.chain(topics).chain(lambdas).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, events: &[&str], prefix: &str, suffix: &str) -> Subscription {
        Subscription {
            id: id.into(),
            destination: format!("arn:aws:sqs:us-east-1:123456789012:{id}"),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn wildcard_families_overlap_their_members_only() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*"));
        assert!(events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Put"
        ));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Post"
        ));
        assert!(!events_overlap(
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:Delete"
        ));
        assert!(!events_overlap("s3:ObjectRemoved:*", "s3:ObjectRestore:*"));
    }

    #[test]
    fn entries_overlap_unless_events_prefixes_or_suffixes_differ() {
        let ours = entry("ours", &["s3:ObjectCreated:*"], "", "");
        let same_family = entry("other", &["s3:ObjectCreated:Put"], "images/", ".jpg");
        let found = find_overlap(&ours, &[same_family]).expect("no filter overlaps every key");
        assert_eq!(found.other.id, "other");
        assert_eq!(
            (found.ours.as_str(), found.theirs.as_str()),
            ("s3:ObjectCreated:*", "s3:ObjectCreated:Put")
        );
        let message = found.to_string();
        assert!(
            message.contains("\"other\"") && message.contains("ambiguously defined"),
            "{message}"
        );

        let other_events = entry("removed", &["s3:ObjectRemoved:*"], "", "");
        assert_eq!(find_overlap(&ours, &[other_events]), None);
        // Ours itself (an update of our own entry) is no conflict.
        assert_eq!(find_overlap(&ours, std::slice::from_ref(&ours)), None);

        let images = entry("a", &["s3:ObjectCreated:*"], "images/", "");
        let videos = entry("b", &["s3:ObjectCreated:*"], "videos/", "");
        let nested = entry("c", &["s3:ObjectCreated:*"], "images/2026/", "");
        assert_eq!(find_overlap(&images, std::slice::from_ref(&videos)), None);
        assert!(
            find_overlap(&images, &[nested]).is_some(),
            "prefix of a prefix"
        );

        let jpg = entry("d", &["s3:ObjectCreated:*"], "images/", ".jpg");
        let png = entry("e", &["s3:ObjectCreated:*"], "images/", ".png");
        assert_eq!(find_overlap(&jpg, &[png]), None, "suffixes tell them apart");
    }
}
