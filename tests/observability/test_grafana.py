"""Grafana's files, validated without a Grafana server: the dashboard against the JSON schema
generated from Grafana's published types (@grafana/schema), provisioning against strict
schemas of the provisioning formats, and the references between them and the compose file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.observability.stack import (
    COMPOSE_FILE,
    DASHBOARDS,
    EXPRESSION_UID,
    REPO,
    SCHEMAS,
    alert_rules,
    iter_panels,
    load_dashboard,
    load_provisioning,
    provisioning_files,
    read_env_file,
)

PROBES = ("/livez", "/readyz")


def schema(name: str) -> jsonschema.Draft7Validator:
    loaded = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft7Validator.check_schema(loaded)
    return jsonschema.Draft7Validator(loaded)


def errors(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in validator.iter_errors(instance)
    ]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in iter_panels(dashboard)}


@pytest.fixture(scope="module")
def datasource_uids() -> set[str]:
    return {
        ds["uid"]
        for path in provisioning_files("datasources")
        for ds in load_provisioning(path)["datasources"]
    }


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


# --- the dashboard ---------------------------------------------------------------------


def test_dashboard_matches_grafana_dashboard_schema(dashboard: dict[str, Any]) -> None:
    assert errors(schema("dashboard.schema.json"), dashboard) == []


def test_panel_options_match_their_plugin_schemas(dashboard: dict[str, Any]) -> None:
    for panel in iter_panels(dashboard):
        kind = panel["type"]
        options = SCHEMAS / f"panel-{kind}-options.schema.json"
        assert options.exists(), f"no schema for panel type {kind}: extend generate.sh"
        assert errors(schema(options.name), panel["options"]) == [], panel["title"]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        field_schema = SCHEMAS / f"panel-{kind}-fieldconfig.schema.json"
        if custom is not None and field_schema.exists():
            assert errors(schema(field_schema.name), custom) == [], panel["title"]


def test_schema_rejects_a_misspelt_panel_key(dashboard: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][0]["titel"] = broken["panels"][0].pop("title")
    assert errors(schema("dashboard.schema.json"), broken)


def test_panels_have_unique_ids_titles_units_and_legends(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard))
    assert len({p["id"] for p in panels}) == len(panels)
    assert len({p["title"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["targets"], panel["title"]
        if panel["type"] != "heatmap":
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        for target in panel["targets"]:
            assert target.get("legendFormat"), f"{panel['title']} {target['refId']}"
        if panel["type"] == "timeseries":
            assert panel["options"]["legend"]["showLegend"] is True, panel["title"]


def test_every_query_uses_a_provisioned_datasource(
    dashboard: dict[str, Any], datasource_uids: set[str]
) -> None:
    for panel in iter_panels(dashboard):
        assert panel["datasource"]["uid"] in datasource_uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in datasource_uids, panel["title"]


def test_dashboard_has_the_panels_operators_rely_on(panels: dict[str, dict[str, Any]]) -> None:
    def exprs(title: str) -> str:
        return " ".join(t["expr"] for t in panels[title]["targets"])

    assert "prediction:invoice_fraud_predictions:rate1m" in exprs("Predictions over time by class")
    assert "invoice_fraud:fraud_share:ratio_rate5m" in exprs("Fraud share")
    quantiles = exprs("Model latency p50 / p95 / p99")
    assert all(f'quantile="{q}"' in quantiles for q in ("0.5", "0.95", "0.99"))
    assert "bentoml_service_requests" in exprs("Request rate per endpoint")
    assert "bentoml_service_request_errors" in exprs("Error share per endpoint")
    assert "invoice_fraud_probability_bucket" in exprs("Fraud probability distribution")
    assert "invoice_fraud_verdict_total" in exprs("Analyst verdicts")
    assert "invoice_fraud:live_precision" in exprs("Live precision (24 h)")
    assert "invoice_fraud_model_info" in exprs("Model being served")
    assert "threshold" in exprs("Decision threshold")
    assert panels["Fraud share"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert panels["Model latency p50 / p95 / p99"]["fieldConfig"]["defaults"]["unit"] == "s"


def test_latency_heatmap_is_built_from_the_histogram(panels: dict[str, dict[str, Any]]) -> None:
    heatmap = panels["Model latency heatmap"]
    assert heatmap["type"] == "heatmap"
    (target,) = heatmap["targets"]
    assert target["expr"] == (
        "sum by (le) (rate(invoice_prediction_latency_seconds_bucket[$__rate_interval]))"
    )
    assert target["format"] == "heatmap"
    assert target["legendFormat"] == "{{le}}"
    options = heatmap["options"]
    assert options["calculate"] is False, "buckets come from Prometheus, not recalculated"
    assert options["color"]["mode"] == "scheme" and options["color"]["scheme"] == "YlOrRd"
    assert options["yAxis"]["unit"] == "s"


def test_http_panels_leave_health_probes_out() -> None:
    # The dashboard reads recorded series; the recording rules are where probes are dropped.
    rules = yaml.safe_load((REPO / "observability/prometheus/rules.yml").read_text())
    http = next(g for g in rules["groups"] if g["name"] == "invoice_fraud_http")
    for rule in http["rules"]:
        for selector in rule["expr"].split("bentoml_service_request")[1:]:
            labels = selector[selector.index("{") : selector.index("}")]
            assert all(probe in labels for probe in PROBES), rule["record"]


# --- provisioning ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "schema_name"),
    [
        ("datasources", "provisioning-datasources.schema.json"),
        ("dashboards", "provisioning-dashboards.schema.json"),
        ("alerting", "provisioning-alerting.schema.json"),
    ],
)
def test_provisioning_files_match_strict_schemas(kind: str, schema_name: str) -> None:
    files = provisioning_files(kind)
    assert files, f"no {kind} provisioning"
    validator = schema(schema_name)
    for path in files:
        assert errors(validator, load_provisioning(path)) == [], path.name


def test_provisioning_schema_rejects_unknown_keys() -> None:
    (path,) = [p for p in provisioning_files("alerting") if p.name == "rules.yml"]
    broken = load_provisioning(path)
    broken["groups"][0]["rules"][0]["noDataStat"] = "OK"
    assert errors(schema("provisioning-alerting.schema.json"), broken)


def test_datasource_uid_is_fixed_and_points_at_compose_prometheus(
    compose: dict[str, Any],
) -> None:
    (path,) = provisioning_files("datasources")
    (datasource,) = load_provisioning(path)["datasources"]
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]


def test_dashboard_provider_path_is_the_compose_mount(compose: dict[str, Any]) -> None:
    (path,) = provisioning_files("dashboards")
    (provider,) = load_provisioning(path)["providers"]
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    assert mounts[provider["options"]["path"]] == DASHBOARDS.resolve()
    assert mounts["/etc/grafana/provisioning"] == (REPO / "observability/grafana/provisioning")


def test_alert_queries_use_provisioned_datasources(datasource_uids: set[str]) -> None:
    for rule in alert_rules():
        refs = {node["refId"] for node in rule["data"]}
        assert rule["condition"] in refs, rule["title"]
        for node in rule["data"]:
            assert node["datasourceUid"] in datasource_uids | {EXPRESSION_UID}, rule["title"]
            if node["datasourceUid"] == EXPRESSION_UID:
                assert node["model"]["expression"] in refs, rule["title"]


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route, *(r for child in route.get("routes", []) for r in _routes(child))]


def test_every_policy_receiver_is_an_email_contact_point() -> None:
    contact_points: dict[str, list[dict[str, Any]]] = {}
    receivers: list[str] = []
    for path in provisioning_files("alerting"):
        data = load_provisioning(path)
        for point in data.get("contactPoints", []):
            contact_points[point["name"]] = point["receivers"]
        for policy in data.get("policies", []):
            receivers.extend(route["receiver"] for route in _routes(policy))
    assert receivers
    for receiver in receivers:
        assert receiver in contact_points, f"policy routes to unknown contact point {receiver}"
        assert all(r["type"] == "email" for r in contact_points[receiver])
    addresses = next(iter(contact_points.values()))[0]["settings"]["addresses"]
    assert addresses == read_env_file()["ALERT_EMAIL_TO"], "interpolated from ALERT_EMAIL_TO"


def test_alert_rules_cover_spike_down_latency_errors_with_deliberate_nodata() -> None:
    rules = {rule["title"]: rule for rule in alert_rules()}
    assert set(rules) == {
        "Fraud spike", "Invoice fraud API down", "High p95 request latency",
        "High HTTP error share",
    }  # fmt: skip
    # A dead API (target gone, Prometheus unreachable) pages ...
    down = rules["Invoice fraud API down"]
    assert (down["noDataState"], down["execErrState"]) == ("Alerting", "Alerting")
    # ... a quiet one does not, and one outage is one email, not four.
    for title in ("Fraud spike", "High p95 request latency", "High HTTP error share"):
        assert (rules[title]["noDataState"], rules[title]["execErrState"]) == ("OK", "OK")
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]


def test_alert_templates_survive_provisioning_interpolation() -> None:
    # Grafana expands $VAR in provisioning files (unset = empty): a template's $values must
    # be written $$values, or the email would read "{{ humanizePercentage .R.Value }}".
    (path,) = [p for p in provisioning_files("alerting") if p.name == "rules.yml"]
    raw = yaml.safe_load(path.read_text())
    raw_rules = {r["uid"]: r for g in raw["groups"] for r in g["rules"]}
    for rule in alert_rules():
        for key, text in rule["annotations"].items():
            raw_text = raw_rules[rule["uid"]]["annotations"][key]
            assert not re.search(r"(?<!\$)\$(?!\$)[A-Za-z_{]", raw_text), (rule["title"], key)
            for name in re.findall(r"\$\$(\w+)", raw_text):
                assert f"${name}." in text, (rule["title"], key, name)


def test_compose_mounts_every_provisioning_kind_read_only(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./observability/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    for kind in ("datasources", "dashboards", "alerting"):
        assert (REPO / "observability/grafana/provisioning" / kind).is_dir()


def test_generated_schema_records_its_source() -> None:
    version = (SCHEMAS / "VERSION").read_text()
    assert "@grafana/schema" in version
    assert Path(SCHEMAS / "generate.sh").exists()
