#!/usr/bin/env bash
# One command: set up (Python env and the Debian tools the tests run), lint, run all tests.
#   ./scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-deps.sh
./scripts/setup.sh
export BENTOML_DO_NOT_TRACK=True
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
