#!/usr/bin/env bash
# Runs a command with a throw-away local AWS KMS endpoint (moto's server, from PyPI) on
# loopback and exports CUSTODY_TEST_KMS_ENDPOINT (also an S3 endpoint, with the bucket
# CUSTODY_TEST_S3_BUCKET). Moto implements the KMS API's shape
# (GenerateDataKey, Encrypt, Decrypt, ReEncrypt with encryption context, rotation, scheduled
# deletion) but does not enforce a key's deletion.
#
#   scripts/with-moto.sh cargo nextest run -p custody-aws-kms
set -euo pipefail

if ! python3 -c "import moto.server, flask_cors" 2>/dev/null; then
    echo "with-moto: installing moto[server] from PyPI" >&2
    python3 -m pip install --quiet "moto[server]>=5" >&2
fi

# A bodiless HTTP request with python3 (always here), not curl (not always).
http() {
    python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[2], method=sys.argv[1]), timeout=15)' "$1" "$2" >/dev/null 2>&1
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp /tmp/custody-moto.XXXXXX.log)
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!
cleanup() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT INT TERM

export CUSTODY_TEST_KMS_ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do
    if http GET "$CUSTODY_TEST_KMS_ENDPOINT/moto-api/"; then break; fi
    kill -0 "$MOTO_PID" 2>/dev/null || { echo "with-moto: moto exited:" >&2; cat "$LOG" >&2; exit 1; }
    sleep 0.1
done
http GET "$CUSTODY_TEST_KMS_ENDPOINT/moto-api/" || { echo "with-moto: moto did not start" >&2; cat "$LOG" >&2; exit 1; }
# A bucket for the S3-compatible blob store tests (moto does not check signatures).
export CUSTODY_TEST_S3_BUCKET=custody-test-blobs
# moto loads its S3 backend on first use, which can take seconds on a busy machine: retry.
for attempt in $(seq 1 10); do
    if http PUT "$CUSTODY_TEST_KMS_ENDPOINT/$CUSTODY_TEST_S3_BUCKET"; then break; fi
    if [ "$attempt" = 10 ]; then echo "with-moto: cannot create the test bucket" >&2; cat "$LOG" >&2; exit 1; fi
    sleep 1
done
echo "with-moto: moto $(python3 -c 'import moto; print(moto.__version__)') (KMS, S3) on 127.0.0.1:$PORT" >&2
"$@"
