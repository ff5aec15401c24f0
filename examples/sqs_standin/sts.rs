//! STS `AssumeRole` in the AWS query protocol (`POST /`, `Content-Type:
//! application/x-www-form-urlencoded`, `Action=AssumeRole&Version=2011-06-15&RoleArn=...`),
//! answered in `text/xml` as STS does, so that aws-config's `AssumeRoleProvider` can be pointed
//! at the stand-in (`AWS_ENDPOINT_URL`). Every answer has fresh, distinct keys that expire
//! `--sts-expiry-secs` after the call, whatever `DurationSeconds` asked: a benchmark can make the
//! adapter refresh its credentials every few seconds. Signatures and policies are not checked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use crate::protocol::md5_hex;
use crate::queue::uuid;

/// Largest form body read (an `AssumeRole` with an inline policy is a few KiB).
const MAX_FORM: usize = 1 << 20;
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The STS side of the stand-in: the credentials' lifetime and the `AssumeRole` counter.
pub struct Sts {
    expiry_secs: u32,
    /// `AssumeRole` requests, answered or refused (`assume_role` in `/stats`).
    assume_role: AtomicU64,
    /// Numbers the keys handed out, so each answer's are distinct.
    next_key: AtomicU64,
}

/// A query-protocol error: HTTP 400, `<ErrorResponse><Error><Type>Sender</Type>...`.
#[derive(Debug, PartialEq, Eq)]
pub struct StsError {
    pub code: &'static str,
    pub message: String,
}

impl Sts {
    pub fn new(expiry_secs: u32) -> Sts {
        Sts {
            expiry_secs,
            assume_role: AtomicU64::new(0),
            next_key: AtomicU64::new(1),
        }
    }

    /// `AssumeRole` requests since start.
    pub fn assume_role_count(&self) -> u64 {
        self.assume_role.load(Ordering::Relaxed)
    }

    /// The XML answer to a form body: `Ok` for credentials, `Err` for an error answer.
    pub fn answer(
        &self,
        default_account: &str,
        form_body: &[u8],
        request_id: &str,
    ) -> Result<String, StsError> {
        let params = form(form_body);
        let action = params.get("Action").map(String::as_str).unwrap_or("");
        match action {
            "AssumeRole" => {
                self.assume_role.fetch_add(1, Ordering::Relaxed);
                self.assume_role(default_account, &params, request_id)
            }
            "" => Err(StsError {
                code: "MissingAction",
                message: "The request must contain the parameter Action.".into(),
            }),
            other => Err(StsError {
                code: "InvalidAction",
                message: format!(
                    "Could not find operation {other} for version 2011-06-15 (the stand-in serves \
                     STS AssumeRole in the query protocol, SQS in JSON 1.0 only)"
                ),
            }),
        }
    }

    fn assume_role(
        &self,
        default_account: &str,
        params: &HashMap<String, String>,
        request_id: &str,
    ) -> Result<String, StsError> {
        let required = |name: &str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| StsError {
                    code: "MissingParameter",
                    message: format!("The request must contain the parameter {name}."),
                })
        };
        let role_arn = required("RoleArn")?;
        let session = required("RoleSessionName")?;
        // arn:aws:iam::<account>:role/<path/><name>
        let mut fields = role_arn.splitn(6, ':');
        let account = fields
            .nth(4)
            .filter(|a| !a.is_empty())
            .unwrap_or(default_account);
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);

        let n = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (a, b): (u128, u128) = (rand::random(), rand::random());
        let access_key_id = format!("ASIA{n:016X}");
        let secret = format!("{a:032x}{n:08x}");
        let token = format!("IQoJb3JpZ2luX2VjE{n:016X}{a:032x}{b:032x}");
        let expiration = chrono::Utc::now() + chrono::TimeDelta::seconds(self.expiry_secs.into());
        let expiration = expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // Stable for a role, as a real role id is.
        let role_id = format!(
            "AROA{}",
            &md5_hex(role_arn.as_bytes()).to_ascii_uppercase()[..17]
        );
        Ok(format!(
            concat!(
                "<AssumeRoleResponse xmlns=\"{xmlns}\"><AssumeRoleResult>",
                "<Credentials><AccessKeyId>{key}</AccessKeyId>",
                "<SecretAccessKey>{secret}</SecretAccessKey>",
                "<SessionToken>{token}</SessionToken>",
                "<Expiration>{expiration}</Expiration></Credentials>",
                "<AssumedRoleUser><AssumedRoleId>{role_id}:{session}</AssumedRoleId>",
                "<Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn></AssumedRoleUser>",
                "</AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId>",
                "</ResponseMetadata></AssumeRoleResponse>"
            ),
            xmlns = XMLNS,
            key = access_key_id,
            secret = secret,
            token = token,
            expiration = expiration,
            role_id = role_id,
            session = escape(session),
            account = escape(account),
            role = escape(role_name),
            request_id = request_id,
        ))
    }
}

impl StsError {
    pub fn body(&self, request_id: &str) -> String {
        format!(
            concat!(
                "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>Sender</Type><Code>{code}</Code>",
                "<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>",
                "</ErrorResponse>"
            ),
            xmlns = XMLNS,
            code = self.code,
            message = escape(&self.message),
            request_id = request_id,
        )
    }
}

/// Whether a request is in the query protocol (a form body posted), so is STS's.
pub fn is_query<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST
        && request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .get(..33)
                    .is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
            })
}

/// Serves one query-protocol request.
pub async fn call(app: &crate::App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(request.into_body(), MAX_FORM).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return crate::text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {error}"),
            );
        }
    };
    let request_id = uuid();
    let (status, xml) = match app.sts.answer(&app.account, &body, &request_id) {
        Ok(xml) => (StatusCode::OK, xml),
        Err(error) => (StatusCode::BAD_REQUEST, error.body(&request_id)),
    };
    let mut response = crate::response(status, "text/xml", xml.into_bytes());
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// `application/x-www-form-urlencoded` pairs (a repeated name keeps its last value).
fn form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['<', '>', '&', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
        let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
        let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
        &xml[start..end]
    }

    #[test]
    fn assume_role_answers_distinct_keys() {
        let sts = Sts::new(60);
        let body = b"Action=AssumeRole&Version=2011-06-15\
            &RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Fteam%2Fcross\
            &RoleSessionName=bench%40x&DurationSeconds=3600&ExternalId=e+1";
        let first = sts.answer("123456789012", body, "rid-1").unwrap();
        let second = sts.answer("123456789012", body, "rid-2").unwrap();
        assert!(first.starts_with("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/"));
        assert_ne!(
            between(&first, "AccessKeyId"),
            between(&second, "AccessKeyId")
        );
        assert_ne!(
            between(&first, "SecretAccessKey"),
            between(&second, "SecretAccessKey")
        );
        assert_ne!(
            between(&first, "SessionToken"),
            between(&second, "SessionToken")
        );
        assert_eq!(between(&first, "AccessKeyId").len(), 20);
        assert_eq!(
            between(&first, "Arn"),
            "arn:aws:sts::210987654321:assumed-role/cross/bench@x"
        );
        assert!(between(&first, "AssumedRoleId").starts_with("AROA"));
        assert!(between(&first, "AssumedRoleId").ends_with(":bench@x"));
        assert_eq!(between(&second, "RequestId"), "rid-2");
        let expiration = chrono::DateTime::parse_from_rfc3339(between(&first, "Expiration"))
            .unwrap()
            .signed_duration_since(chrono::Utc::now())
            .num_seconds();
        assert!((57..=60).contains(&expiration), "{expiration}");
        assert_eq!(sts.assume_role_count(), 2);
    }

    #[test]
    fn errors_have_the_query_shape() {
        let sts = Sts::new(60);
        let missing = sts
            .answer("1", b"Action=AssumeRole&RoleSessionName=s", "r")
            .unwrap_err();
        assert_eq!(missing.code, "MissingParameter");
        assert!(missing.message.contains("RoleArn"));
        assert_eq!(
            missing.body("r"),
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>MissingParameter</Code><Message>The request must contain \
             the parameter RoleArn.</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        );
        let unknown = sts
            .answer("1", b"Action=GetCallerIdentity&Version=2011-06-15", "r")
            .unwrap_err();
        assert_eq!(unknown.code, "InvalidAction");
        assert_eq!(sts.answer("1", b"", "r").unwrap_err().code, "MissingAction");
        // Refused AssumeRole calls count too; other actions do not.
        assert_eq!(sts.assume_role_count(), 1);
        assert_eq!(escape("a<&>\"'"), "a&lt;&amp;&gt;&quot;&apos;");
    }
}
