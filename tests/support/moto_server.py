#!/usr/bin/env python3
"""Launch moto server 5.2.5 with seven fixes that make it behave like AWS.

Usage (same arguments as ``moto_server``)::

    .venv/bin/python tests/support/moto_server.py -H 127.0.0.1 -p 5000

moto is the AWS emulator the tests run against. In seven places moto 5.2.5
differs from AWS in ways the AWS SDK for Rust notices (see the reference
README, section 9, "Where moto 5.2.5 differs from AWS"). These are defects of
the emulator, not behaviour the product may special-case, so they are fixed
here, in the test support, before the server starts:

1. SQS batch calls are authorised with the single call's IAM action.
2. GetQueueUrl / CreateQueue are authorised against the queue's ARN.
3. STS AssumeRoleWithWebIdentity (an unsigned call) works under enforcement.
4. SQS auth errors are answered in the JSON protocol to JSON clients.
5. GetBucketNotificationConfiguration of a bucket without notifications
   answers an empty <NotificationConfiguration/>.
6. SendMessageBatch keeps each entry's MessageSystemAttributes
   (AWSTraceHeader), as SendMessage does.
7. ReceiveMessage on a FIFO queue returns a group's messages in order when
   several of them have become visible again.

Every patch checks that moto's code still looks the way the patch expects
and the launcher refuses to start otherwise: a patch that silently stopped
applying would turn into confusing test failures far away from here.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from typing import Any, Callable

EXPECTED_MOTO_VERSION = "5.2.5"


class PatchError(RuntimeError):
    """moto's internals are not what a patch was written against."""


def _fail(patch: str, why: str) -> None:
    raise PatchError(
        f"moto launcher: cannot apply patch '{patch}': {why}. "
        f"The patches in {__file__} were written against moto "
        f"{EXPECTED_MOTO_VERSION}; re-read moto's source and adapt them."
    )


def _attr(patch: str, owner: Any, name: str) -> Any:
    value = getattr(owner, name, None)
    if value is None:
        _fail(patch, f"{getattr(owner, '__name__', owner)!r} has no attribute {name!r}")
    return value


def _require_source(patch: str, func: Callable[..., Any], *snippets: str) -> None:
    """Fail unless the source of ``func`` still contains every snippet."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError) as err:
        _fail(patch, f"cannot read the source of {func!r}: {err}")
    for snippet in snippets:
        if snippet not in source:
            _fail(
                patch,
                f"{func.__qualname__} no longer contains {snippet!r}",
            )


def _check_version() -> None:
    import moto

    version = getattr(moto, "__version__", "unknown")
    if version != EXPECTED_MOTO_VERSION:
        raise PatchError(
            f"moto launcher: moto {version} is installed, but the patches in "
            f"{__file__} were written against moto {EXPECTED_MOTO_VERSION} "
            f"(install moto=={EXPECTED_MOTO_VERSION}, or re-check every patch)."
        )


# --------------------------------------------------------------------------
# Shared machinery: moto's call path for authorisation is
#   BaseResponse.call_action
#     -> self._authenticate_and_authorize_normal_action(resource)
#        (resource = self._determine_resource())
#     -> ActionAuthenticatorMixin._authenticate_and_authorize_action(
#            IAMRequest, resource)
#     -> IAMRequest(..., action=self._get_action()).check_signature()
#        and .check_action_permitted(resource)
# and call_action turns an HTTPException raised there into the response
# body + {"status": code}, merged into self.response_headers.
# --------------------------------------------------------------------------


def _check_auth_call_path() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.iam.access_control import IAMRequestBase

    patch = "auth call path"
    _require_source(
        patch,
        BaseResponse.call_action,
        "headers = self.response_headers",
        "resource = self._determine_resource()",
        "self._authenticate_and_authorize_normal_action(resource)",
        "except HTTPException as http_error:",
        'response = http_error.description, {"status": http_error.code}',
        "self._transform_response(headers, response)",
    )
    _require_source(
        patch,
        ActionAuthenticatorMixin._authenticate_and_authorize_action,
        "iam_request = iam_request_cls(",
        "action=self._get_action()",
        "iam_request.check_signature()",
        "iam_request.check_action_permitted(resource)",
    )
    params = list(inspect.signature(IAMRequestBase.__init__).parameters)
    expected = ["self", "account_id", "method", "path", "data", "body", "headers", "action"]
    if params != expected:
        _fail(patch, f"IAMRequestBase.__init__ takes {params}, expected {expected}")
    _require_source(
        patch,
        IAMRequestBase.__init__,
        'self._action = (\n            f"{self._service}:',
    )


# --------------------------------------------------------------------------
# Patch 1 (SQS batch actions) and patch 4 (SQS auth errors in JSON).
# --------------------------------------------------------------------------

# AWS authorises each batch call with the permission of the single call it
# batches (there is no sqs:DeleteMessageBatch permission in IAM). moto builds
# the IAM action from the API operation name, so it asks for
# sqs:DeleteMessageBatch etc. and denies the seed's minimal policy
# (sqs:ReceiveMessage + sqs:DeleteMessage).
SQS_BATCH_ACTIONS = {
    "DeleteMessageBatch": "DeleteMessage",
    "SendMessageBatch": "SendMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}

SQS_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
SQS_JSON_ERROR_NAMESPACE = "com.amazonaws.sqs"


def _sqs_uses_json_protocol(response: Any) -> bool:
    headers = response.headers
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target") or ""
    content_type = headers.get("Content-Type") or headers.get("content-type") or ""
    return target.startswith("AmazonSQS.") or content_type.startswith(
        "application/x-amz-json"
    )


def _patch_sqs_auth() -> None:
    from werkzeug.exceptions import HTTPException

    from moto.iam.access_control import IAMRequest
    from moto.sqs.responses import SQSResponse

    patch = "SQS auth (1: batch actions, 4: JSON errors)"
    _attr(patch, SQSResponse, "_authenticate_and_authorize_action")
    if "_authenticate_and_authorize_normal_action" in SQSResponse.__dict__:
        _fail(patch, "SQSResponse already overrides _authenticate_and_authorize_normal_action")
    for action in list(SQS_BATCH_ACTIONS) + list(SQS_BATCH_ACTIONS.values()):
        method = "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")
        _attr(patch, SQSResponse, method)

    class SqsIAMRequest(IAMRequest):
        """IAMRequest that maps a batch call to the single call's IAM action (patch 1)."""

        def __init__(self, *, action: Any, **kwargs: Any) -> None:
            name = action[0] if isinstance(action, list) else action
            super().__init__(action=SQS_BATCH_ACTIONS.get(name, name), **kwargs)

    class SqsJsonAuthError(HTTPException):
        """An auth error whose body is the JSON protocol's error document."""

        def __init__(self, code: int, body: str) -> None:
            super().__init__(description=body)
            self.code = code

    def _authenticate_and_authorize_normal_action(self: Any, resource: str = "*") -> None:
        try:
            # Patch 1: authorise batch calls with the single call's action.
            self._authenticate_and_authorize_action(SqsIAMRequest, resource)
        except HTTPException as err:
            # Patch 4: moto answers auth failures (AccessDenied,
            # SignatureDoesNotMatch, InvalidClientTokenId) with the generic
            # XML <ErrorResponse> of the query protocol, whatever protocol the
            # client spoke. AWS answers a JSON-protocol SQS client in JSON,
            # with the query-compatible code in `x-amzn-query-error`; the
            # Rust SDK speaks JSON and can't read a code out of the XML.
            # Answer the way moto's own SQS JSON errors look.
            error_type = getattr(err, "error_type", None)
            message = getattr(err, "message", None)
            if not error_type or not _sqs_uses_json_protocol(self):
                raise
            qualified = f"{SQS_JSON_ERROR_NAMESPACE}#{error_type}"
            # call_action merges these into the error response (see
            # _check_auth_call_path): it answers with self.response_headers.
            self.response_headers.update(
                {
                    "Content-Type": SQS_JSON_CONTENT_TYPE,
                    "X-Amzn-Errortype": qualified,
                    "x-amzn-query-error": f"{error_type};Sender",
                }
            )
            body = json.dumps({"__type": qualified, "message": message, "Message": message})
            raise SqsJsonAuthError(err.code or 403, body) from err

    _authenticate_and_authorize_normal_action.__qualname__ = (
        "SQSResponse._authenticate_and_authorize_normal_action"
    )
    SQSResponse._authenticate_and_authorize_normal_action = (  # type: ignore[method-assign]
        _authenticate_and_authorize_normal_action
    )


# --------------------------------------------------------------------------
# Patch 2: IAM resource of GetQueueUrl / CreateQueue.
# --------------------------------------------------------------------------


def _patch_sqs_resource() -> None:
    from moto.sqs.exceptions import QueueDoesNotExist  # noqa: F401  (existence check)
    from moto.sqs.responses import SQSResponse

    patch = "2: SQS resource ARN"
    original = _attr(patch, SQSResponse, "_determine_resource")
    _require_source(
        patch,
        original,
        "queue_name = self._get_queue_name()",
        ".queue_arn",
        "except QueueDoesNotExist:",
        'return "*"',
    )
    _attr(patch, SQSResponse, "_get_param")

    def _queue_arn(self: Any, account: str, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{account}:{name}"

    @functools.wraps(original)
    def _determine_resource(self: Any) -> str:
        # AWS evaluates GetQueueUrl and CreateQueue against the ARN of the
        # queue named in the request (arn:aws:sqs:<region>:<account>:<name>).
        # moto finds no QueueUrl in these requests and falls back to "*",
        # which a policy on "arn:aws:sqs:*:*:*" (the seed's) never matches.
        action = self._get_action()
        if action in ("GetQueueUrl", "CreateQueue"):
            name = self._get_param("QueueName")
            if name:
                account = self.current_account
                if action == "GetQueueUrl":
                    account = self._get_param("QueueOwnerAWSAccountId") or account
                return _queue_arn(self, account, name)
        resource = original(self)
        if resource == "*":
            # Same defect for a call on a queue that does not exist (any
            # more): AWS still evaluates the ARN named by the queue URL (and
            # then answers QueueDoesNotExist), moto evaluates "*" and answers
            # AccessDenied.
            # The queue URL is a parameter (JSON protocol) or the request
            # path (query protocol): .../<account>/<name>, or just the name.
            queue_url = self._get_param("QueueUrl")
            if not isinstance(queue_url, str) or not queue_url:
                queue_url = self.path or ""
            parts = [p for p in queue_url.split("/") if p]
            if parts and not (len(parts) == 1 and ":" in parts[0]):
                account = self.current_account
                if len(parts) >= 2 and parts[-2].isdigit() and len(parts[-2]) == 12:
                    account = parts[-2]
                return _queue_arn(self, account, parts[-1])
        return resource

    SQSResponse._determine_resource = _determine_resource  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# Patch 3: unsigned STS calls under enforcement.
# --------------------------------------------------------------------------

# AssumeRoleWithWebIdentity (and AssumeRoleWithSAML) carry no SigV4
# signature: the token is the credential. moto authenticates every call;
# under enforcement IAMRequest reads headers["Authorization"] and the call
# dies with HTTP 500 (KeyError). Let them through the way moto already lets
# through its PUBLIC_OPERATIONS (which only knows X-Amz-Target operations).
STS_UNSIGNED_ACTIONS = ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")


def _patch_sts_unsigned() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.sts.responses import TokenResponse

    patch = "3: unsigned STS calls"
    original = _attr(patch, TokenResponse, "_authenticate_and_authorize_normal_action")
    for name in ("assume_role_with_web_identity", "assume_role_with_saml"):
        _attr(patch, TokenResponse, name)
    if not hasattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT"):
        _fail(patch, "moto.settings has no INITIAL_NO_AUTH_ACTION_COUNT")
    if not hasattr(ActionAuthenticatorMixin, "request_count"):
        _fail(patch, "ActionAuthenticatorMixin has no request_count")
    _require_source(
        patch,
        ActionAuthenticatorMixin._authenticate_and_authorize_action,
        "ActionAuthenticatorMixin.request_count\n            >= settings.INITIAL_NO_AUTH_ACTION_COUNT",
        "in ActionAuthenticatorMixin.PUBLIC_OPERATIONS",
    )

    @functools.wraps(original)
    def _authenticate_and_authorize_normal_action(self: Any, resource: str = "*") -> None:
        enforcing = (
            ActionAuthenticatorMixin.request_count
            >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        )
        if enforcing and self._get_action() in STS_UNSIGNED_ACTIONS:
            return
        original(self, resource)

    TokenResponse._authenticate_and_authorize_normal_action = (  # type: ignore[method-assign]
        _authenticate_and_authorize_normal_action
    )


# --------------------------------------------------------------------------
# Patch 5: GetBucketNotificationConfiguration of a bucket without any.
# --------------------------------------------------------------------------


def _patch_s3_notification() -> None:
    from moto.s3.responses import S3Response

    patch = "5: empty bucket notification"
    original = _attr(patch, S3Response, "get_bucket_notification")
    # moto serialises the empty case before it sets the operation name, so the
    # serializer uses the (deprecated) GetBucketNotification operation and
    # writes <GetBucketNotificationResponse/>. S3 answers an empty
    # <NotificationConfiguration/>; the Rust SDK rejects any other root
    # ("invalid XML root"), so provisioning a fresh bucket would fail.
    # Naming the operation first makes both branches serialise the same way.
    _require_source(
        patch,
        original,
        "if not notification_configuration:\n            return self.serialized(EmptyResult())",
        'self.data["Action"] = "GetBucketNotificationConfiguration"',
    )

    @functools.wraps(original)
    def get_bucket_notification(self: Any) -> Any:
        self.data["Action"] = "GetBucketNotificationConfiguration"
        return original(self)

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# Patch 6: SendMessageBatch drops the entries' MessageSystemAttributes.
# --------------------------------------------------------------------------


def _patch_sqs_batch_system_attributes() -> None:
    from moto.sqs.models import SQSBackend

    patch = "6: SendMessageBatch system attributes"
    original = _attr(patch, SQSBackend, "send_message_batch")
    # AWS stores an entry's MessageSystemAttributes (only AWSTraceHeader
    # exists) like SendMessage does; moto's batch passes the body, message
    # attributes, delay, group and deduplication id on, and drops them.
    # The successful entries come back in the order of the request, so each
    # stored message gets its entry's attributes afterwards.
    _require_source(
        patch,
        original,
        "message = self.send_message(",
        'group_id=entry.get("MessageGroupId")',
        "messages.append(message)",
    )
    _require_source(patch, SQSBackend.send_message, "system_attributes")

    @functools.wraps(original)
    def send_message_batch(self: Any, queue_name: str, entries: Any) -> Any:
        messages, failed = original(self, queue_name, entries)
        failed_ids = {f.get("Id") for f in failed}
        sent = [e for e in entries.values() if e.get("Id") not in failed_ids]
        for entry, message in zip(sent, messages):
            if entry.get("MessageSystemAttributes"):
                message.system_attributes = entry["MessageSystemAttributes"]
        return messages, failed

    SQSBackend.send_message_batch = send_message_batch  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# Patch 7: FIFO order of a group's messages that are visible again.
# --------------------------------------------------------------------------


def _patch_sqs_fifo_visible_again() -> None:
    from moto.sqs.models import Queue, SQSBackend

    patch = "7: FIFO order of messages visible again"
    # AWS hands out a FIFO group's messages in order once they are visible
    # again (their visibility timeout ran out, or was changed). moto forgets a
    # message that became visible again ("pending" no more) only when its
    # receive loop reaches it, and skips a group's messages while any of them
    # is still remembered: of m0 and m1, both hidden for 2 s by
    # ChangeMessageVisibility, it then skips m0 (m1 is still pending), forgets
    # m1 and returns it first. Here a queue forgets every message visible
    # again whenever its pending messages or groups are read, so the loop
    # never meets a stale one and the group comes back in order. What is left
    # of moto's laziness is harmless: a group still locked when a long poll
    # starts stays skipped until that poll ends, a delay, never a reordering.
    receive = _attr(patch, SQSBackend, "receive_message")
    _require_source(
        patch,
        receive,
        "currently_pending_groups = deepcopy(queue.pending_message_groups)",
        "if message in queue.pending_messages:",
        "queue.pending_messages.add(message)",
    )
    for name in ("pending_messages", "pending_message_groups"):
        if not isinstance(inspect.getattr_static(Queue, name, None), property):
            _fail(patch, f"Queue.{name} is not a property")
    _require_source(patch, Queue.pending_messages.fget, "return self._pending_messages")
    _require_source(patch, Queue.pending_message_groups.fget, "for message in self._pending_messages")

    def forget_visible(queue: Any) -> None:
        # moto's server is threaded: walk a copy (list() of a set is atomic
        # under the GIL), never the set another request may be changing.
        for message in [m for m in list(queue._pending_messages) if m.visible]:
            queue._pending_messages.discard(message)

    def pending_messages(self: Any) -> Any:
        forget_visible(self)
        return self._pending_messages

    def pending_message_groups(self: Any) -> set[str]:
        forget_visible(self)
        return {m.group_id for m in list(self._pending_messages) if m.group_id is not None}

    Queue.pending_messages = property(pending_messages)  # type: ignore[method-assign,assignment]
    Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[method-assign,assignment]


def apply_patches() -> None:
    _check_version()
    _check_auth_call_path()
    _patch_sqs_auth()
    _patch_sqs_resource()
    _patch_sts_unsigned()
    _patch_s3_notification()
    _patch_sqs_batch_system_attributes()
    _patch_sqs_fifo_visible_again()


def main(argv: list[str]) -> None:
    try:
        apply_patches()
    except PatchError as err:
        print(err, file=sys.stderr)
        sys.exit(3)

    import moto.server

    moto.server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
