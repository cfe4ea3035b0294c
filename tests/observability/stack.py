"""The observability files as the tools load them: paths, .env.example, Grafana's
provisioning (after its environment interpolation), every PromQL expression in use, and
Grafana's alert-condition evaluation for the expression types our rules use."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.servers import REPO

OBSERVABILITY = REPO / "observability"
PROMETHEUS_DIR = OBSERVABILITY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_RULES = PROMETHEUS_DIR / "rules.yml"
PROMETHEUS_RULES_TEST = PROMETHEUS_DIR / "tests" / "rules_test.yml"
GRAFANA_DIR = OBSERVABILITY / "grafana"
PROVISIONING = GRAFANA_DIR / "provisioning"
DASHBOARDS = GRAFANA_DIR / "dashboards"
DASHBOARD = DASHBOARDS / "invoice-fraud.json"
SCHEMAS = GRAFANA_DIR / "schema"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

#: The datasource uid of Grafana's own expressions (reduce, threshold, math).
EXPRESSION_UID = "__expr__"

#: Concrete values for Grafana's interval macros when a panel query is run outside Grafana
#: (Prometheus scrapes every second in the live test).
GRAFANA_MACROS = {"$__rate_interval": "10s", "$__interval": "2s", "$__range": "10m"}


def venv_tool(name: str) -> str:
    """A console script installed next to this interpreter (the venv's bin), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=value: {line!r}")
        env[key.strip()] = value.strip()
    return env


_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def grafana_interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR``/``${VAR}`` as Grafana's provisioning does; ``$$`` is a literal ``$``.

    Grafana splits on ``$$``, runs Go's ``os.ExpandEnv`` on each part (unset = empty) and joins
    with ``$``.
    """

    def expand(part: str) -> str:
        return _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), ""), part)

    return "$".join(expand(part) for part in text.split("$$"))


def _interpolate_tree(node: Any, env: Mapping[str, str], *, raw: bool = False) -> Any:
    if isinstance(node, str):
        return node if raw else grafana_interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env, raw=raw) for item in node]
    if isinstance(node, dict):
        # Alert query models are used raw (Grafana keeps `$__...` macros of SQL queries).
        return {k: _interpolate_tree(v, env, raw=raw or k == "model") for k, v in node.items()}
    return node


def load_provisioning(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A provisioning YAML file as Grafana sees it: strings interpolated from ``env``
    (default: the container environment compose would give Grafana from .env.example)."""
    data = yaml.safe_load(path.read_text())
    return _interpolate_tree(data, read_env_file() if env is None else env)


def provisioning_files(kind: str) -> list[Path]:
    """The YAML files of one provisioning kind (datasources, dashboards, alerting)."""
    return sorted((PROVISIONING / kind).glob("*.y*ml"))


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in provisioning_files("alerting"):
        for group in load_provisioning(path).get("groups", []):
            rules.extend(group["rules"])
    return rules


def recording_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(PROMETHEUS_RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "record" in rule]


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it is used."""

    where: str
    promql: str


def substitute_macros(promql: str) -> str:
    """Replace Grafana's interval macros with concrete durations."""
    for macro, value in GRAFANA_MACROS.items():
        promql = promql.replace(macro, value)
    if "$" in promql:
        raise ValueError(f"unknown Grafana variable left in {promql!r}")
    return promql


def all_expressions() -> list[Expression]:
    """Every PromQL expression of the dashboard, the Grafana alert rules and the recording
    rules, ready to run against Prometheus."""
    found: list[Expression] = []
    for panel in iter_panels(load_dashboard()):
        for target in panel.get("targets", []):
            if "expr" in target:
                where = f"dashboard {panel['title']!r} {target['refId']}"
                found.append(Expression(where, substitute_macros(target["expr"])))
    for rule in alert_rules():
        for node in rule["data"]:
            if node["datasourceUid"] != EXPRESSION_UID:
                where = f"alert {rule['title']!r} {node['refId']}"
                found.append(Expression(where, node["model"]["expr"]))
    for rule in recording_rules():
        found.append(Expression(f"recording rule {rule['record']}", rule["expr"]))
    return found


#: An instant query's result: one (labels, value) per series.
Samples = list[tuple[dict[str, str], float]]


def _compare(op: str, value: float, params: list[float]) -> bool:
    if value != value:  # NaN never satisfies a threshold
        return False
    comparisons: dict[str, Callable[[], bool]] = {
        "gt": lambda: value > params[0],
        "gte": lambda: value >= params[0],
        "lt": lambda: value < params[0],
        "lte": lambda: value <= params[0],
        "eq": lambda: value == params[0],
        "ne": lambda: value != params[0],
        "within_range": lambda: params[0] < value < params[1],
        "outside_range": lambda: value < params[0] or value > params[1],
    }
    return comparisons[op]()


def alert_fires(rule: Mapping[str, Any], query: Callable[[str], Samples]) -> bool:
    """Whether a Grafana rule would be in Alerting (ignoring its pending period) given the
    instant results of its Prometheus queries.

    Supports the node types our rules use: Prometheus instant queries, ``reduce`` (``last``,
    NaN dropped) and ``threshold``. No data maps through the rule's ``noDataState``.
    """
    nodes = {node["refId"]: node for node in rule["data"]}
    cache: dict[str, Samples] = {}

    def result(ref: str) -> Samples:
        if ref in cache:
            return cache[ref]
        node = nodes[ref]
        model = node["model"]
        if node["datasourceUid"] != EXPRESSION_UID:
            out = query(model["expr"])
        elif model["type"] == "reduce":
            if model["reducer"] != "last":
                raise NotImplementedError(model["reducer"])
            out = [(labels, v) for labels, v in result(model["expression"]) if v == v]
        elif model["type"] == "threshold":
            evaluator = model["conditions"][0]["evaluator"]
            out = [
                (labels, 1.0 if _compare(evaluator["type"], v, evaluator["params"]) else 0.0)
                for labels, v in result(model["expression"])
            ]
        else:
            raise NotImplementedError(model["type"])
        cache[ref] = out
        return out

    condition = result(rule["condition"])
    if not condition:
        return bool(rule["noDataState"] == "Alerting")
    return any(value == 1.0 for _, value in condition)


def scrub_env() -> dict[str, str]:
    """This process's environment without the variables the compose file reads, so a
    developer's shell cannot make a compose check pass."""
    names = set(read_env_file()) | compose_variables()
    return {k: v for k, v in os.environ.items() if k not in names}


_COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])[^}]*)?\}")


def compose_variables() -> set[str]:
    """Every ``${VAR...}`` the compose file interpolates (``$$`` escapes excluded)."""
    return {m.group(1) for m in _COMPOSE_VAR.finditer(COMPOSE_FILE.read_text())}
