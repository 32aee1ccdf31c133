#!/usr/bin/env bash
# scan_path (positional reads) beside picklescan on the tensor-heavy benchmark inputs, in one
# run: one process per measurement, best of 3 after a warm-up read; wall time from bash `time`,
# peak RSS from GNU time. The inputs are those of `cargo bench -p custody-cli --bench scan`
# (scripts/bench-scan-inputs.py).
#
#   CUSTODY_BENCH_PICKLESCAN=/path/to/bin/picklescan scripts/bench-scan-path.sh [INPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
D="${1:-${CUSTODY_BENCH_SCAN_DIR:-/tmp/custody-bench-scan}}"
PS="${CUSTODY_BENCH_PICKLESCAN:-picklescan}"
B="${CUSTODY_SCAN_FILE:-}"
if [ -z "$B" ]; then
    cargo build --release -q -p custody-scan --example scan_file
    B="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/scan_file"
fi
TIMEFORMAT=%3R
measure() { # "seconds peak_kb" of the best of 3
    local best= rss=0 t kb
    for _ in 1 2 3; do
        t=$( { time /usr/bin/time -f '%M' -o /tmp/bench-scan-rss "$@" > /dev/null 2>&1; } 2>&1 )
        kb=$(tail -1 /tmp/bench-scan-rss)
        if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $t < $best else 1)"; then best=$t; fi
        (( kb > rss )) && rss=$kb
    done
    echo "$best $rss"
}
printf '| input | scan_path best | GB/s | peak RSS | picklescan best | peak RSS | picklescan ÷ custody |\n|---|---|---|---|---|---|---|\n'
for f in bytes.pkl float32.pkl torch.pt; do
    cat "$D/$f" > /dev/null
    size=$(stat -c %s "$D/$f")
    read -r cs ckb <<< "$(measure "$B" "$D/$f")"
    read -r ps pkb <<< "$(measure "$PS" --path "$D/$f")"
    python3 - "$f" "$size" "$cs" "$ckb" "$ps" "$pkb" <<'PY'
import sys
f, size, cs, ckb, ps, pkb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
cs_ = max(cs, 0.0005)
print(f"| {f} ({size/1e6:.0f} MB) | {cs:.3f} s | {size/cs_/1e9:.1f} | {ckb/1024:.1f} MB | {ps:.3f} s | {pkb/1024:.0f} MB | {ps/cs_:.0f}× |")
PY
done
