"""Prometheus rules and scrape configs: every expression parses as PromQL, every metric it
names is one the code exposes, every alert says what to do."""

from __future__ import annotations

import re

import promql_parser
import pytest
import yaml

from tests.ops.deployfiles import DEPLOY, KUBECTL, ROOT, compose_services, of_kind, rendered

PROMETHEUS = DEPLOY / "prometheus"
RULES = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]
BUILTIN = {"up"}  # Prometheus' own per-target series


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def code_text() -> str:
    files = list((ROOT / "shared").glob("*.py")) + [
        p for p in (ROOT / "services").rglob("*.py") if "tests" not in p.parts
    ]
    return "\n".join(p.read_text() for p in files)


def exposed(name: str, code: str) -> bool:
    base = re.sub(r"_(bucket|sum|count)$", "", name)  # a histogram's series
    return any(f'"{n}"' in code or f"'{n}'" in code for n in (name, base))


def test_rule_file_shape_and_unique_names():
    names = [a["alert"] for a in ALERTS]
    assert len(names) == len(set(names))
    for alert in ALERTS:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["runbook_url"], alert[
            "alert"
        ]
        assert re.fullmatch(r"\d+[smh]", alert["for"]), alert["alert"]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_expression_is_valid_promql(alert):
    promql_parser.parse(alert["expr"])


def test_invalid_promql_is_caught():
    with pytest.raises(ValueError):
        promql_parser.parse("max by (service) (rapport_outbox_backlog > 1")


def test_the_alerts_the_practice_needs_are_there():
    names = set().union(*(metric_names(a["expr"]) for a in ALERTS))
    assert {
        "rapport_outbox_backlog",
        "rapport_outbox_oldest_age_seconds",
        "rapport_consumer_lag",
        "rapport_http_requests_total",
    } <= names
    # risk alerts: a stuck dispatcher within two minutes, and any message given up on
    (overdue,) = [
        a for a in ALERTS if "rapport_notifications_overdue_seconds" in metric_names(a["expr"])
    ]
    assert float(overdue["expr"].rsplit(">", 1)[1]) <= 120
    (failed,) = [a for a in ALERTS if 'rapport_notifications{status="failed"}' in a["expr"]]
    for alert in (overdue, failed):
        assert alert["labels"]["severity"] == "critical" and alert["for"] == "0m"
    five_xx = [a for a in ALERTS if 'status=~"5.."' in a["expr"]]
    assert five_xx


def test_every_metric_named_is_exposed_by_the_code():
    code = code_text()
    for alert in ALERTS:
        for name in metric_names(alert["expr"]) - BUILTIN:
            assert exposed(name, code), (
                f"{alert['alert']}: no metric {name} in shared/ or services/"
            )


def test_a_renamed_metric_would_be_noticed():
    assert not exposed("rapport_outbox_backlog_total", code_text())


def test_runbook_links_point_at_sections_of_the_readme():
    readme = (DEPLOY / "README.md").read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", readme, re.M)
    }
    for alert in ALERTS:
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert path == "deploy/README.md" and anchor in anchors, alert["alert"]


def test_scrape_configs_load_the_rules_and_reach_every_api():
    for name in ("prometheus.yml", "prometheus-compose.yml"):
        conf = yaml.safe_load((PROMETHEUS / name).read_text())
        assert conf["rule_files"] == ["alerts.yml"]
        assert [j["job_name"] for j in conf["scrape_configs"]] == ["rapport"], (
            "alerts use job=rapport"
        )
    compose_conf = yaml.safe_load((PROMETHEUS / "prometheus-compose.yml").read_text())
    targets = set(compose_conf["scrape_configs"][0]["static_configs"][0]["targets"])
    apis = {
        f"{n}:{ports[0].split(':')[-1]}"
        for n, s in compose_services().items()
        if n.endswith("-api")
        for ports in [s["ports"]]
    }
    assert targets == apis


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubernetes_scrape_config_uses_the_annotations_the_pods_carry():
    conf = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    sources = {
        s for r in conf["scrape_configs"][0]["relabel_configs"] for s in r.get("source_labels", [])
    }
    annotated = set()
    for doc in of_kind(rendered("overlays/production"), "Deployment"):
        annotated |= set(doc["spec"]["template"]["metadata"].get("annotations", {}))
    for annotation in ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"):
        assert annotation in annotated
        label = "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9]", "_", annotation)
        assert label in sources
    assert conf["scrape_configs"][0]["kubernetes_sd_configs"][0]["namespaces"]["names"] == [
        "rapport"
    ]
