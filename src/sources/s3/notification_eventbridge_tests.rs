//! Tests of EventBridge S3 events: the sample, AWS's mapping of `detail-type`, `reason` and
//! `deletion-type` to S3 event names, the `eventTypes` filter, and the fallbacks.

use super::*;

#[test]
fn eventbridge_sample() {
    let e = one_event(EVENTBRIDGE);
    assert_eq!(e.event_name, "ObjectCreated:Put");
    assert_eq!(e.ce_type, "com.amazon.s3.objectcreated");
    assert_eq!(e.source, "arn:aws:s3:::media-uploads");
    assert_eq!(
        e.subject, "photos/raw key with spaces+plus%25.jpg",
        "not decoded"
    );
    assert_eq!(e.id, "17793124-05d4-b198-2fde-7ededc63b103");
    assert_eq!(e.time, Some(at(2026, 11, 28, 12, 34, 56, 0)));
    assert_eq!(&e.data[..], EVENTBRIDGE.as_bytes());
}

fn eventbridge(detail_type: &str, reason: Option<&str>) -> String {
    eventbridge_deleted(detail_type, reason, None)
}

fn eventbridge_deleted(detail_type: &str, reason: Option<&str>, deletion: Option<&str>) -> String {
    let mut ev = json(EVENTBRIDGE.as_bytes());
    ev["detail-type"] = detail_type.into();
    match reason {
        Some(r) => ev["detail"]["reason"] = r.into(),
        None => drop(ev["detail"].as_object_mut().unwrap().remove("reason")),
    }
    if let Some(deletion) = deletion {
        ev["detail"]["deletion-type"] = deletion.into();
    }
    ev.to_string()
}

#[test]
fn eventbridge_detail_types_map_to_s3_event_names() {
    const PERMANENT: Option<&str> = Some("Permanently Deleted");
    const MARKER: Option<&str> = Some("Delete Marker Created");
    let cases = [
        (
            "Object Created",
            Some("PutObject"),
            None,
            "ObjectCreated:Put",
        ),
        (
            "Object Created",
            Some("POST Object"),
            None,
            "ObjectCreated:Post",
        ),
        (
            "Object Created",
            Some("CopyObject"),
            None,
            "ObjectCreated:Copy",
        ),
        (
            "Object Created",
            Some("CompleteMultipartUpload"),
            None,
            "ObjectCreated:CompleteMultipartUpload",
        ),
        (
            "Object Created",
            Some("SomethingNew"),
            None,
            "ObjectCreated:SomethingNew",
        ),
        ("Object Created", None, None, "ObjectCreated:*"),
        (
            "Object Deleted",
            Some("DeleteObject"),
            PERMANENT,
            "ObjectRemoved:Delete",
        ),
        (
            "Object Deleted",
            Some("DeleteObject"),
            None,
            "ObjectRemoved:Delete",
        ),
        (
            "Object Deleted",
            Some("DeleteObject"),
            MARKER,
            "ObjectRemoved:DeleteMarkerCreated",
        ),
        (
            "Object Deleted",
            Some("Lifecycle Expiration"),
            PERMANENT,
            "LifecycleExpiration:Delete",
        ),
        (
            "Object Deleted",
            Some("Lifecycle Expiration"),
            MARKER,
            "LifecycleExpiration:DeleteMarkerCreated",
        ),
        ("Object Deleted", None, None, "ObjectRemoved:*"),
        ("Object Restore Initiated", None, None, "ObjectRestore:Post"),
        (
            "Object Restore Completed",
            None,
            None,
            "ObjectRestore:Completed",
        ),
        ("Object Restore Expired", None, None, "ObjectRestore:Delete"),
        ("Object Tags Added", None, None, "ObjectTagging:Put"),
        ("Object Tags Deleted", None, None, "ObjectTagging:Delete"),
        ("Object ACL Updated", None, None, "ObjectAcl:Put"),
        (
            "Object Storage Class Changed",
            None,
            None,
            "LifecycleTransition",
        ),
        (
            "Object Access Tier Changed",
            None,
            None,
            "IntelligentTiering",
        ),
    ];
    for (detail_type, reason, deletion, name) in cases {
        let e = one_event(&eventbridge_deleted(detail_type, reason, deletion));
        assert_eq!(
            e.event_name, name,
            "{detail_type} / {reason:?} / {deletion:?}"
        );
        let family = name.split(':').next().unwrap().to_ascii_lowercase();
        assert_eq!(e.ce_type, format!("com.amazon.s3.{family}"));
    }
    let Body::Malformed(m) = parse_body(&eventbridge("Object Teleported", None)) else {
        panic!("unknown detail-type");
    };
    assert_eq!(m.label(), "invalid_eventbridge");
}

#[test]
fn event_type_filters_select_eventbridge_events_like_notifications() {
    let put = one_event(&eventbridge("Object Created", Some("PutObject")));
    let copy = one_event(&eventbridge("Object Created", Some("CopyObject")));
    let removed = one_event(&eventbridge_deleted(
        "Object Deleted",
        Some("DeleteObject"),
        Some("Delete Marker Created"),
    ));
    let only_put = vec!["s3:ObjectCreated:Put".to_string()];
    assert!(event_type_matches(&only_put, &put.event_name));
    assert!(!event_type_matches(&only_put, &copy.event_name));
    let created = vec!["s3:ObjectCreated:*".to_string()];
    assert!(event_type_matches(&created, &copy.event_name));
    assert!(!event_type_matches(&created, &removed.event_name));
    let markers = vec!["s3:ObjectRemoved:DeleteMarkerCreated".to_string()];
    assert!(event_type_matches(&markers, &removed.event_name));
}

#[test]
fn eventbridge_fallbacks() {
    let mut ev = json(EVENTBRIDGE.as_bytes());
    let obj = ev.as_object_mut().unwrap();
    obj.remove("id");
    obj.insert("resources".into(), serde_json::json!(["not-an-arn"]));
    obj.insert("region".into(), "cn-northwest-1".into());
    let body = ev.to_string();
    let e = one_event(&body);
    assert_eq!(e.source, "arn:aws-cn:s3:::media-uploads");
    assert_eq!(e.id.len(), 32);
    assert_eq!(one_event(&body).id, e.id);
    ev["detail"]["bucket"] = serde_json::json!({});
    let Body::Malformed(m) = parse_body(&ev.to_string()) else {
        panic!("no bucket");
    };
    assert_eq!(m.label(), "invalid_eventbridge");
    // Not from S3: not our format.
    assert_eq!(
        parse_body(r#"{"source":"aws.ec2","detail-type":"Object Created"}"#),
        Body::Unrecognized
    );
}
