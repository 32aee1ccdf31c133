#!/usr/bin/env bash
# The whole test suite, on both backends: starts a throw-away PostgreSQL (installing it with
# apt if needed), runs every test with it, then the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUSTODY_SHARED="${CUSTODY_SHARED:-$(cd .. && pwd)/shared}"
# Peers written in Python: an independent Cobblestone-256 (the `cryptography` package).
if ! python3 -c "import cryptography" 2>/dev/null; then
    echo "test: installing the Python peers' packages" >&2
    python3 -m pip install --quiet "cryptography>=42"
fi
if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run --workspace --no-fail-fast)
else
    runner=(cargo test --workspace --no-fail-fast)
fi
scripts/with-postgres.sh scripts/with-openbao.sh scripts/with-moto.sh scripts/with-model-signing.sh scripts/with-real-models.sh scripts/with-sarif-schema.sh scripts/with-openlineage.sh "${runner[@]}"
cargo test --workspace --doc
