#!/usr/bin/env python3
"""Check that the patched moto (tests/support/moto_server.py) behaves like AWS.

By default this starts its own moto through the launcher on a free loopback
port (it switches IAM enforcement on, which is global to a moto server, so it
must not share a server with other tests), runs the checks, and stops it.

    .venv/bin/python tests/support/check_moto_patches.py
    .venv/bin/python tests/support/check_moto_patches.py --endpoint http://127.0.0.1:5000
    .venv/bin/python tests/support/check_moto_patches.py --unpatched   # plain moto: must fail

--endpoint runs against a server that is already up; it WIPES its state.
Exits 0 when every check passes, 1 (after listing the failures) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any, Callable

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "moto_server.py")
REGION = "us-east-1"
ACCOUNT = "123456789012"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

QUEUE = "check-queue"
BUCKET = "check-fresh-bucket"
NOTIFIED_BUCKET = "check-notified-bucket"

# The seed's minimal policy for the S3 source, exactly.
CONSUMER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
            "Resource": "arn:aws:sqs:*:*:*",
        }
    ],
}
PRODUCER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:GetQueueUrl",
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
            ],
            "Resource": "arn:aws:sqs:*:*:*",
        },
        {
            "Effect": "Allow",
            "Action": "sqs:CreateQueue",
            "Resource": "arn:aws:sqs:*:*:check-created-*",
        },
    ],
}
WEB_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ],
}


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def set_auth(endpoint: str, value: str) -> None:
    status, body = http("POST", f"{endpoint}/moto-api/reset-auth", value.encode(), "text/plain")
    if status != 200:
        raise RuntimeError(f"reset-auth {value} answered {status}: {body!r}")


class Moto:
    """A moto server of our own, on a free port."""

    def __init__(self, unpatched: bool) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="check-moto-", suffix=".log", delete=False)
        if unpatched:
            command = [sys.executable, "-m", "moto.server"]
        else:
            command = [sys.executable, LAUNCHER]
        command += ["-H", "127.0.0.1", "-p", str(self.port)]
        env = dict(os.environ)
        env.pop("MOTO_PORT", None)  # the launcher would inherit another server's port
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = http("GET", f"{self.endpoint}/moto-api/data.json")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"moto did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


class Checker:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.results: list[tuple[str, str | None]] = []
        self.keys: dict[str, tuple[str, str]] = {}
        # raw HTTP responses seen by the clients made by client(), newest last
        self.responses: list[dict[str, Any]] = []
        self.requests: list[Any] = []

    # -- helpers ----------------------------------------------------------

    def client(self, service: str, keys: tuple[str, str] | None = None, token: str | None = None) -> Any:
        access_key, secret = keys or ("testing", "testing")
        client = boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )
        client.meta.events.register("before-parse.*.*", self._capture_response)
        client.meta.events.register("before-send.*.*", self._capture_request)
        return client

    def _capture_response(self, response_dict: dict[str, Any], **_: Any) -> None:
        self.responses.append(response_dict)

    def _capture_request(self, request: Any, **_: Any) -> None:
        self.requests.append(request)

    def check(self, name: str, func: Callable[[], None]) -> None:
        try:
            func()
        except CheckFailed as err:
            self.results.append((name, str(err)))
        except Exception as err:  # an unexpected error is a failure too
            self.results.append((name, f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
        else:
            self.results.append((name, None))
        outcome = self.results[-1][1]
        print(f"{'PASS' if outcome is None else 'FAIL'}  {name}", flush=True)
        if outcome is not None:
            print("      " + outcome.replace("\n", "\n      "), flush=True)

    def expect_client_error(self, code: str, call: Callable[[], Any]) -> ClientError:
        try:
            call()
        except ClientError as err:
            got = err.response.get("Error", {}).get("Code")
            expect(got == code, f"expected error code {code}, got {got!r}: {err}")
            return err
        raise CheckFailed(f"expected error {code}, the call succeeded")

    def queue_url(self) -> str:
        return f"{self.endpoint}/{ACCOUNT}/{QUEUE}"

    # -- setup, with enforcement off ---------------------------------------

    def setup(self) -> None:
        status, body = http("POST", f"{self.endpoint}/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"/moto-api/reset answered {status}: {body!r}")
        set_auth(self.endpoint, "inf")

        sqs = self.client("sqs")
        sqs.create_queue(QueueName=QUEUE)

        iam = self.client("iam")
        for user, policy in (("check-consumer", CONSUMER_POLICY), ("check-producer", PRODUCER_POLICY)):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="sqs", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        iam.create_role(
            RoleName="check-web-role", AssumeRolePolicyDocument=json.dumps(WEB_TRUST_POLICY)
        )
        iam.put_role_policy(
            RoleName="check-web-role", PolicyName="sqs", PolicyDocument=json.dumps(CONSUMER_POLICY)
        )

    # -- patch 5 (checked with enforcement off) -----------------------------

    def check_empty_notification(self) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        result = s3.get_bucket_notification_configuration(Bucket=BUCKET)
        raw = self.responses[-1]
        expect(raw["status_code"] == 200, f"status {raw['status_code']}")
        root = ET.fromstring(raw["body"])
        expect(
            root.tag == f"{S3_NS}NotificationConfiguration",
            f"root element is {root.tag}, expected {S3_NS}NotificationConfiguration: {raw['body']!r}",
        )
        expect(len(root) == 0, f"expected an empty configuration: {raw['body']!r}")
        expect(
            not any(k.endswith("Configurations") for k in result),
            f"unexpected configurations {result}",
        )

    def check_notification_roundtrip(self) -> None:
        # the patch must leave a bucket that has notifications alone
        s3 = self.client("s3")
        s3.create_bucket(Bucket=NOTIFIED_BUCKET)
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
        s3.put_bucket_notification_configuration(
            Bucket=NOTIFIED_BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
                ]
            },
        )
        result = s3.get_bucket_notification_configuration(Bucket=NOTIFIED_BUCKET)
        root = ET.fromstring(self.responses[-1]["body"])
        expect(root.tag == f"{S3_NS}NotificationConfiguration", f"root element is {root.tag}")
        configs = result.get("QueueConfigurations", [])
        expect(len(configs) == 1 and configs[0]["QueueArn"] == queue_arn, f"got {result}")
        expect(
            sorted(configs[0]["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            f"events {configs[0]['Events']}",
        )
        # moto sends an s3:TestEvent into the queue: drain it while auth is off
        sqs = self.client("sqs")
        for _ in range(3):
            messages = sqs.receive_message(QueueUrl=self.queue_url(), MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url(), ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                break

    def fill_queue(self) -> None:
        sqs = self.client("sqs")
        for i in range(3):
            sqs.send_message(QueueUrl=self.queue_url(), MessageBody=f"message {i}")

    # -- patches 1, 2, 4 (enforcement on) -----------------------------------

    def check_get_queue_url(self) -> None:
        sqs = self.client("sqs", self.keys["check-consumer"])
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        expect(url.endswith(f"/{ACCOUNT}/{QUEUE}"), f"unexpected queue URL {url}")

    def check_get_queue_url_missing(self) -> None:
        sqs = self.client("sqs", self.keys["check-consumer"])
        self.expect_client_error(
            "AWS.SimpleQueueService.NonExistentQueue",
            lambda: sqs.get_queue_url(QueueName="check-no-such-queue"),
        )

    def check_call_on_missing_queue(self) -> None:
        sqs = self.client("sqs", self.keys["check-consumer"])
        self.expect_client_error(
            "AWS.SimpleQueueService.NonExistentQueue",
            lambda: sqs.delete_message(
                QueueUrl=f"{self.endpoint}/{ACCOUNT}/check-no-such-queue", ReceiptHandle="x"
            ),
        )

    def check_create_queue_resource(self) -> None:
        sqs = self.client("sqs", self.keys["check-producer"])
        url = sqs.create_queue(QueueName="check-created-1")["QueueUrl"]
        expect(url.endswith("/check-created-1"), f"unexpected queue URL {url}")
        self.expect_client_error("AccessDenied", lambda: sqs.create_queue(QueueName="check-other"))

    def check_receive_and_delete_batch(self) -> None:
        sqs = self.client("sqs", self.keys["check-consumer"])
        url = self.queue_url()
        messages: list[dict[str, Any]] = []
        for _ in range(5):
            messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if len(messages) >= 3:
                break
        expect(len(messages) == 3, f"received {len(messages)} messages, expected 3")
        result = sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        expect(len(result.get("Successful", [])) == 3, f"DeleteMessageBatch: {result}")
        expect(not result.get("Failed"), f"DeleteMessageBatch failed entries: {result.get('Failed')}")

    def check_send_and_visibility_batch(self) -> None:
        sqs = self.client("sqs", self.keys["check-producer"])
        url = self.queue_url()
        result = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}]
        )
        expect(len(result.get("Successful", [])) == 2, f"SendMessageBatch: {result}")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        expect(messages, "no message received")
        result = sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )
        expect(len(result.get("Successful", [])) == len(messages), f"ChangeMessageVisibilityBatch: {result}")

    def check_batch_needs_single_permission(self) -> None:
        # the consumer may not SendMessage, so it may not SendMessageBatch either
        sqs = self.client("sqs", self.keys["check-consumer"])
        self.expect_client_error(
            "AccessDenied",
            lambda: sqs.send_message_batch(QueueUrl=self.queue_url(), Entries=[{"Id": "a", "MessageBody": "a"}]),
        )

    def _expect_json_auth_error(self, code: str, call: Callable[[], Any]) -> None:
        self.expect_client_error(code, call)
        raw = self.responses[-1]
        headers = {k.lower(): v for k, v in raw["headers"].items()}
        expect(raw["status_code"] in (400, 403), f"status {raw['status_code']}")
        expect(
            headers.get("content-type", "").startswith("application/x-amz-json-1.0"),
            f"content-type {headers.get('content-type')!r}, body {raw['body']!r}",
        )
        expect(
            headers.get("x-amzn-query-error") == f"{code};Sender",
            f"x-amzn-query-error {headers.get('x-amzn-query-error')!r}",
        )
        try:
            body = json.loads(raw["body"])
        except ValueError:
            raise CheckFailed(f"body is not JSON: {raw['body']!r}") from None
        expect(
            isinstance(body, dict) and str(body.get("__type", "")).split("#")[-1] == code,
            f"__type in {body}",
        )
        expect(bool(body.get("message")), f"no message in {body}")

    def check_json_access_denied(self) -> None:
        sqs = self.client("sqs", self.keys["check-consumer"])
        self._expect_json_auth_error(
            "AccessDenied", lambda: sqs.send_message(QueueUrl=self.queue_url(), MessageBody="x")
        )

    def check_json_signature_error(self) -> None:
        access_key, _ = self.keys["check-consumer"]
        sqs = self.client("sqs", (access_key, "wrong-secret"))
        self._expect_json_auth_error(
            "SignatureDoesNotMatch", lambda: sqs.get_queue_url(QueueName=QUEUE)
        )

    def check_json_unknown_key(self) -> None:
        sqs = self.client("sqs", ("AKIAUNKNOWNUNKNOWN00", "whatever"))
        self._expect_json_auth_error("InvalidClientTokenId", lambda: sqs.get_queue_url(QueueName=QUEUE))

    def check_query_protocol_still_xml(self) -> None:
        # a query-protocol (form-encoded) client keeps getting XML errors
        access_key, secret = self.keys["check-consumer"]
        url = self.queue_url()
        body = urllib.parse.urlencode(
            {"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": url, "MessageBody": "x"}
        )
        request = AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(Credentials(access_key, secret), "sqs", REGION).add_auth(request)
        prepared = request.prepare()
        http_request = urllib.request.Request(
            prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
            method="POST", headers=dict(prepared.headers),
        )
        try:
            with urllib.request.urlopen(http_request, timeout=10) as response:
                raise CheckFailed(f"expected AccessDenied, got {response.status}")
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        expect(status == 403, f"status {status}: {payload!r}")
        root = ET.fromstring(payload)
        codes = [e.text for e in root.iter() if e.tag.split("}")[-1] == "Code"]
        expect(codes == ["AccessDenied"], f"XML error codes {codes}: {payload!r}")

    # -- patch 3 (enforcement on) -------------------------------------------

    def check_web_identity(self) -> None:
        sts = self.client("sts", ("unused", "unused"))
        result = sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/check-web-role",
            RoleSessionName="check-session",
            WebIdentityToken="a-web-identity-token",
            DurationSeconds=900,
        )
        sent = self.requests[-1]
        expect("Authorization" not in sent.headers, "boto3 signed AssumeRoleWithWebIdentity (test is void)")
        credentials = result["Credentials"]
        expect(bool(credentials.get("SessionToken")), f"no session token: {credentials}")
        # the temporary credentials carry the role's policy
        sqs = self.client(
            "sqs",
            (credentials["AccessKeyId"], credentials["SecretAccessKey"]),
            credentials["SessionToken"],
        )
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        expect(url.endswith(f"/{QUEUE}"), f"unexpected queue URL {url}")
        self.expect_client_error(
            "AccessDenied", lambda: sqs.send_message(QueueUrl=url, MessageBody="x")
        )

    def check_enforcement_is_on(self) -> None:
        sqs = self.client("sqs")  # "testing" is no IAM user
        try:
            sqs.list_queues()
        except ClientError:
            pass
        status = self.responses[-1]["status_code"]
        expect(status == 403, f"ListQueues with unknown keys answered {status}, expected 403")

    # -- patch 6 (checked with enforcement off) -----------------------------

    def check_batch_system_attributes(self) -> None:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName="check-trace")["QueueUrl"]
        header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        system = {"AWSTraceHeader": {"DataType": "String", "StringValue": header}}
        result = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "traced", "MessageBody": "traced", "MessageSystemAttributes": system},
                {"Id": "plain", "MessageBody": "plain"},
            ],
        )
        expect(len(result.get("Successful", [])) == 2, f"SendMessageBatch: {result}")
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        by_body = {m["Body"]: m.get("Attributes", {}) for m in messages}
        expect(
            by_body.get("traced", {}).get("AWSTraceHeader") == header,
            f"the traced entry's AWSTraceHeader: {by_body}",
        )
        expect("AWSTraceHeader" not in by_body.get("plain", {}), f"the plain entry: {by_body}")

    # -- patch 7 (checked with enforcement off) -----------------------------

    def check_fifo_visible_again(self) -> None:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName="check-order.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="g", MessageDeduplicationId=f"m{n}")
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)["Messages"]
        expect([m["Body"] for m in first] == ["m0", "m1"], f"first receive: {[m['Body'] for m in first]}")
        # Both go back, visible again after 3 s: the group comes back in order.
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 3} for n, m in enumerate(first)],
        )
        hidden = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        expect(hidden == [], f"while m0 and m1 are hidden, the group is locked: {[m['Body'] for m in hidden]}")
        time.sleep(3.3)
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        expect([m["Body"] for m in again] == ["m0", "m1", "m2"], f"visible again: {[m['Body'] for m in again]}")

    # -- all ------------------------------------------------------------------

    def run(self) -> bool:
        self.setup()
        self.check("patch 5: fresh bucket's notification configuration is <NotificationConfiguration/>", self.check_empty_notification)
        self.check("patch 5: a bucket's notification configuration round-trips", self.check_notification_roundtrip)
        self.check("patch 6: SendMessageBatch keeps each entry's AWSTraceHeader", self.check_batch_system_attributes)
        self.check("patch 7: a FIFO group visible again comes back in order", self.check_fifo_visible_again)
        self.fill_queue()
        set_auth(self.endpoint, "0")
        try:
            self.check("IAM enforcement is on", self.check_enforcement_is_on)
            self.check("patch 2: GetQueueUrl allowed by a policy on arn:aws:sqs:*:*:*", self.check_get_queue_url)
            self.check("patch 2: GetQueueUrl of a missing queue is NonExistentQueue, not AccessDenied", self.check_get_queue_url_missing)
            self.check("patch 2: a call on a missing queue is NonExistentQueue, not AccessDenied", self.check_call_on_missing_queue)
            self.check("patch 2: CreateQueue is authorised against the new queue's ARN", self.check_create_queue_resource)
            self.check("patch 1: ReceiveMessage + DeleteMessageBatch with sqs:DeleteMessage", self.check_receive_and_delete_batch)
            self.check("patch 1: SendMessageBatch / ChangeMessageVisibilityBatch with the single actions", self.check_send_and_visibility_batch)
            self.check("patch 1: SendMessageBatch still needs sqs:SendMessage", self.check_batch_needs_single_permission)
            self.check("patch 4: AccessDenied answered in JSON to a JSON client", self.check_json_access_denied)
            self.check("patch 4: SignatureDoesNotMatch answered in JSON", self.check_json_signature_error)
            self.check("patch 4: InvalidClientTokenId answered in JSON", self.check_json_unknown_key)
            self.check("patch 4: a query-protocol client still gets XML", self.check_query_protocol_still_xml)
            self.check("patch 3: unsigned AssumeRoleWithWebIdentity under enforcement", self.check_web_identity)
        finally:
            set_auth(self.endpoint, "inf")
        failed = [(name, why) for name, why in self.results if why is not None]
        print(f"moto patch checks: {len(self.results) - len(failed)} passed, {len(failed)} failed")
        for name, _ in failed:
            print(f"  failed: {name}")
        return not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="use this running moto (its state is wiped) instead of starting one")
    parser.add_argument("--unpatched", action="store_true", help="start plain moto (the checks must fail)")
    args = parser.parse_args()

    # never let the ambient AWS configuration leak into the checks
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    botocore.session.Session()  # fail early if botocore is unusable

    server = None
    try:
        if args.endpoint:
            endpoint = args.endpoint.rstrip("/")
        else:
            server = Moto(unpatched=args.unpatched)
            server.wait_ready()
            endpoint = server.endpoint
        ok = Checker(endpoint).run()
        if not ok and server is not None:
            print("---- moto log (tail) ----")
            print(server.log_tail())
        return 0 if ok else 1
    except Exception as err:
        print(f"moto patch checks could not run: {err}", file=sys.stderr)
        traceback.print_exc()
        if server is not None:
            print("---- moto log (tail) ----", file=sys.stderr)
            print(server.log_tail(), file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
