"""What people look at: the HTML report rendered by a real headless Chromium (charts drawn, no script
errors, a screenshot kept in var/test-artifacts/), the terminal status list, and the bundle's Lakeview
dashboard whose every dataset query runs against the audit tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_bronze.audit import derive
from inventory_bronze.audit.store import AUDIT_EXPECTATIONS, AUDIT_LOG, SCHEMA_CHANGES, Location, local_events
from inventory_bronze.cli import main

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"
DASHBOARD_YML = ROOT / "resources" / "inventory_bronze_quality.dashboard.yml"


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.fail("Chromium is missing: scripts/setup installs it (apt-get install -y chromium)")
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180)


def render_in_chromium(page: Path, screenshot: Path, tmp: Path) -> str:
    """The DOM after Chromium ran the page's scripts; a full-page screenshot to `screenshot`."""
    url = page.resolve().as_uri()
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", url, profile=tmp / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    shot = _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1400,3200",
        "--hide-scrollbars",
        url,
        profile=tmp / "profile-shot",
    )
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    return dom.stdout


def check_report(page: Path, dom: str, screenshot: Path) -> None:
    source = page.read_text()
    assert "http://" not in source and "https://" not in source  # self-contained: nothing fetched
    status = re.search(r'<p id="js-status"([^>]*)>([^<]*)</p>', dom)
    assert status, "the page's script did not leave its status"
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', status.group(1)))
    charts = source.count('<svg class="chart')
    assert attrs["errors"] == "0" and int(attrs["charts"]) == charts >= 3, status.group(0)
    assert int(attrs["marks"]) > charts  # points, bars and graph nodes were drawn
    for kind in ("line", "bars", "graph"):
        assert f'data-kind="{kind}"' in dom
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_renders_in_chromium(spark: Any, tiny: dict[str, Any], tmp_path: Path) -> None:
    storage = tiny["storage"]
    out = tmp_path / "report.html"
    assert main(["report", "--storage", str(storage), "--out", str(out)]) == 0
    shot = ARTIFACTS / "audit-report-tiny.png"
    dom = render_in_chromium(out, shot, tmp_path)
    check_report(out, dom, shot)
    # the figures shown are the audit's: every rule of the tiny pipeline, the failed update and its error
    for rule in ("id_small", "id_even_or_one", "id_below_limit"):
        assert rule in dom
    failed = tiny["updates"][2].update_id
    assert failed[:8] in dom and "id_below_limit" in dom
    assert "bz_items_quarantine" in dom and "bz_items_feed" in dom  # the graph, views included


def test_status_lists_updates_and_flows(
    spark: Any, tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--storage", str(tiny["storage"]), "--last", "2"]) == 0
    out = capsys.readouterr().out
    first, second, failed = (u.update_id for u in tiny["updates"])
    assert failed in out and second in out and first not in out
    audit = Location.local(tiny["storage"]).read(spark, AUDIT_LOG).where(f"update_id = '{second}'").first()
    block = out.split(f"update {second}")[1]
    line = next(x for x in block.splitlines() if x.strip().startswith("bz_items "))
    assert line.split()[1] == "COMPLETED" and line.split()[2] == f"{audit.rows_written:,}"
    assert "FAILED" in out.split(f"update {failed}")[1].split("update ")[0]


def _dashboard() -> tuple[dict[str, Any], dict[str, Any]]:
    spec = yaml.safe_load(DASHBOARD_YML.read_text())["resources"]["dashboards"]["inventory_bronze_quality"]
    doc = json.loads((DASHBOARD_YML.parent / spec["file_path"]).read_text())
    return spec, doc


def check_dashboard_queries(spark: Any, storage: Path) -> dict[str, list[str]]:
    """Every dataset query runs on the audit tables (and names nothing else); every widget field names a
    column of its dataset. Returns each dataset's columns."""
    location = Location.local(storage)
    for table in (AUDIT_LOG, AUDIT_EXPECTATIONS):
        location.read(spark, table).createOrReplaceTempView(table)
    # the tiny pipeline's source never changed its schema: the table as the audit derives it, empty
    changes = location.read(spark, SCHEMA_CHANGES)
    if changes is None:
        changes = derive.schema_changes(local_events(spark, storage), {})
    changes.createOrReplaceTempView(SCHEMA_CHANGES)
    try:
        _, doc = _dashboard()
        columns = {}
        for ds in doc["datasets"]:
            sql = "".join(ds["queryLines"])
            df = spark.sql(sql)
            df.collect()
            columns[ds["name"]] = df.columns
        for page in doc["pages"]:
            for item in page["layout"]:
                for q in item["widget"].get("queries", []):
                    query = q["query"]
                    cols = columns[query["datasetName"]]
                    for f in query["fields"]:
                        for name in re.findall(r"`([^`]+)`", f["expression"]):
                            assert name in cols, (
                                f"{item['widget']['name']}: {name} not in {query['datasetName']}"
                            )
                    names = {f["name"] for f in query["fields"]}
                    encodings = item["widget"]["spec"]["encodings"]
                    used = [e["fieldName"] for e in encodings.get("columns", [])]
                    used += [e["fieldName"] for k, e in encodings.items() if k != "columns"]
                    assert set(used) <= names, item["widget"]["name"]
        return columns
    finally:
        for table in (AUDIT_LOG, AUDIT_EXPECTATIONS, SCHEMA_CHANGES):
            spark.catalog.dropTempView(table)


def test_dashboard_queries_run_on_the_audit_tables(spark: Any, tiny: dict[str, Any]) -> None:
    spec, doc = _dashboard()
    assert spec["file_path"].endswith(".lvdash.json") and spec["dataset_schema"] == "${var.schema}"
    columns = check_dashboard_queries(spark, tiny["storage"])
    assert {
        "pass_rate",
        "rows_per_update",
        "failed_updates",
        "quarantine_growth",
        "reconciliation",
        "schema_changes",
    } <= set(columns)
    # a query naming anything but the audit tables fails here
    with pytest.raises(Exception, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql("SELECT * FROM bz_items").collect()


def test_pass_rate_charts_are_scaled_to_their_data() -> None:
    """A rule passing 96 % of the rows must not look like one passing all of them: the y axis starts just
    below the lowest figure (0 only when the figures span most of the range)."""
    from inventory_bronze.audit.report import line_chart

    svg = line_chart("t", ["u1", "u2"], {"rule": [96.0, 100.0]})
    assert 'data-y-min="94"' in svg
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    plot_height = 220 - 28 - 12
    assert ys[0] - ys[1] > plot_height * 0.5  # 96 % sits well below 100 %
    assert 'data-y-min="0"' in line_chart("t", ["u1", "u2"], {"rule": [10.0, 100.0]})
