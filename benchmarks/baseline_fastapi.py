"""The peer: invoice scoring the straightforward way, with FastAPI (issue 5).

What a user would build without BentoML: a FastAPI app, a pydantic model of the seven
fields, an ``XGBClassifier`` loaded from a file, ``predict`` and then ``predict_proba`` on a
numpy row per request, and prometheus-fastapi-instrumentator for ``/metrics``. It serves
the *same* trained model as the project (the booster exported from the BentoML store) and
builds the *same* features with the project's shared
:func:`invoice_fraud.features.build_features`, so its scores equal the project's; what
differs is only the serving stack.

Choices, kept to what a user would do by default:

- ``def`` (not ``async def``) endpoint, as FastAPI's docs advise for blocking work such as
  model calls: FastAPI runs it in its thread pool.
- The classifier keeps xgboost's default thread count.
- uvicorn's defaults (access log on), with ``--workers 2``: the project runs 2 workers on
  this 2-core machine, so the peer gets the same number of processes (1 worker would halve
  its CPU and flatter the project).
- ``PROMETHEUS_MULTIPROC_DIR`` set, as the instrumentator documents for more than one worker.

Run it alone (it exports the model, then serves on 127.0.0.1)::

    .venv/bin/python -m benchmarks.baseline_fastapi --port 8001 [--bentoml-home DIR]

``benchmarks/compare.py`` starts it itself, as
``uvicorn --factory benchmarks.baseline_fastapi:create_app --workers 2``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xgboost as xgb
from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel

from invoice_fraud.features import build_features


class Invoice(BaseModel):
    """The seven fields existing clients send."""

    amount: float
    tax: float
    total: float
    invoice_year: int
    invoice_month: int
    invoice_day: int
    invoice_weekday: int


def create_app() -> FastAPI:
    """The FastAPI app, serving the model file named by ``PEER_MODEL_FILE``."""
    model = xgb.XGBClassifier()
    model.load_model(os.environ["PEER_MODEL_FILE"])
    threshold = float(os.environ.get("PEER_THRESHOLD", "0.5"))
    model_tag = os.environ.get("PEER_MODEL_TAG", "unknown")

    app = FastAPI(title="Invoice fraud (FastAPI peer)")
    Instrumentator().instrument(app).expose(app)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict_invoice_fraud")
    def predict_invoice_fraud(invoice: Invoice) -> dict[str, object]:
        row = build_features(
            {
                "amount": np.array([invoice.amount]),
                "tax": np.array([invoice.tax]),
                "total": np.array([invoice.total]),
                "invoice_year": np.array([invoice.invoice_year]),
                "invoice_month": np.array([invoice.invoice_month]),
                "invoice_day": np.array([invoice.invoice_day]),
            }
        )
        prediction = int(model.predict(row)[0])
        probability = float(model.predict_proba(row)[0, 1])
        return {
            "prediction": prediction,
            "fraud_probability": probability,
            "threshold": threshold,
            "model_tag": model_tag,
            "invoice_weekday": int(row[0, 13]),
        }

    return app


def main() -> None:
    """Export the store's model to a file and serve the peer with uvicorn (2 workers)."""
    from benchmarks.common import export_booster, load_stored_model, resolve_bentoml_home

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    home = resolve_bentoml_home(args.bentoml_home, print)
    model = load_stored_model(home)
    directory = Path(tempfile.mkdtemp(prefix="peer-"))
    model_file = export_booster(model, directory)
    (directory / "prometheus").mkdir()
    env = {
        **os.environ,
        "PEER_MODEL_FILE": str(model_file),
        "PEER_MODEL_TAG": model.tag,
        "PEER_THRESHOLD": repr(model.threshold),
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "prometheus"),
    }
    print(f"serving {model.tag} from {model_file} on http://127.0.0.1:{args.port}")
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks.baseline_fastapi:create_app",
        "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers),
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=False)


if __name__ == "__main__":
    main()
