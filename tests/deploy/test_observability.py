"""deploy/observability: the alert rules and the Grafana dashboard parse, use only metrics the code
defines, and every alert is explained in docs/operations.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"

# Metrics the chat service will define (its persister and API are being built); the dashboard
# already has their panels. Remove a name here once services/chat defines it.
PENDING_METRICS = {"chat_messages_accepted_total", "chat_messages_rejected_total",
                   "chat_persister_batch_size", "chat_persister_lag_seconds"}
# Series Prometheus makes itself
BUILTIN_SERIES = {"up"}

_METRIC_DEF = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"", re.DOTALL)
_FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase", "delta",
    "histogram_quantile", "label_values", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "abs", "clamp_min", "clamp_max", "time", "vector", "scalar",
}


def series_in_code() -> set[str]:
    """Exposed series names of every prometheus_client metric in the sources."""
    names: set[str] = set()
    for path in [*REPO.glob("services/*/src/**/*.py"), *REPO.glob("libs/*/src/**/*.py")]:
        for kind, name in _METRIC_DEF.findall(path.read_text()):
            if kind == "Counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind in ("Histogram", "Summary"):
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", name}
            else:
                names.add(name)
    return names


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name = m.group(0)
        following = expr[m.end():].lstrip()[:1]
        if name in _FUNCTIONS_AND_KEYWORDS or following == "(" or re.fullmatch(r"\d+[smhd]?", name):
            continue
        names.add(name)
    return names


def known_series() -> set[str]:
    known = series_in_code() | BUILTIN_SERIES
    for name in PENDING_METRICS:
        known |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return known


def test_the_code_defines_the_metrics_operators_rely_on():
    code = series_in_code()
    for name in ("http_request_duration_seconds_bucket", "outbox_pending", "outbox_lag_seconds_bucket",
                 "inbox_dead_letters_total", "ingest_authorize_total", "chat_edge_connections"):
        assert name in code, name


def test_alert_rules_parse_and_use_only_known_metrics():
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())
    code = series_in_code() | BUILTIN_SERIES
    operations = (REPO / "docs" / "operations.md").read_text()
    names = []
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            used = metrics_in(rule["expr"])
            assert used, f"{rule['alert']}: no metric found in {rule['expr']!r}"
            # alerts only on metrics that exist now: an alert on a missing series never fires
            assert used <= code, f"{rule['alert']}: unknown metrics {sorted(used - code)}"
            assert f"### {rule['alert']}" in operations, f"docs/operations.md does not explain {rule['alert']}"
            names.append(rule["alert"])
    assert len(names) == len(set(names)) >= 8


def test_prometheus_rule_in_prod_is_the_rule_file():
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())
    resource = yaml.safe_load((REPO / "deploy" / "k8s" / "overlays" / "prod" / "prometheus-rule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"] == rules, "copy deploy/observability/alerts.yaml into the PrometheusRule's spec"


def test_dashboard_parses_and_charts_known_metrics():
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    known = known_series()
    charted = set()
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = metrics_in(target["expr"])
            assert used and used <= known, f"{panel['title']}: unknown metrics {sorted(used - known)}"
            charted |= used
    for family in ("http_request_duration_seconds_bucket", "outbox_pending", "inbox_processed_total",
                   "chat_edge_connections", "chat_fanout_latency_seconds_bucket", "ingest_authorize_total"):
        assert family in charted, f"the dashboard has no panel on {family}"


def test_metric_extraction_finds_names_and_skips_functions():
    expr = 'histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket{status=~"5.."}[5m]))) > 1'
    assert metrics_in(expr) == {"http_request_duration_seconds_bucket"}
    assert metrics_in("max by (pod) (outbox_pending) > 100 and up == 0") == {"outbox_pending", "up"}
