# shellcheck shell=bash
# The suite's second AWS emulator, LocalStack community, without Docker
# (source it after scripts/lib/moto.sh, don't run it).
#
# It lives in a virtualenv of its own, .venv-localstack/: LocalStack pins its
# own fork of moto (moto-ext), which cannot share a venv with the moto the
# rest of the suite runs. Every package is pinned in
# tests/support/localstack-requirements.txt.

LOCALSTACK_VENV_DIR="$REPO_ROOT/.venv-localstack"
LOCALSTACK_PYTHON="$LOCALSTACK_VENV_DIR/bin/python"
LOCALSTACK_REQUIREMENTS="$REPO_ROOT/tests/support/localstack-requirements.txt"
LOCALSTACK_LAUNCHER="$REPO_ROOT/tests/support/localstack_server.py"
# The stamp holds a copy of the requirements the venv was made from, so an
# edited pin reinstalls.
LOCALSTACK_STAMP="$LOCALSTACK_VENV_DIR/installed-requirements.txt"

# Create .venv-localstack unless it already holds exactly the pinned packages.
ensure_localstack_venv() {
    if [[ -x "$LOCALSTACK_PYTHON" ]] && cmp -s "$LOCALSTACK_REQUIREMENTS" "$LOCALSTACK_STAMP"; then
        echo "using $LOCALSTACK_VENV_DIR (localstack-core $(grep '^localstack-core==' "$LOCALSTACK_REQUIREMENTS" | cut -d= -f3))"
        return 0
    fi
    local python="${PYTHON:-python3}"
    # 4.13.1 runs on 3.11 (and needs >= 3.10); 2026.x releases need 3.12.
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "LocalStack 4.13.1 needs Python >= 3.10; $python is $("$python" --version 2>&1)"
    echo "creating $LOCALSTACK_VENV_DIR with $python"
    "$python" -m venv --clear "$LOCALSTACK_VENV_DIR" ||
        die "'$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$LOCALSTACK_PYTHON" -m pip install --quiet --no-deps -r "$LOCALSTACK_REQUIREMENTS" ||
        die "pip install -r $LOCALSTACK_REQUIREMENTS failed"
    cp "$LOCALSTACK_REQUIREMENTS" "$LOCALSTACK_STAMP"
}

# start_localstack PORT DATA_DIR LOGFILE: start LocalStack in the background
# on 127.0.0.1:PORT, its files under DATA_DIR (wiped first), and wait until
# S3, SQS and STS answer. Sets LOCALSTACK_PID.
start_localstack() {
    local port="$1" data="$2" log="$3"
    rm -rf "$data"
    mkdir -p "$data" "$(dirname "$log")"
    "$LOCALSTACK_PYTHON" "$LOCALSTACK_LAUNCHER" "$port" "$data" >"$log" 2>&1 </dev/null &
    LOCALSTACK_PID=$!
    # /_localstack/health answers before the services are loaded; the log's
    # "Ready." line comes after (EAGER_SERVICE_LOADING=1).
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^Ready\.' "$log" 2>/dev/null && break
        kill -0 "$LOCALSTACK_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^Ready\.' "$log" 2>/dev/null ||
        ! wait_for_http "http://127.0.0.1:$port/_localstack/health" 10 "$LOCALSTACK_PID" 200; then
        echo "---- $log (tail) ----" >&2
        tail -n 40 "$log" >&2 || true
        die "LocalStack did not start on 127.0.0.1:$port"
    fi
    echo "LocalStack is up on http://127.0.0.1:$port (pid $LOCALSTACK_PID, log $log)"
}
