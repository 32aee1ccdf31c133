#!/usr/bin/env bash
# Runs a command with the `openlineage-python` client (the peer of `POST /api/v1/lineage`)
# installed in its own virtual environment, and exports CUSTODY_TEST_OPENLINEAGE_PYTHON (the
# environment's interpreter). The environment is kept between runs.
#
#   scripts/with-openlineage.sh cargo nextest run -p custody-server --test api lineage
set -euo pipefail

VENV="${CUSTODY_OPENLINEAGE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/custody/openlineage-venv}"
if ! "$VENV/bin/python" -c 'import openlineage.client' 2>/dev/null; then
    echo "with-openlineage: installing openlineage-python into $VENV" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >&2; then
        echo "with-openlineage: python3 -m venv failed; installing python3-venv" >&2
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get install -y -qq python3-venv >&2
        python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet "openlineage-python>=1.20,<2" >&2
fi
export CUSTODY_TEST_OPENLINEAGE_PYTHON="$VENV/bin/python"
echo "with-openlineage: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("openlineage-python", m.version("openlineage-python"))')" >&2
"$@"
