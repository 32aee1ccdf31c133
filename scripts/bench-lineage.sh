#!/usr/bin/env bash
# The lineage bench (crates/custody-server/benches/lineage.rs) in release mode, under a
# throw-away PostgreSQL (scripts/with-postgres.sh) for the recursive-CTE peer of the impact
# part. Arguments go to the bench:
#
#   scripts/bench-lineage.sh                      # all parts: impact, ingest and parse
#   scripts/bench-lineage.sh impact               # impact on the 1M-node graph vs PostgreSQL
#   scripts/bench-lineage.sh ingest --events 20000 --concurrency 64
#   scripts/bench-lineage.sh --small              # a quick run on small inputs
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-postgres.sh cargo bench -p custody-server --bench lineage -- "$@"
