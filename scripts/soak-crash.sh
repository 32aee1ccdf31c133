#!/usr/bin/env bash
# Soak version of the crash test: kill `custody serve` with SIGKILL under sustained writes
# ROUNDS times (default 500), checking after every restart that no acknowledged write is
# missing, and at the end that the log verifies offline against every published checkpoint.
#
#     scripts/soak-crash.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CUSTODY_CRASH_ROUNDS="${1:-500}"
exec cargo nextest run --release -p custody-cli --test crash --no-capture
