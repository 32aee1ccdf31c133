#!/usr/bin/env bash
# Runs a command with benign model files written by real scikit-learn, NumPy and joblib (from
# PyPI, installed in their own virtual environment, kept between runs) in a temporary directory
# exported as CUSTODY_TEST_REAL_MODELS, and safetensors, GGUF and ONNX files written by their
# reference Python packages in CUSTODY_TEST_REAL_FORMATS: the scanner must judge each as its
# name says (clean unless named *.malicious.* or *.low.*).
#
#   scripts/with-real-models.sh cargo nextest run -p custody-scan
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

VENV="${CUSTODY_REAL_MODELS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/custody/real-models-venv}"
if ! "$VENV/bin/python" -c 'import numpy, sklearn, joblib, lz4, safetensors, gguf, onnx' 2>/dev/null; then
    echo "with-real-models: installing numpy, scikit-learn, joblib, lz4, safetensors, gguf and onnx into $VENV" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >&2; then
        echo "with-real-models: python3 -m venv failed; installing python3-venv" >&2
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get install -y -qq python3-venv >&2
        python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet numpy scikit-learn joblib lz4 safetensors gguf onnx >&2
fi
OUT=$(mktemp -d /tmp/custody-real-models.XXXXXX)
FORMATS=$(mktemp -d /tmp/custody-real-formats.XXXXXX)
trap 'rm -rf "$OUT" "$FORMATS"' EXIT INT TERM
"$VENV/bin/python" "$here/gen-real-models.py" "$OUT"
"$VENV/bin/python" "$here/gen-real-formats.py" "$FORMATS"
export CUSTODY_TEST_REAL_MODELS="$OUT" CUSTODY_TEST_REAL_FORMATS="$FORMATS"
echo "with-real-models: $("$VENV/bin/python" -c 'import numpy, sklearn, joblib; print("numpy", numpy.__version__, "scikit-learn", sklearn.__version__, "joblib", joblib.__version__)')" >&2
"$@"
