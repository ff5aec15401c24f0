#!/usr/bin/env python3
"""POST one CloudEvent with the official CloudEvents Python SDK and print what came back.

Usage::

    .venv/bin/python tests/support/send_cloudevent.py --url http://127.0.0.1:8080/orders \\
        --mode binary --type com.example.order --source /shop --id 42 \\
        [--subject 'orders/a b.json'] [--data '{"n": 1}'] [--datacontenttype application/json] \\
        [--extension name=value ...]

The tests of the targets use it as a real, independent CloudEvents client: the event is built
and encoded (binary or structured content mode) by the SDK (``cloudevents`` 2.x on PyPI, the
``cloudevents.core`` API), and a 200 reply is decoded by the SDK's ``from_http`` as well.

Prints exactly one JSON line on stdout::

    {"status": 200, "headers": {...}, "body": "...", "reply": {"id": ..., "data": ...} | null}

``reply`` holds the reply's attributes (``time`` as an ISO 8601 string) and its ``data`` when
the status is 200 and the reply is a CloudEvent. The exit code is 0 whatever the HTTP status:
the calling test makes the assertions. It is non-zero only when the request could not be made.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.parse
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import (
    HTTPMessage,
    from_http,
    to_binary,
    to_structured,
)
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["binary", "structured"], required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--subject")
    parser.add_argument("--data", help="the event data, as a JSON document")
    parser.add_argument(
        "--datacontenttype",
        default="application/json",
        help="default application/json; an empty string leaves the attribute out",
    )
    parser.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extension attribute (string); may be repeated",
    )
    parser.add_argument("--timeout", type=float, default=30.0)
    return parser.parse_args(argv)


def build_event(args: argparse.Namespace) -> CloudEvent:
    attributes: dict[str, Any] = {
        "type": args.type,
        "source": args.source,
        "id": args.id,
    }
    if args.subject is not None:
        attributes["subject"] = args.subject
    if args.datacontenttype:
        attributes["datacontenttype"] = args.datacontenttype
    for extension in args.extension:
        name, _, value = extension.partition("=")
        attributes[name] = value
    data = json.loads(args.data) if args.data is not None else None
    return CloudEvent(attributes, data)


def post(url: str, headers: dict[str, str], body: bytes, timeout: float):
    """POST with http.client: unlike urllib.request, it adds no Content-Type of its own
    (urllib would send application/x-www-form-urlencoded when the SDK set none)."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parsed.hostname, parsed.port or 80, timeout=timeout
    )
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    event = build_event(args)
    encode = to_binary if args.mode == "binary" else to_structured
    message = encode(event, JSONFormat())
    status, headers, body = post(args.url, message.headers, message.body, args.timeout)

    reply = None
    if status == 200:
        parsed = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
        reply = {
            name: jsonable(value) for name, value in parsed.get_attributes().items()
        }
        reply["data"] = jsonable(parsed.get_data())

    print(
        json.dumps(
            {
                "status": status,
                "headers": {name.lower(): value for name, value in headers.items()},
                "body": body.decode("utf-8", errors="replace"),
                "reply": reply,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
