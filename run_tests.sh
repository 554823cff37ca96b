#!/usr/bin/env bash
# Runs the whole test suite (slow end-to-end tests included) in the project's venv.
# Extra arguments go to pytest, e.g. ./run_tests.sh -m "not slow" or tests/test_modeling.py
set -euo pipefail
cd "$(dirname "$0")"
source tools/ensure_venv.sh
python -m pytest -q "$@"
