"""The ceiling: a bare Starlette app on uvicorn that parses the invoice JSON and answers a
constant. No Python HTTP service on this machine can beat it (same uvicorn, same 2
workers, nothing else done per request).

    .venv/bin/python -m uvicorn benchmarks.bare_asgi:app --workers 2 --no-access-log --port 8002

``POST /predict_invoice_fraud`` parses one invoice; ``POST /predict_invoice_fraud_batch``
parses ``{"invoices": [...]}`` (a parse-only ceiling for the batch endpoint); both answer
constant bytes. ``GET /readyz`` answers 200.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_SINGLE = json.dumps(
    {
        "invoice_id": None,
        "prediction": 0,
        "fraud_probability": 0.0028,
        "threshold": 0.41,
        "model_tag": "invoice_fraud:constant",
        "invoice_weekday": 2,
        "warnings": [],
    },
    separators=(",", ":"),
).encode()
_BATCH = b'{"predictions":[],"count":0,"flagged":0,"threshold":0.41,"model_tag":"constant"}'
_BAD = b'{"error":"body must be a JSON object"}'


async def predict(request: Request) -> Response:
    body = json.loads(await request.body())
    if not isinstance(body, dict):
        return Response(_BAD, status_code=400, media_type="application/json")
    return Response(_SINGLE, media_type="application/json")


async def predict_batch(request: Request) -> Response:
    body = json.loads(await request.body())
    if not isinstance(body, dict) or not isinstance(body.get("invoices"), list):
        return Response(_BAD, status_code=400, media_type="application/json")
    return Response(_BATCH, media_type="application/json")


async def readyz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/predict_invoice_fraud", predict, methods=["POST"]),
        Route("/predict_invoice_fraud_batch", predict_batch, methods=["POST"]),
        Route("/readyz", readyz),
    ]
)
