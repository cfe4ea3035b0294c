"""`bentoml build` makes a complete Bento: the model, the code, pinned requirements."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.servers import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bento_dir(bentoml_home: Path) -> Path:
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    path = bentoml_home / "bentos" / name / version
    assert path.is_dir(), done.stdout
    return path


def test_bento_carries_the_model(bento_dir: Path, bentoml_home: Path) -> None:
    manifest = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    (service,) = manifest["services"]
    model_tags = [m["tag"] for m in service["models"]]
    assert len(model_tags) == 1 and model_tags[0].startswith("invoice_fraud:")
    assert service["models"][0]["module"] == "bentoml.xgboost"
    # BentoML 1.4 references the model from the store and packs it on containerize/export.
    name, version = model_tags[0].split(":")
    assert (bentoml_home / "models" / name / version / "saved_model.ubj").is_file()
    routes = {r["route"] for r in manifest["schema"]["routes"]}
    assert {"/predict_invoice_fraud", "/predict_invoice_fraud_batch"} <= routes


def test_bento_requirements_pin_training_versions(bento_dir: Path) -> None:
    import bentoml
    import xgboost

    reqs = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert f"bentoml=={bentoml.__version__}" in reqs
    assert f"xgboost=={xgboost.__version__}" in reqs
    for package in ("pydantic-settings", "prometheus-client", "numpy", "pandas"):
        assert package in reqs.lower().replace("_", "-"), package


def test_bento_dockerfile_and_sources_are_complete(bento_dir: Path) -> None:
    dockerfile = bento_dir / "env" / "docker" / "Dockerfile"
    assert dockerfile.is_file()
    assert "requirements.txt" in dockerfile.read_text() or "install.sh" in dockerfile.read_text()
    src = bento_dir / "src"
    files = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    assert "service.py" in files
    assert {"invoice_fraud/features.py", "invoice_fraud/schema.py"} <= files
    leaked = [f for f in files if f.startswith((".venv", "tests/", ".git")) or f.endswith(".env")]
    assert leaked == []
    assert not any("__pycache__" in f for f in files)
