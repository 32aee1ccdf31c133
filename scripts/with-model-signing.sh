#!/usr/bin/env bash
# Runs a command with the OpenSSF `model-signing` package (1.1.x, the peer of `custody sign`
# and `custody verify`) installed in its own virtual environment, and exports
# CUSTODY_TEST_MODEL_SIGNING (its CLI) and CUSTODY_TEST_MODEL_SIGNING_PYTHON (the
# environment's interpreter, for the Python API). The 1.1.x wheel misses its `pyopenssl`
# dependency, so it is installed beside it. The environment is kept between runs.
#
#   scripts/with-model-signing.sh cargo nextest run -p custody-cli --test signing
set -euo pipefail

VENV="${CUSTODY_PEERS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/custody/model-signing-venv}"
if ! "$VENV/bin/python" -c 'import model_signing, OpenSSL' 2>/dev/null; then
    echo "with-model-signing: installing model-signing 1.1.x into $VENV" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >&2; then
        echo "with-model-signing: python3 -m venv failed; installing python3-venv" >&2
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get install -y -qq python3-venv >&2
        python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet "model-signing>=1.1,<1.2" pyopenssl >&2
fi
export CUSTODY_TEST_MODEL_SIGNING="$VENV/bin/model_signing"
export CUSTODY_TEST_MODEL_SIGNING_PYTHON="$VENV/bin/python"
echo "with-model-signing: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("model-signing", m.version("model-signing"))')" >&2
"$@"
