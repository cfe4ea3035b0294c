"""What the UI image needs, checked without a Docker engine (hadolint runs elsewhere)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

from tests.servers import REPO

UI = REPO / "ui"


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==([^\s;#]+).*", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_ui_requirements_are_pinned_to_the_project_versions() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"])
    image = _pins((UI / "requirements.txt").read_text().splitlines())

    assert set(image) == {"streamlit", "httpx", "pandas", "pydantic", "pydantic-settings"}
    assert image == {name: wanted[name] for name in image}


def test_ui_code_imports_only_what_the_image_installs_or_copies() -> None:
    installed = {"streamlit", "httpx", "pandas", "pydantic", "pydantic_settings"}
    copied = {"ui", "invoice_fraud"}
    used: set[str] = set()
    for path in [*UI.rglob("*.py"), REPO / "invoice_fraud" / "settings.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module.split(".")[0])
    outside = used - installed - copied - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, f"the UI image would miss {sorted(outside)}"
    # The UI reaches the service over HTTP only: never the store, the model or BentoML.
    ui_modules = {
        node.module
        for path in UI.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not {m for m in ui_modules if m.startswith("invoice_fraud")} - {"invoice_fraud.settings"}


def test_ui_dockerfile_runs_as_non_root_with_a_python_healthcheck() -> None:
    text = (UI / "Dockerfile").read_text()

    assert re.search(r"^FROM python:3\.11\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert re.search(r"^EXPOSE 8501$", text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*", text, re.M)
    assert healthcheck and "/_stcore/health" in healthcheck[0]
    assert '"python"' in healthcheck[0] and "curl" not in healthcheck[0]
    assert "COPY --chown=app:app invoice_fraud/" in text and "COPY --chown=app:app ui/" in text
