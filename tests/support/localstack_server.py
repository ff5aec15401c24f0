#!/usr/bin/env python3
"""Launch LocalStack community 4.13.1 (``localstack-core``) on loopback, without Docker.

Usage::

    .venv-localstack/bin/python tests/support/localstack_server.py PORT DATA_DIR

LocalStack is the suite's second AWS emulator (moto is the first): the same
end-to-end tests run against both, because two implementations catch what one
hides (reference README, section 9). Its ``localstack`` CLI needs Docker and an
account, so this starts the runtime in-process, the way the CLI's container
entrypoint does (``localstack.runtime.main``), with the settings below.

One fix is made before it starts: LocalStack 4.13.1's twisted gateway listens
on 0.0.0.0 whatever host GATEWAY_LISTEN names (``TCP4ServerEndpoint`` is built
without ``interface=``, see localstack/runtime/server/twisted.py). A test
emulator without authentication must not be reachable from the network, so the
launcher passes the host through. The fix checks that LocalStack's code still
looks the way it expects and refuses to start otherwise.
"""

from __future__ import annotations

import inspect
import os
import sys

EXPECTED_VERSION = "4.13.1"
HOST = "127.0.0.1"


def fail(why: str) -> None:
    print(f"localstack launcher: {why}", file=sys.stderr)
    sys.exit(3)


def configure(port: int, data_dir: str) -> None:
    """LocalStack reads its configuration from the environment at import time."""
    os.makedirs(os.path.join(data_dir, "tmp"), exist_ok=True)
    settings = {
        "GATEWAY_LISTEN": f"{HOST}:{port}",
        "LOCALSTACK_HOST": f"{HOST}:{port}",
        "SERVICES": "s3,sqs,sts,iam",
        "EAGER_SERVICE_LOADING": "1",
        # Queue URLs http://127.0.0.1:PORT/000000000000/NAME; the default
        # strategy names hosts that need LocalStack's DNS.
        "SQS_ENDPOINT_STRATEGY": "off",
        "DNS_ADDRESS": "0",
        "PERSISTENCE": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "OVERRIDE_IN_DOCKER": "0",
        # Everything it writes (S3 objects spill to disk) stays in DATA_DIR.
        "FILESYSTEM_ROOT": data_dir,
        "TMPDIR": os.path.join(data_dir, "tmp"),
    }
    os.environ.update(settings)


def check_version() -> None:
    from importlib.metadata import version

    found = version("localstack-core")
    if found != EXPECTED_VERSION:
        fail(
            f"localstack-core {found} is installed, the launcher was written for "
            f"{EXPECTED_VERSION} (scripts/lib/localstack.sh pins it)"
        )


def bind_loopback_only() -> None:
    import localstack.runtime.server.twisted as gateway

    source = inspect.getsource(gateway)
    if "endpoints.TCP4ServerEndpoint(reactor, host_and_port.port)" not in source:
        fail(
            "localstack/runtime/server/twisted.py no longer builds its TCP4ServerEndpoint "
            "the way this launcher expects; re-read it and adapt bind_loopback_only()"
        )
    real = gateway.endpoints

    class LoopbackEndpoints:
        """`twisted.internet.endpoints` as the gateway module sees it, IPv4 bound to HOST."""

        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def TCP4ServerEndpoint(reactor, port, backlog=50, interface=HOST):  # noqa: N802
            return real.TCP4ServerEndpoint(reactor, port, backlog, interface)

    gateway.endpoints = LoopbackEndpoints()


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not argv[0].isdigit():
        fail("usage: localstack_server.py PORT DATA_DIR")
    configure(int(argv[0]), os.path.abspath(argv[1]))
    check_version()
    bind_loopback_only()

    from localstack.runtime import main as runtime

    runtime.main()


if __name__ == "__main__":
    main(sys.argv[1:])
