#!/usr/bin/env bash
# Creates the project's virtualenv when it is missing or broken.  Usage: scripts/ensure_venv.sh PYTHON VENV_DIR
# Debian's python3 ships without ensurepip unless python3-venv is installed; then the venv is
# made without pip and pip is installed into it by the system's pip, so no root is needed.
set -euo pipefail

python="${1:?usage: ensure_venv.sh PYTHON VENV_DIR}"
venv="${2:?usage: ensure_venv.sh PYTHON VENV_DIR}"

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    exit 0
fi

if ! command -v "$python" >/dev/null; then
    echo "ensure_venv: $python not found; Real Dispatch needs Python 3.11" >&2
    exit 1
fi
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$version" != "3.11" ]]; then
    echo "ensure_venv: $python is Python $version; Real Dispatch needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

rm -rf "$venv"
echo "ensure_venv: creating $venv with $python ($version)" >&2
if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv"
    if ! "$python" -m pip --python "$venv/bin/python" install -q pip; then
        rm -rf "$venv"
        echo "ensure_venv: could not put pip into $venv; install python3-venv (apt-get install python3-venv)" >&2
        exit 1
    fi
fi
"$venv/bin/python" -m pip --version >/dev/null
