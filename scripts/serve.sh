#!/usr/bin/env bash
# One command: set up, train a model if the BentoML store has none, then serve.
#   ./scripts/serve.sh            -> http://127.0.0.1:3000
# HOST and PORT override where it listens; extra arguments go to `bentoml serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export BENTOML_DO_NOT_TRACK=True
.venv/bin/python train.py --if-missing
exec .venv/bin/bentoml serve service:InvoiceFraudService \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-3000}" "$@"
