//! The command line as a user runs it: the built binary, its exit codes, what it prints.
//!
//! `validate` runs in a temporary directory with relative file names, so every problem line can be
//! compared exactly as a user reads it (`error: config.yaml: document 1 (...): spec.x: ...`).
//! `display` is started on a free port and sent real HTTP/1.1 requests over a plain TCP socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::command::{BIN, EXIT_CONFIG, Outcome, run_in, write};

/// How long a started `display` may take to accept connections or to exit after SIGTERM.
const PROCESS_DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers: validate

/// `validate --config config.yaml --secrets-dir secrets` on a file of these contents.
fn validate(text: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.yaml", text);
    run_in(
        dir.path(),
        &[
            "validate",
            "--config",
            "config.yaml",
            "--secrets-dir",
            "secrets",
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers: display

/// A running `display` sink; killed when dropped, so a failing test leaves no process behind.
struct DisplaySink {
    child: Child,
    port: u16,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl DisplaySink {
    /// Starts `display --addr 127.0.0.1:0` and reads the port it bound from its log line, so
    /// parallel tests can never race for a port.
    fn start() -> Self {
        let mut child = Command::new(BIN)
            .args(["display", "--addr", "127.0.0.1:0", "--log-format", "json"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start display");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().expect("wait");
                panic!("display exited before listening ({status})");
            };
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if entry["message"] == "display sink listening" {
                let local: std::net::SocketAddr = entry["local"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("no address in {line}"));
                break local.port();
            }
        };
        // Keep draining stderr so the process never blocks on a full pipe; keep it for `stop`.
        let stderr = std::thread::spawn(move || {
            lines
                .map_while(Result::ok)
                .map(|line| line + "\n")
                .collect::<String>()
        });
        DisplaySink {
            child,
            port,
            stderr: Some(stderr),
        }
    }

    /// Sends an HTTP/1.1 request and reads the whole answer.
    fn request(&self, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(PROCESS_DEADLINE))
            .expect("read timeout");
        let mut request = format!(
            "{method} / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).expect("send request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        Reply {
            status,
            body: body.to_string(),
        }
    }

    fn post(&self, headers: &[(&str, &str)], body: &str) -> Reply {
        self.request("POST", headers, body)
    }

    /// Sends SIGTERM, waits for the exit and returns the exit status and everything printed.
    fn stop(&mut self) -> (ExitStatus, String, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").arg("-TERM").arg(&pid).status();
        assert!(killed.expect("run kill").success(), "kill -TERM {pid}");
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "display ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .unwrap();
        let stderr = self
            .stderr
            .take()
            .expect("stderr")
            .join()
            .expect("stderr reader");
        (status, stdout, stderr)
    }
}

impl Drop for DisplaySink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    /// The `error` message of a JSON error answer.
    fn error(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body));
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error string in {:?}", self.body))
            .to_string()
    }
}

/// The printed block of the event with this id (`  id: <id>` line); exactly one must exist.
fn event_block<'a>(stdout: &'a str, id: &str) -> &'a str {
    let line = format!("\n  id: {id}\n");
    let blocks: Vec<&str> = event_blocks(stdout)
        .into_iter()
        .filter(|block| block.contains(&line))
        .collect();
    assert_eq!(blocks.len(), 1, "one block with id {id}; stdout:\n{stdout}");
    blocks[0]
}

/// Every printed event, each starting at its header line.
fn event_blocks(stdout: &str) -> Vec<&str> {
    const HEADER: &str = "☁️  cloudevents.Event\n";
    stdout
        .match_indices(HEADER)
        .map(|(start, _)| {
            let rest = &stdout[start + HEADER.len()..];
            let end = rest
                .find(HEADER)
                .map_or(stdout.len(), |n| start + HEADER.len() + n);
            &stdout[start..end]
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// validate

#[test]
fn validate_accepts_a_valid_source_with_literal_and_secret_file_credentials() {
    let dir = tempfile::tempdir().unwrap();
    // A mounted Kubernetes Secret: <secrets-dir>/<name>/<key>, with kubectl's trailing newline.
    write(
        dir.path(),
        "secrets/aws/AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG\n",
    );
    write(
        dir.path(),
        "uploads.yaml",
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata:
  name: uploads
spec:
  arn: arn:aws:s3:::media-uploads
  eventTypes: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  destination:
    sqs:
      queueARN: arn:aws:sqs:us-east-1:123456789012:uploads
  auth:
    credentials:
      accessKeyID:
        value: AKIAIOSFODNN7EXAMPLE
      secretAccessKey:
        valueFromSecret:
          name: aws
          key: AWS_SECRET_ACCESS_KEY
  sink:
    uri: http://127.0.0.1:9/
"#,
    );
    let secrets = dir.path().join("secrets");
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--config",
            "uploads.yaml",
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "ok: 1 component(s)\n");
    assert_eq!(out.errors(), Vec::<&str>::new());
}

#[test]
fn validate_counts_components_across_files() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second"] {
        write(
            dir.path(),
            &format!("{name}.yaml"),
            &format!(
                r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: {name} }}
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: "arn:aws:sqs:us-east-1:123456789012:{name}" }} }}
  sink: {{ uri: "http://127.0.0.1:9/" }}
"#
            ),
        );
    }
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--config",
            "first.yaml",
            "--config",
            "second.yaml",
        ],
    );
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "ok: 2 component(s)\n");
}

#[test]
fn validate_reports_every_problem_of_a_file_at_once() {
    let out = validate(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: first }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  sink: { uri: "http://127.0.0.1:9/" }
  sinkk: { uri: "http://127.0.0.1:9/" }
  delivery:
    retry: "three"
---
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: second }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:1234:uploads" } }
  sink: { uri: "http://127.0.0.1:9/" }
"#,
    );
    out.assert_config_error(3);
    assert_eq!(
        out.problem(
            "error: config.yaml: document 1 (AWSS3Source \"first\"): spec.delivery.retry: "
        ),
        "error: config.yaml: document 1 (AWSS3Source \"first\"): spec.delivery.retry: \
         expected a whole number from 0 to 100, found a string"
    );
    let unknown =
        out.problem("error: config.yaml: document 1 (AWSS3Source \"first\"): spec.sinkk: ");
    assert!(unknown.contains("unknown field"), "{unknown}");
    assert!(
        unknown.contains("sink"),
        "names the known fields: {unknown}"
    );
    let queue = out.problem(
        "error: config.yaml: document 2 (AWSS3Source \"second\"): spec.destination.sqs.queueARN: ",
    );
    assert!(
        queue.contains("arn:aws:sqs:us-east-1:1234:uploads"),
        "{queue}"
    );
    assert!(queue.contains("12-digit account id"), "{queue}");
}

#[test]
fn validate_accepts_a_sink_ref_and_says_it_is_resolved_at_run_time() {
    let source = |sink: &str| {
        format!(
            r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: {{ name: uploads }}
spec:
  arn: arn:aws:s3:::media-uploads
  destination: {{ sqs: {{ queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" }} }}
  sink:
{sink}
"#
        )
    };
    let out = validate(&source(
        "    ref:\n      apiVersion: eventing.knative.dev/v1\n      kind: Broker\n      name: default",
    ));
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    assert_eq!(
        out.stdout,
        "note: config.yaml: document 1 (AWSS3Source \"uploads\"): spec.sink.ref Broker (the pod's)/default (eventing.knative.dev/v1) is resolved at run time, through the Kubernetes API\nok: 1 component(s)\n"
    );
    // A ref without a name, and a ref beside a uri, are refused.
    let out = validate(&source(
        "    ref: { apiVersion: eventing.knative.dev/v1, kind: Broker }",
    ));
    out.assert_config_error(1);
    out.problem("error: config.yaml: document 1 (AWSS3Source \"uploads\"): spec.sink.ref.name: ");
    let out = validate(&source(
        "    uri: http://x/\n    ref: { apiVersion: v1, kind: Service, name: s }",
    ));
    out.assert_config_error(1);
    assert!(
        out.stderr.contains("set either uri or ref"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_names_the_missing_or_empty_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secrets/aws/AWS_SECRET_ACCESS_KEY", "\n");
    write(
        dir.path(),
        "config.yaml",
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: uploads }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }
      secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }
  sink: { uri: "http://127.0.0.1:9/" }
"#,
    );
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--config",
            "config.yaml",
            "--secrets-dir",
            "secrets",
        ],
    );
    out.assert_config_error(2);
    let doc = "error: config.yaml: document 1 (AWSS3Source \"uploads\"): spec.auth.credentials";
    out.problem(&format!(
        "{doc}.accessKeyID.valueFromSecret: cannot read secret file secrets/aws/AWS_ACCESS_KEY_ID"
    ));
    assert_eq!(
        out.problem(&format!("{doc}.secretAccessKey.valueFromSecret: ")),
        format!(
            "{doc}.secretAccessKey.valueFromSecret: secret file secrets/aws/AWS_SECRET_ACCESS_KEY is empty"
        )
    );
}

#[test]
fn validate_reports_an_unknown_kind_and_a_fifo_target_without_a_group() {
    let out = validate(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSKinesisSource
metadata: { name: stream }
spec: { arn: "arn:aws:kinesis:us-east-1:123456789012:stream/clicks" }
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata: { name: to-queue }
spec:
  arn: arn:aws:sqs:us-east-1:123456789012:orders.fifo
  discardCloudEventContext: false
  auth: { iam: { roleArn: "arn:aws:iam::123456789012:role/adapter" } }
"#,
    );
    out.assert_config_error(2);
    assert_eq!(
        out.problem("error: config.yaml: document 1 (AWSKinesisSource \"stream\"): kind: "),
        "error: config.yaml: document 1 (AWSKinesisSource \"stream\"): kind: \
         unknown kind \"AWSKinesisSource\": expected AWSS3Source, AWSSQSSource, AWSSQSTarget or AWSS3Target"
    );
    let group = out.problem(
        "error: config.yaml: document 2 (AWSSQSTarget \"to-queue\"): spec.messageGroupId: ",
    );
    assert!(
        group.contains("is required") && group.contains("FIFO"),
        "{group}"
    );
}

#[test]
fn the_reference_example_with_all_three_kinds_loads_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "secrets/aws/AWS_ACCESS_KEY_ID", "AKIAEXAMPLE\n");
    write(dir.path(), "secrets/aws/AWS_SECRET_ACCESS_KEY", "secret\n");
    // §1 of the reference, verbatim.
    write(
        dir.path(),
        "config.yaml",
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: uploads }
spec:
  arn: arn:aws:s3:::media-uploads
  eventTypes: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  destination: { sqs: { queueARN: arn:aws:sqs:us-east-1:123456789012:uploads } }  # optional (§5)
  auth:
    credentials:
      accessKeyID: { valueFromSecret: { name: aws, key: AWS_ACCESS_KEY_ID } }
      secretAccessKey: { valueFromSecret: { name: aws, key: AWS_SECRET_ACCESS_KEY } }
  sink: { uri: http://broker.default.svc/ }
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata: { name: to-queue }
spec:
  arn: arn:aws:sqs:us-east-1:123456789012:orders
  discardCloudEventContext: false
  auth: { iam: { roleArn: arn:aws:iam::123456789012:role/adapter } }
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSS3Target
metadata: { name: to-bucket }
spec:
  arn: arn:aws:s3:::archive
  auth: { credentials: { accessKeyID: { value: AKIA... }, secretAccessKey: { value: ... },
                         assumeIamRole: arn:aws:iam::210987654321:role/cross-account } }
"#,
    );
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--config",
            "config.yaml",
            "--secrets-dir",
            "secrets",
        ],
    );
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "ok: 3 component(s)\n");
}

#[test]
fn validate_reports_files_that_are_not_yaml_manifests() {
    // Broken YAML after a valid document: the problem names the broken document.
    let broken = validate(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: uploads }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  sink: { uri: "http://127.0.0.1:9/" }
---
spec: { arn: [ unclosed
"#,
    );
    broken.assert_config_error(1);
    broken.problem("error: config.yaml: document 2: not valid YAML: ");

    // YAML, but not a manifest.
    let prose = validate("This is a note, not a manifest.\n");
    prose.assert_config_error(1);
    assert_eq!(
        prose.problem("error: config.yaml: "),
        "error: config.yaml: document 1: expected a mapping, found a string"
    );

    // Not text at all.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("image.yaml"),
        [0x89, b'P', b'N', b'G', 0xff, 0x00],
    )
    .unwrap();
    let binary = run_in(dir.path(), &["validate", "--config", "image.yaml"]);
    binary.assert_config_error(1);
    binary.problem("error: image.yaml: ");
}

#[test]
fn validate_reports_a_missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["validate", "--config", "missing.yaml"]);
    out.assert_config_error(1);
    out.problem("error: missing.yaml: cannot read the file: ");

    // Without --config at all, the usage error names the option.
    let usage = run_in(dir.path(), &["validate"]);
    assert_eq!(usage.code, 2, "clap's usage error: {}", usage.stderr);
    assert!(usage.stderr.contains("--config"), "{}", usage.stderr);
}

// ---------------------------------------------------------------------------------------------
// display

#[test]
fn display_prints_binary_structured_and_batch_events() {
    let mut sink = DisplaySink::start();

    // (a) Binary mode: the subject is percent-encoded as the HTTP binding requires.
    let binary = sink.post(
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "binary-1"),
            ("ce-source", "arn:aws:s3:::media-uploads"),
            ("ce-type", "com.amazon.s3.objectcreated"),
            ("ce-subject", "dir/a%20b+c%25d%C3%A9.txt"),
            ("ce-time", "2026-11-28T12:34:56.789Z"),
            ("content-type", "application/json"),
        ],
        r#"{"key":"dir/a b+c%dé.txt","size":1024}"#,
    );
    assert_eq!((binary.status, binary.body.as_str()), (200, "{}"));

    // (b) Structured mode: attributes are JSON strings; nothing is percent-decoded.
    let structured = sink.post(
        &[("content-type", "application/cloudevents+json")],
        r#"{"specversion":"1.0","id":"structured-1","source":"arn:aws:s3:::media-uploads",
            "type":"com.amazon.s3.objectremoved","subject":"report%202026.pdf",
            "datacontenttype":"application/json","data":{"deleted":true}}"#,
    );
    assert_eq!((structured.status, structured.body.as_str()), (200, "{}"));

    // (d) Not a CloudEvent: rejected, and nothing printed for it.
    let plain = sink.post(&[("content-type", "text/plain")], "hello");
    assert_eq!(plain.status, 415, "{}", plain.body);
    assert!(plain.error().contains("text/plain"), "{}", plain.body);

    // (c) A batch of two.
    let batch = sink.post(
        &[("content-type", "application/cloudevents-batch+json")],
        r#"[{"specversion":"1.0","id":"batch-1","source":"s","type":"t","data":{"n":1}},
            {"specversion":"1.0","id":"batch-2","source":"s","type":"t","data":{"n":2}}]"#,
    );
    assert_eq!((batch.status, batch.body.as_str()), (200, "{}"));

    let (status, stdout, stderr) = sink.stop();
    assert!(
        status.success(),
        "display exits cleanly on SIGTERM: {status}\n{stderr}"
    );
    assert_eq!(event_blocks(&stdout).len(), 4, "stdout:\n{stdout}");

    let binary = event_block(&stdout, "binary-1");
    assert!(
        binary.contains("\n  subject: dir/a b+c%dé.txt\n"),
        "{binary}"
    );
    assert!(
        binary.contains("\n  type: com.amazon.s3.objectcreated\n"),
        "{binary}"
    );
    assert!(
        binary.ends_with(
            "Data,\n  {\n    \"key\": \"dir/a b+c%dé.txt\",\n    \"size\": 1024\n  }\n\n"
        ),
        "{binary}"
    );

    let structured = event_block(&stdout, "structured-1");
    assert!(
        structured.contains("\n  subject: report%202026.pdf\n"),
        "{structured}"
    );
    assert!(
        structured.ends_with("Data,\n  {\n    \"deleted\": true\n  }\n\n"),
        "{structured}"
    );

    for n in [1, 2] {
        let block = event_block(&stdout, &format!("batch-{n}"));
        let data = format!("Data,\n  {{\n    \"n\": {n}\n  }}\n\n");
        assert!(block.ends_with(&data), "{block}");
    }
}

#[test]
fn display_rejects_what_is_not_a_cloudevent() {
    let mut sink = DisplaySink::start();

    let get = sink.request("GET", &[], "");
    assert_eq!(get.status, 405, "{}", get.body);
    assert!(get.error().contains("POST"), "{}", get.body);

    let no_type = sink.post(&[], "hello");
    assert_eq!(no_type.status, 400, "{}", no_type.body);
    assert!(
        no_type.error().contains("not a CloudEvent"),
        "{}",
        no_type.body
    );

    let truncated = sink.post(&[("content-type", "application/cloudevents+json")], "{");
    assert_eq!(truncated.status, 400, "{}", truncated.body);
    assert!(
        truncated.error().contains("structured"),
        "{}",
        truncated.body
    );

    let no_id = sink.post(
        &[
            ("ce-specversion", "1.0"),
            ("ce-source", "s"),
            ("ce-type", "t"),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(no_id.status, 400, "{}", no_id.body);
    assert!(no_id.error().contains("id"), "{}", no_id.body);

    let (status, stdout, stderr) = sink.stop();
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(stdout, "", "rejected requests print nothing");
}

// ---------------------------------------------------------------------------------------------
// run: failures that end the process, printed once, with the exit code of their kind

const SOURCE_WITH_ROLE: &str = r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata: { name: irsa }
spec:
  arn: arn:aws:s3:::media-uploads
  destination: { sqs: { queueARN: "arn:aws:sqs:us-east-1:123456789012:uploads" } }
  auth: { iam: { roleArn: "arn:aws:iam::123456789012:role/adapter" } }
  sink: { uri: "http://127.0.0.1:9/" }
"#;

/// `run --config config.yaml` on free loopback ports (or the given `--http-addr`), without the
/// web identity variables of an EKS pod.
fn run_until_exit(manifest: &str, http_addr: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.yaml", manifest);
    let output = Command::new(BIN)
        .args(["run", "--config", "config.yaml", "--http-addr", http_addr])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_ROLE_ARN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run aws-event-adapter");
    Outcome::of(output)
}

#[test]
fn a_component_that_cannot_start_here_is_a_configuration_error_printed_once() {
    let out = run_until_exit(SOURCE_WITH_ROLE, "127.0.0.1:0");
    assert_eq!(out.code, EXIT_CONFIG, "stderr:\n{}", out.stderr);
    assert_eq!(
        out.errors(),
        [
            "error: source \"irsa\": credentials: spec.auth.iam needs AWS_WEB_IDENTITY_TOKEN_FILE (set by the EKS pod identity webhook) to name the token file"
        ],
        "stderr:\n{}",
        out.stderr
    );
    // Not repeated as a log line either.
    assert_eq!(
        out.stderr.matches("AWS_WEB_IDENTITY_TOKEN_FILE").count(),
        1,
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn an_address_in_use_exits_with_the_os_error_code() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    let source = SOURCE_WITH_ROLE.replace(
        r#"auth: { iam: { roleArn: "arn:aws:iam::123456789012:role/adapter" } }"#,
        "auth: { credentials: { accessKeyID: { value: AKIA }, secretAccessKey: { value: s } } }",
    );
    let out = run_until_exit(&source, &addr);
    assert_eq!(out.code, 71, "EX_OSERR; stderr:\n{}", out.stderr);
    let errors = out.errors();
    assert_eq!(errors.len(), 1, "stderr:\n{}", out.stderr);
    assert!(
        errors[0].starts_with(&format!("error: cannot listen on {addr}: ")),
        "{}",
        errors[0]
    );
    // display reports the same way.
    let display = run_in(Path::new("."), &["display", "--addr", &addr]);
    assert_eq!(display.code, 71, "stderr:\n{}", display.stderr);
    assert_eq!(display.errors().len(), 1, "stderr:\n{}", display.stderr);
}
