"""Prometheus' own tool on our config and rules: syntax, and the rules' unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.observability.stack import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_RULES,
    PROMETHEUS_RULES_TEST,
    recording_rules,
)

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: run scripts/system-deps.sh"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_config_accepts_config_and_its_rules() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(PROMETHEUS_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(PROMETHEUS_RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_recording_rule_has_a_unit_test() -> None:
    tested = PROMETHEUS_RULES_TEST.read_text()
    untested = {
        rule["record"]
        for rule in recording_rules()
        if not rule["record"].endswith(":threshold") and rule["record"] not in tested
    }
    assert not untested, f"add promtool tests for {sorted(untested)}"


def test_config_scrapes_the_api_and_itself_at_short_intervals() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["fraud_api"]["static_configs"][0]["targets"] == ["fraud_api:3000"]
    assert jobs["fraud_api"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["localhost:9090"]
    for key in ("scrape_interval", "evaluation_interval"):
        seconds = re.fullmatch(r"(\d+)s", config["global"][key])
        assert seconds and int(seconds.group(1)) <= 15, key
