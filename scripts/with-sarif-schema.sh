#!/usr/bin/env bash
# Runs a command with the SARIF 2.1.0 JSON Schema (the final rtm.5 schema, as Microsoft's
# @microsoft/jest-sarif package ships it, fetched from the npm registry and kept between runs)
# exported as CUSTODY_TEST_SARIF_SCHEMA, and Python's jsonschema installed to validate against it.
#
#   scripts/with-sarif-schema.sh cargo nextest run -p custody-cli --test cli scan
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/custody/sarif"
SCHEMA="$CACHE/sarif-2.1.0-rtm.5.json"
if [ ! -s "$SCHEMA" ]; then
    echo "with-sarif-schema: fetching @microsoft/jest-sarif from the npm registry" >&2
    mkdir -p "$CACHE"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null && tar xzf ./*.tgz)
    cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$SCHEMA"
    rm -rf "$tmp"
fi
if ! python3 -c "import jsonschema" 2>/dev/null; then
    echo "with-sarif-schema: installing jsonschema from PyPI" >&2
    python3 -m pip install --quiet "jsonschema>=4" >&2
fi
export CUSTODY_TEST_SARIF_SCHEMA="$SCHEMA"
"$@"
