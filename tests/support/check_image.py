#!/usr/bin/env python3
"""Proves what the Dockerfile's runtime stage assumes, without a container engine.

    .venv/bin/python tests/support/check_image.py --binary target/release/aws-event-adapter

No Docker engine runs where this project is tested and the base images cannot
be pulled, so the image is never built here. Instead this check (run by
scripts/test, as root, with the suite's moto at AWS_ENDPOINT_URL):

1. reads the Dockerfile: the Debian release of both stages, the runtime
   stage's ENV, USER, ENTRYPOINT and where it copies the binary;
2. builds a root filesystem that holds only what the runtime image
   (gcr.io/distroless/cc-debian12) holds that the binary could use: glibc
   (libc6), libgcc_s (libgcc-s1) and the CA bundle of ca-certificates at
   /etc/ssl/certs/ca-certificates.crt, all from Debian's packages of that
   release (`apt-get download` + `dpkg-deb -x`), /etc/passwd and /etc/group
   with `nonroot` (65532), /tmp and /home/nonroot, and no shell or other
   program; the release binary goes in at the Dockerfile's path;
3. checks the binary's ELF interpreter and NEEDED libraries are in that tree
   and the glibc symbol versions it needs are not newer than the tree's glibc;
4. runs the binary there as 65532:65532 with a read-only root (a private
   mount namespace, read-only bind mounts, chroot), with the Dockerfile's ENV
   and nothing else of the caller's environment, as Kubernetes would with
   readOnlyRootFilesystem and runAsNonRoot: `validate` on every manifest of
   config/examples/, then `run` of an S3 source against moto that becomes
   ready (/readyz 200) and delivers a real bucket notification to an HTTPS
   sink whose certificate is verified through the tree's CA bundle (the test
   CA appended to Debian's bundle, as a derived image would add a private CA);
   run again with the test CA taken out, the sink must be refused.

What it does not prove: that the distroless image holds these same files
(it is assembled by Google from the same Debian packages, but not here), the
image's layers and metadata, or anything of the build stage beyond its
Debian release.

Prints PASS/FAIL per check, then `N passed, N failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_manifests import (  # noqa: E402
    EXAMPLES,
    REPO,
    Adapter,
    Checks,
    free_port,
    http_status,
    load_docs,
    quiet_env,
    rel,
)

DOCKERFILE = REPO / "Dockerfile"
WORK = REPO / "target" / "image-check"
# The runtime image's packages that hold files the binary may use.
PACKAGES = ["libc6", "libgcc-s1", "ca-certificates"]
UID = GID = 65532
# Where the sandbox mounts what Kubernetes would mount (the config volume).
CONFIG_MOUNT = "/etc/aws-event-adapter"
LONG = 60.0
# The host's tools the sandbox is made with, by full path (the sandbox's PATH is the image's).
HOST_TOOLS = {tool: shutil.which(tool) or f"/nonexistent/{tool}" for tool in ["unshare", "bash", "mount", "chroot"]}


# ---------------------------------------------------------------------------
# 1. the Dockerfile


class Dockerfile:
    """The facts of the Dockerfile this check depends on."""

    def __init__(self, text: str) -> None:
        lines = _logical_lines(text)
        stages: list[list[str]] = []
        for line in lines:
            if re.match(r"FROM\s", line, re.I):
                stages.append([])
            if stages:
                stages[-1].append(line)
        assert len(stages) == 2, f"expected a build and a runtime stage, found {len(stages)}"
        self.build_from = stages[0][0].split()[1]
        self.runtime_from = stages[1][0].split()[1]
        runtime = stages[1]
        self.env: dict[str, str] = {}
        for line in runtime:
            if line.upper().startswith("ENV "):
                for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', line[4:]):
                    self.env[key] = value.strip('"')
        copies = [l for l in runtime if l.upper().startswith("COPY --FROM=BUILD")]
        assert len(copies) == 1, f"expected one COPY --from=build in the runtime stage: {copies}"
        self.binary_path = copies[0].split()[-1]
        users = [l.split()[1] for l in runtime if l.upper().startswith("USER ")]
        assert users, "the runtime stage sets no USER"
        self.user = users[-1]
        entry = [l for l in runtime if l.upper().startswith("ENTRYPOINT ")]
        assert entry, "the runtime stage has no ENTRYPOINT"
        self.entrypoint = json.loads(entry[-1].split(None, 1)[1])

    def debian_codenames(self) -> tuple[str, str]:
        """(build stage's, runtime stage's) Debian release codename."""
        versions = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
        build = re.search(r"(bullseye|bookworm|trixie)", self.build_from)
        runtime = re.search(r"debian(\d+)", self.runtime_from)
        assert build, f"the build image {self.build_from} names no Debian release"
        assert runtime, f"the runtime image {self.runtime_from} names no Debian release"
        return build.group(1), versions.get(runtime.group(1), f"debian{runtime.group(1)}")


def _logical_lines(text: str) -> list[str]:
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    return out


def host_codename() -> str:
    text = Path("/etc/os-release").read_text(encoding="utf-8")
    match = re.search(r"^VERSION_CODENAME=(\S+)", text, re.M)
    assert match, "/etc/os-release has no VERSION_CODENAME"
    return match.group(1)


# ---------------------------------------------------------------------------
# 2. the root filesystem


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.strip()}"
    return out


def download_packages(debs: Path) -> dict[str, Path]:
    """The .deb of each package, downloaded into `debs` once (kept between runs in target/)."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not sorted(debs.glob(f"{p}_*.deb"))]
    if missing:
        # apt's sandbox user cannot write into root's folders; these are public packages.
        download = ["apt-get", "download", "-o", "APT::Sandbox::User=root", *missing]
        try:
            run(download, cwd=debs, timeout=300)
        except AssertionError:
            # The package lists are missing (a fresh image) or older than the mirror, which
            # keeps only the newest version of each package.
            run(["apt-get", "update", "-qq"], timeout=600)
            run(download, cwd=debs, timeout=300)
    found = {}
    for package in PACKAGES:
        candidates = sorted(debs.glob(f"{package}_*.deb"))
        assert candidates, f"apt-get download {package} left no .deb in {rel(debs)}"
        found[package] = candidates[-1]
    return found


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()


def build_rootfs(root: Path, debs: dict[str, Path], binary: Path, binary_path: str, extra_ca: str) -> str:
    """Builds the tree; returns its CA bundle as Debian's packages make it (without `extra_ca`)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for deb in debs.values():
        run(["dpkg-deb", "-x", str(deb), str(root)])
    # What the image has no use for and does not ship: ca-certificates' update
    # script (a shell script; there is no shell) and its examples, and the CA
    # sources once the bundle is made from them.
    (root / "usr/sbin/update-ca-certificates").unlink(missing_ok=True)
    shutil.rmtree(root / "usr/share/doc/ca-certificates/examples", ignore_errors=True)
    mozilla = sorted((root / "usr/share/ca-certificates/mozilla").glob("*.crt"))
    assert len(mozilla) > 100, f"only {len(mozilla)} CA certificates in the ca-certificates package"
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    # What update-ca-certificates writes: every certificate, concatenated.
    debian_bundle = "".join(c.read_text(encoding="utf-8").rstrip("\n") + "\n" for c in mozilla)
    bundle.write_text(debian_bundle + extra_ca, encoding="utf-8")
    shutil.rmtree(root / "usr/share/ca-certificates")
    etc = root / "etc"
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"nonroot:x:{UID}:{GID}:nonroot:/home/nonroot:/sbin/nologin\n",
        encoding="utf-8",
    )
    (etc / "group").write_text(f"root:x:0:\nnonroot:x:{GID}:\n", encoding="utf-8")
    home = root / "home/nonroot"
    home.mkdir(parents=True)
    os.chown(home, UID, GID)
    home.chmod(0o700)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    # Mount points the container runtime and Kubernetes fill in.
    for d in ["proc", "dev", CONFIG_MOUNT.lstrip("/")]:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in ["etc/hosts", "etc/resolv.conf"]:
        (root / f).touch()
    target = root / binary_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target)
    target.chmod(0o755)
    return debian_bundle


def programs_in(root: Path) -> list[str]:
    """Files that could be run: shells and other executables (shared objects excluded)."""
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_mode & 0o111 and ".so" not in path.name:
            found.append("/" + str(path.relative_to(root)))
    return sorted(found)


# ---------------------------------------------------------------------------
# 3. the binary's dynamic dependencies


def elf_needs(binary: Path) -> tuple[str, list[str], list[str]]:
    """(interpreter, NEEDED libraries, GLIBC_x.y versions it requires)."""
    headers = run(["readelf", "-lW", str(binary)]).stdout
    interp = re.search(r"Requesting program interpreter: (\S+?)\]", headers)
    assert interp, "the binary has no ELF interpreter: is it static?"
    dynamic = run(["readelf", "-dW", str(binary)]).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    versions = run(["readelf", "-VW", str(binary)]).stdout
    glibc = sorted(set(re.findall(r"Name: GLIBC_([0-9.]+)", versions)), key=_version_key)
    return interp.group(1), needed, glibc


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def resolve_in(root: Path, path: str) -> Path | None:
    """`path` inside `root`, following absolute symlinks inside the tree."""
    current = root / path.lstrip("/")
    for _ in range(10):
        if current.is_symlink():
            link = os.readlink(current)
            current = (root / link.lstrip("/")) if link.startswith("/") else current.parent / link
            continue
        return current if current.is_file() else None
    return None


def library_in(root: Path, name: str) -> Path | None:
    for d in ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"]:
        found = resolve_in(root, f"{d}/{name}")
        if found:
            return found
    return None


# ---------------------------------------------------------------------------
# 4. running in the tree


class Sandbox:
    """The tree as a container's root: read-only, as 65532:65532, with the image's ENV only."""

    def __init__(self, root: Path, image: Dockerfile, hosts: Path) -> None:
        self.root = root
        self.image = image
        self.hosts = hosts

    def command(self, args: list[str], config_dir: Path) -> list[str]:
        root = str(self.root)
        q = shlex.quote
        mount = q(HOST_TOOLS["mount"])
        config, hosts = q(str(config_dir)), q(str(self.hosts))
        at = lambda path: q(root + path)  # noqa: E731
        mounts = [
            # The tree becomes a mount of its own, so that it can be made read-only.
            f"{mount} --bind {q(root)} {q(root)}",
            f"{mount} --bind {config} {at(CONFIG_MOUNT)}",
            f"{mount} -o remount,bind,ro {at(CONFIG_MOUNT)}",
            f"{mount} --bind {hosts} {at('/etc/hosts')}",
            f"{mount} -o remount,bind,ro {at('/etc/hosts')}",
            f"{mount} -t proc proc {at('/proc')}",
            f"{mount} --rbind /dev {at('/dev')}",
            f"{mount} -o remount,bind,ro {q(root)}",
        ]
        # The ENTRYPOINT is the bare name: the image's PATH (in the environment) must find it
        # inside the tree. The host's tools are named by their full paths, since that PATH is
        # not the host's.
        script = " && ".join(mounts) + f' && exec {q(HOST_TOOLS["chroot"])} --userspec="$1" "$2" "${{@:3}}"'
        return [
            HOST_TOOLS["unshare"], "--mount", "--propagation", "private", "--",
            HOST_TOOLS["bash"], "-c", script, "sandbox", self.image.user, root, *self.image.entrypoint, *args,
        ]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(self.image.env)
        env.update(extra)
        return env

    def run(self, args: list[str], config_dir: Path, extra_env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(args, config_dir), capture_output=True, text=True,
            env=self.env(extra_env), timeout=timeout,
        )

    def spawn(self, args: list[str], config_dir: Path, extra_env: dict[str, str], log: Path) -> subprocess.Popen:
        handle = open(log, "w", encoding="utf-8")
        return subprocess.Popen(
            self.command(args, config_dir), stdout=handle, stderr=subprocess.STDOUT,
            env=self.env(extra_env), start_new_session=True,
        )


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def root_mount_options(pid: int) -> str:
    """The mount options of the process's own "/" (from its mountinfo)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts[4] == "/":
            return parts[5]
    raise AssertionError(f"no / in /proc/{pid}/mountinfo")


# ---------------------------------------------------------------------------
# the HTTPS sink and the test certificates


def make_certificates(d: Path) -> None:
    """A test CA and a certificate for localhost signed by it."""
    openssl = ["openssl"]
    run(openssl + ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=aws-event-adapter image check CA",
                   "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem")])
    run(openssl + ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                   "-keyout", str(d / "sink.key"), "-out", str(d / "sink.csr")])
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        encoding="utf-8",
    )
    run(openssl + ["x509", "-req", "-in", str(d / "sink.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                   "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext.cnf"), "-out", str(d / "sink.pem")])


class HttpsSink:
    """A CloudEvents sink over HTTPS that records each request's headers and body."""

    def __init__(self, certs: Path) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs / "sink.pem", certs / "sink.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------------------


def wait(what: str, timeout: float, condition, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = ""
            if log and log.exists():
                tail = "; log:\n" + "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "aws-event-adapter")
    args = parser.parse_args()
    binary = args.binary.resolve()
    checks = Checks()
    state: dict = {}

    def dockerfile() -> str:
        image = Dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
        state["image"] = image
        return f"runtime {image.runtime_from}, binary at {image.binary_path}, USER {image.user}"

    def same_release() -> str:
        build, runtime = state["image"].debian_codenames()
        host = host_codename()
        assert build == runtime, f"the build stage is Debian {build}, the runtime stage Debian {runtime}: the binary needs the glibc it was built with, or newer"
        assert host == runtime, f"this machine's packages are Debian {host}, the runtime image's are {runtime}: the tree would not be the image's"
        return f"Debian {runtime}, as this machine's packages"

    def user_is_numeric_nonroot() -> str:
        user = state["image"].user
        assert user == f"{UID}:{GID}", f"USER is {user!r}, expected {UID}:{GID} (numeric, for runAsNonRoot)"
        return user

    def rootfs() -> str:
        assert binary.is_file(), f"{rel(binary)} not found: `cargo build --release` first"
        assert os.geteuid() == 0, "needs root, for mount namespaces and chroot (CI runs as root); set AWS_EVENT_ADAPTER_TEST_IMAGE=0 to skip this check"
        WORK.mkdir(parents=True, exist_ok=True)
        certs = WORK / "certs"
        if certs.exists():
            shutil.rmtree(certs)
        certs.mkdir()
        make_certificates(certs)
        debs = download_packages(WORK / "debs")
        state["debs"] = debs
        state["certs"] = certs
        root = WORK / "rootfs"
        state["debian_bundle"] = build_rootfs(
            root, debs, binary, state["image"].binary_path, (certs / "ca.pem").read_text(encoding="utf-8")
        )
        state["root"] = root
        return ", ".join(f"{p} {deb_version(d)}" for p, d in debs.items())

    def no_shell() -> str:
        programs = programs_in(state["root"])
        expected = [state["image"].binary_path]
        # glibc's loader is run by the kernel, not a program of the image's.
        programs = [p for p in programs if not re.search(r"/ld-linux[^/]*\.so", p)]
        assert programs == expected, f"programs in the tree other than the binary: {sorted(set(programs) - set(expected))}"
        for shell in ["/bin/sh", "/bin/bash", "/usr/bin/sh", "/bin/dash"]:
            assert not (state["root"] / shell.lstrip("/")).exists(), f"{shell} exists"
        return "the binary is the only program"

    def needed_libraries() -> str:
        root = state["root"]
        interp, needed, glibc = elf_needs(binary)
        assert resolve_in(root, interp), f"the ELF interpreter {interp} is not in the tree"
        missing = [lib for lib in needed if not library_in(root, lib)]
        assert not missing, f"NEEDED libraries not in the runtime image: {missing} (of {needed})"
        have = deb_version(state["debs"]["libc6"]).split("-")[0]
        newest = glibc[-1] if glibc else "none"
        assert not glibc or _version_key(newest) <= _version_key(have), f"the binary needs GLIBC_{newest}, the image has glibc {have}"
        return f"{', '.join(needed)}; GLIBC_{newest} <= glibc {have}"

    checks.check("Dockerfile is readable", dockerfile)
    if "image" not in state:
        return summary(checks)
    checks.check("build and runtime stages share the Debian release of the tree", same_release)
    checks.check("USER is numeric 65532:65532", user_is_numeric_nonroot)
    checks.check("root filesystem from Debian's packages", rootfs)
    if "root" not in state:
        return summary(checks)
    checks.check("no shell or other program in the tree", no_shell)
    checks.check("the binary's NEEDED libraries are in the tree", needed_libraries)

    scratch = WORK / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    hosts = scratch / "hosts"
    # What the kubelet writes into every pod's /etc/hosts.
    hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", encoding="utf-8")
    sandbox = Sandbox(state["root"], state["image"], hosts)
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")

    def validate_examples() -> str:
        files = sorted(EXAMPLES.glob("*.yaml"))
        assert files, "no config/examples/*.yaml"
        config = scratch / "validate"
        shutil.copytree(EXAMPLES, config)
        # The secrets go under the config mount, where the sandbox can read them.
        secrets = Adapter(binary, config).secrets_dir_for([doc for path in files for doc in load_docs(path)])
        for d in [config, *config.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
        # The checks' closed-off AWS settings, without the rest of the caller's environment.
        env = {k: v for k, v in quiet_env().items() if k.startswith("AWS_") or k == "RUST_LOG"}
        for path in files:
            out = sandbox.run(
                ["--log-format", "text", "validate", "--config", f"{CONFIG_MOUNT}/{path.name}",
                 "--secrets-dir", f"{CONFIG_MOUNT}/{secrets.name}"],
                config,
                env,
            )
            want = f"ok: {len(load_docs(path))} component(s)"
            assert out.returncode == 0 and out.stdout.strip() == want, (
                f"{path.name}: exit {out.returncode}, stdout {out.stdout.strip()!r}, stderr {out.stderr.strip()[-800:]!r}"
            )
        return f"{len(files)} manifests, each `ok`"

    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=endpoint or None)
    sqs = session.client("sqs", endpoint_url=endpoint or None)

    def start_source(label: str) -> tuple[str, str, HttpsSink, subprocess.Popen, Path, int]:
        """A bucket notifying a fresh queue, an HTTPS sink, and the adapter running in the
        tree: (bucket, queue url, sink, process, log, http port)."""
        assert endpoint.startswith("http://127.0.0.1:"), "AWS_ENDPOINT_URL must name the suite's moto (run through ./scripts/test)"
        name = f"image-check-{label}-{os.getpid()}-{int(time.time())}"
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket=name)
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
        sink = HttpsSink(state["certs"])
        config = scratch / label
        config.mkdir()
        (config / "source.yaml").write_text(
            "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\n"
            "metadata: { name: image-check }\n"
            f"spec:\n  arn: arn:aws:s3:::{name}\n  eventTypes: [\"s3:ObjectCreated:*\"]\n"
            f"  destination: {{ sqs: {{ queueARN: {queue_arn} }} }}\n"
            "  receive: { waitTimeSeconds: 1 }\n"
            f"  sink: {{ uri: \"https://localhost:{sink.port}/\" }}\n",
            encoding="utf-8",
        )
        for p in [config, config / "source.yaml"]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        http_port, metrics_port = free_port(), free_port()
        log = scratch / f"adapter-{label}.log"
        process = sandbox.spawn(
            ["--log-format", "json", "run", "--config", f"{CONFIG_MOUNT}/source.yaml",
             "--http-addr", f"127.0.0.1:{http_port}", "--metrics-addr", f"127.0.0.1:{metrics_port}",
             "--shutdown-grace", "5s"],
            config,
            {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
             "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true", "RUST_LOG": "info"},
            log,
        )
        return name, queue_url, sink, process, log, http_port

    def stop(process: subprocess.Popen, sink: HttpsSink) -> None:
        if process.poll() is None:
            process.kill()
            process.wait()
        sink.stop()

    def s3_source_runs() -> str:
        name, queue_url, sink, process, log, http_port = start_source("run")
        try:
            wait("/readyz 200", LONG, lambda: process.poll() is None and http_status(f"http://127.0.0.1:{http_port}/readyz") == 200
                 or _exited(process, log), log)
            status = proc_status(process.pid)
            assert status.get("Name") == "aws-event-adapt", f"pid {process.pid} is {status.get('Name')!r}, not the adapter"
            uids, gids = status["Uid"].split(), status["Gid"].split()
            assert set(uids) == {str(UID)} and set(gids) == {str(GID)}, f"runs as uid {uids}, gid {gids}"
            assert status.get("Groups", "") in ("", str(GID)), f"supplementary groups {status.get('Groups')!r}"
            # unshare, then bash, then chroot exec into the adapter: one pid throughout.
            options = root_mount_options(process.pid).split(",")
            assert "ro" in options, f"its / is mounted {options}, not read-only"
            s3.put_object(Bucket=name, Key="photos/red flower.jpg", Body=b"hello")
            wait("the event at the HTTPS sink", LONG, lambda: bool(sink.received) or _exited(process, log), log)
            headers, body = sink.received[0]
            assert headers.get("ce-type") == "com.amazon.s3.objectcreated", f"headers {headers}"
            assert urllib.parse.unquote(headers.get("ce-subject", "")) == "photos/red flower.jpg", f"headers {headers}"
            record = json.loads(body)
            assert record["s3"]["bucket"]["name"] == name and record["s3"]["object"]["size"] == 5, record

            def queue_empty() -> bool:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=queue_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

            wait("the message to be deleted", LONG, queue_empty, log)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=40)
            assert code == 0, f"exit {code} after SIGTERM; log:\n{log.read_text(encoding='utf-8')[-2000:]}"
        finally:
            stop(process, sink)
        return f"ready, event over HTTPS verified by the tree's CA bundle, as uid {UID}, / read-only, exit 0"

    def bundle_is_what_verifies() -> str:
        # The same run with the test CA taken out of the tree's bundle: the sink's certificate
        # must now be refused, so the first run's success came from the bundle.
        bundle = state["root"] / "etc/ssl/certs/ca-certificates.crt"
        bundle.write_text(state["debian_bundle"], encoding="utf-8")
        name, _, sink, process, log, http_port = start_source("untrusted")
        try:
            wait("/readyz 200", LONG, lambda: process.poll() is None and http_status(f"http://127.0.0.1:{http_port}/readyz") == 200
                 or _exited(process, log), log)
            s3.put_object(Bucket=name, Key="untrusted.txt", Body=b"hello")
            refused = re.compile(r"certificate|UnknownIssuer", re.I)
            wait("a delivery refused for the sink's certificate", LONG,
                 lambda: bool(refused.search(log.read_text(encoding="utf-8", errors="replace"))) or _exited(process, log), log)
            assert not sink.received, f"the sink received {len(sink.received)} request(s) over TLS it should not trust"
            line = next(l for l in log.read_text(encoding="utf-8", errors="replace").splitlines() if refused.search(l))
        finally:
            stop(process, sink)
        return f"refused: {json.loads(line).get('error', line)[:120] if line.startswith('{') else line[:120]}"

    checks.check("`validate` of config/examples/ in the tree", validate_examples)
    checks.check("`run` of an S3 source in the tree, to an HTTPS sink", s3_source_runs)
    checks.check("without the test CA in the tree's bundle, the sink is refused", bundle_is_what_verifies)
    shutil.rmtree(scratch, ignore_errors=True)
    return summary(checks)


def _exited(process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the adapter exited with {process.returncode}; log:\n{log.read_text(encoding='utf-8', errors='replace')[-3000:]}")
    return False


def summary(checks: Checks) -> int:
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
