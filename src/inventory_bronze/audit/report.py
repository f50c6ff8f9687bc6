"""The static HTML quality report of `inventory-bronze report`: one self-contained page (inline SVG
charts, a few lines of inline JavaScript, no network), built from the audit tables and the event logs.

Sections: pass rate per rule over updates (one chart per table), rows written per table per update
(stacked bars), failing rules of the last update, failed updates, reconciliation, and the pipeline graph
of each pipeline's last update (flow_definition events) with each dataset's rows.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from inventory_bronze.audit import derive
from inventory_bronze.audit.store import (
    AUDIT_EXPECTATIONS,
    AUDIT_LOG,
    SCHEMA_CHANGES,
    Location,
    audit_local,
    event_log_paths,
)

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)  # fmt: skip
LAST_UPDATES = 12

_e = html.escape


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _legend(names: list[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{_color(i)}"></i>{_e(n)}</span>' for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def y_floor(values: list[float], top: float = 100.0) -> float:
    """The lowest y of a chart of `values` (up to `top`): 0 for wide ranges, else a round value a little
    below the lowest one, so that a 96 % rule does not sit on the 100 % line."""
    low = min(values, default=top)
    span = top - low
    for step in (1, 2, 5, 10, 20, 25):
        if span <= 3 * step:
            return max(0.0, (low // step - 1) * step)
    return 0.0


def line_chart(title: str, xs: list[str], series: dict[str, list[float | None]], y_max: float = 100.0) -> str:
    """Lines over the updates `xs` (one point per update; None = no figure), y from just below the lowest
    figure (see y_floor) to y_max."""
    w, h, left, bottom, top = 640, 220, 44, 28, 12
    pw, ph = w - left - 36, h - bottom - top  # room on the right for the last label
    step = pw / max(1, len(xs) - 1)
    y_min = y_floor([y for ys in series.values() for y in ys if y is not None], y_max)

    def pos(i: int, y: float) -> tuple[float, float]:
        return left + (i * step if len(xs) > 1 else pw / 2), top + ph - (y - y_min) / (y_max - y_min) * ph

    parts = [
        f'<svg class="chart" data-kind="line" data-y-min="{y_min:g}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img">'
    ]
    for k in range(5):
        value = y_min + (y_max - y_min) * k / 4
        y = top + ph - k / 4 * ph
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value:g}</text>')
    for i, x in enumerate(xs):
        px, _ = pos(i, y_min)
        parts.append(f'<text x="{px:.1f}" y="{h - 8}" class="tick" text-anchor="middle">{_e(x)}</text>')
    for n, (name, ys) in enumerate(series.items()):
        points = [(pos(i, y), y) for i, y in enumerate(ys) if y is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for (px, py), _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{_color(n)}" stroke-width="2"/>')
        for (px, py), y in points:
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{_color(n)}" class="point">'
                f"<title>{_e(name)}: {y:.2f}</title></circle>"
            )
    parts.append("</svg>")
    return f"<figure><figcaption>{_e(title)}</figcaption>{''.join(parts)}{_legend(list(series))}</figure>"


def stacked_bars(title: str, xs: list[str], series: dict[str, list[int]]) -> str:
    """One bar per update, one segment per table."""
    w, h, left, bottom, top = 640, 240, 60, 28, 12
    pw, ph = w - left - 12, h - bottom - top
    totals = [sum(s[i] for s in series.values()) for i in range(len(xs))]
    y_max = max(totals + [1])
    slot = pw / max(1, len(xs))
    bar = min(40.0, slot * 0.7)
    parts = [
        f'<svg class="chart" data-kind="bars" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
    ]
    for k in range(5):
        value = y_max * k / 4
        y = top + ph - value / y_max * ph
        parts.append(f'<line x1="{left}" x2="{w - 12}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value:,.0f}</text>'
        )
    for i, x in enumerate(xs):
        cx = left + slot * i + slot / 2
        base = top + ph
        for n, (name, values) in enumerate(series.items()):
            height = values[i] / y_max * ph
            if height > 0:
                base -= height
                parts.append(
                    f'<rect class="bar" x="{cx - bar / 2:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                    f'fill="{_color(n)}"><title>{_e(name)} in {_e(x)}: {values[i]:,}</title></rect>'
                )
        parts.append(f'<text x="{cx:.1f}" y="{h - 8}" class="tick" text-anchor="middle">{_e(x)}</text>')
    parts.append("</svg>")
    return f"<figure><figcaption>{_e(title)}</figcaption>{''.join(parts)}{_legend(list(series))}</figure>"


def graph_svg(title: str, edges: list[tuple[str, str]], rows: dict[str, int], nodes: set[str]) -> str:
    """Datasets left to right by depth (sources first), an arrow per input -> output, rows in each box."""
    inputs: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        inputs[b].add(a)
    depth: dict[str, int] = {}

    def level(n: str, seen: frozenset[str] = frozenset()) -> int:
        if n not in depth:
            depth[n] = 1 + max((level(i, seen | {n}) for i in inputs[n] if i not in seen), default=-1)
        return depth[n]

    columns: dict[int, list[str]] = defaultdict(list)
    for n in sorted(nodes):
        columns[level(n)].append(n)
    bw, bh, gx, gy = 190, 38, 60, 12
    width = 20 + len(columns) * (bw + gx)
    height = 20 + max(len(c) for c in columns.values()) * (bh + gy)
    at: dict[str, tuple[float, float]] = {}
    for d, names in columns.items():
        for j, n in enumerate(names):
            at[n] = (10 + d * (bw + gx), 10 + j * (bh + gy))
    parts = [
        f'<svg class="chart graph" data-kind="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>',
    ]
    for a, b in edges:
        (ax, ay), (bx, by) = at[a], at[b]
        parts.append(
            f'<line class="edge" x1="{ax + bw}" y1="{ay + bh / 2}" x2="{bx}" y2="{by + bh / 2}" '
            'stroke="#888" marker-end="url(#arrow)"/>'
        )
    for n, (x, y) in at.items():
        kind = "quarantine" if n.endswith("_quarantine") else ("view" if n not in rows else "table")
        count = f"{rows[n]:,} rows" if n in rows else "view"
        parts.append(
            f'<g class="node {kind}"><rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="5"/>'
            f'<text x="{x + 8}" y="{y + 16}" class="name">{_e(n)}</text>'
            f'<text x="{x + 8}" y="{y + 31}" class="rows">{count}</text></g>'
        )
    parts.append("</svg>")
    return f"<figure><figcaption>{_e(title)}</figcaption>{''.join(parts)}</figure>"


def _table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e('-' if v is None else str(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="none">none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _graphs(spark: Any, storage: Path) -> list[str]:
    out = []
    for key, path in event_log_paths(storage).items():
        events = spark.read.format("delta").load(str(path))
        latest = derive.updates(events).orderBy(F.col("ended").desc()).first()
        defined = events.where("event_type = 'flow_definition'")
        if latest is not None:
            defined = defined.where(F.col("origin.update_id") == latest.update_id)
        defs = defined.select(
            F.get_json_object("details", "$.flow_definition.output_dataset").alias("output"),
            F.get_json_object("details", "$.flow_definition.input_datasets").alias("inputs"),
        ).collect()
        if not defs:
            continue
        edges = sorted({(i, d.output) for d in defs for i in json.loads(d.inputs or "[]")})
        nodes = {d.output for d in defs} | {a for a, _ in edges}
        rows: dict[str, int] = {}
        if latest is not None:
            figures = derive.flow_figures(
                events.where(F.col("origin.update_id") == latest.update_id)
            ).collect()
            rows = {f.dataset: int(f.rows_written) for f in figures}
        label = f"{key}: update {latest.update_id[:8]} ({latest.state})" if latest else key
        out.append(
            graph_svg(
                label, edges, {n: rows.get(n, 0) for n in nodes if n in {d.output for d in defs}}, nodes
            )
        )
    return out


def build_html(spark: Any, storage: Path) -> str:
    location = Location.local(storage)
    audit = location.read(spark, AUDIT_LOG)
    expectations = location.read(spark, AUDIT_EXPECTATIONS)
    audit_rows = audit.orderBy("update_ended", "target_table").collect() if audit is not None else []
    exp_rows = expectations.orderBy("ingestion_timestamp").collect() if expectations is not None else []

    # the last updates, labelled by time (both pipelines' updates share one axis)
    order = sorted({(r.update_ended, r.update_id) for r in audit_rows})[-LAST_UPDATES:]
    label = {u: f"{t:%H:%M:%S}" for t, u in order}
    xs = [label[u] for _, u in order]
    index = {u: i for i, (_, u) in enumerate(order)}

    sections = [f"<h1>Bronze quality report</h1><p class='meta'>storage {_e(str(storage))} &middot; "
                f"generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC &middot; "
                f"{len({r.update_id for r in audit_rows})} update(s) audited</p>"]  # fmt: skip

    # pass rate per rule, one chart per table
    by_table: dict[str, dict[str, list[float | None]]] = defaultdict(dict)
    for r in exp_rows:
        if r.update_id in index and r.pass_rate is not None:
            ys = by_table[r.target_table].setdefault(r.expectation, [None] * len(xs))
            ys[index[r.update_id]] = round(100 * r.pass_rate, 2)
    charts = [line_chart(f"{t}: pass rate % per rule", xs, s) for t, s in sorted(by_table.items())]
    sections.append("<h2>Pass rate per rule over updates</h2><div class='grid'>" + "".join(charts) + "</div>")

    # rows written per table per update
    tables = sorted({r.target_table for r in audit_rows})
    written = {t: [0] * len(xs) for t in tables}
    for r in audit_rows:
        if r.update_id in index:
            written[r.target_table][index[r.update_id]] += int(r.rows_written)
    sections.append("<h2>Rows per table per update</h2>" + stacked_bars("rows written", xs, written))

    # failing rules of each table's last update
    last_by_table: dict[str, str] = {}
    for r in exp_rows:
        last_by_table[r.target_table] = r.update_id
    failing = [
        [
            r.target_table,
            r.expectation,
            r.failed_records,
            r.passed_records,
            f"{100 * (r.pass_rate or 0):.2f}%",
        ]
        for r in exp_rows
        if last_by_table.get(r.target_table) == r.update_id and r.failed_records > 0
    ]
    failing.sort(key=lambda x: -x[2])
    sections.append(
        "<h2>Failing rules (last update of each table)</h2>"
        + _table(["table", "rule", "failed", "passed", "pass rate"], failing, "failing")
    )

    failed = [
        [r.update_ended, r.pipeline_name, r.target_table, r.update_id[:8], (r.error_message or "")[:300]]
        for r in audit_rows
        if r.status == "FAILED"
    ]
    sections.append(
        "<h2>Failed updates</h2>"
        + _table(["ended", "pipeline", "table", "update", "error"], failed, "failed")
    )

    latest = {r.target_table: r for r in audit_rows}
    recon = [
        [t, r.update_id[:8], r.reconciliation_status or "not reconciled", r.reconciled_source_rows,
         r.reconciled_bronze_rows, r.rows_quarantined, r.reconciled_missing, r.reconciled_extra]
        for t, r in sorted(latest.items())
    ]  # fmt: skip
    sections.append(
        "<h2>Latest figures and reconciliation per table</h2>"
        + _table(
            ["table", "update", "reconciliation", "source", "bronze", "quarantined", "missing", "extra"],
            recon,
        )
    )
    changes = location.read(spark, SCHEMA_CHANGES)
    changed = [
        [
            r.changed_at,
            r.target_table,
            r.update_id[:8],
            r.change.replace("columns_", ""),
            ", ".join(r.columns or []),
        ]
        for r in (changes.orderBy("changed_at", "change").collect() if changes is not None else [])
    ]
    sections.append(
        "<h2>Source schema changes bronze followed</h2>"
        + _table(["when", "table", "update", "change", "columns"], changed, "changes")
    )
    sections.append("<h2>Pipeline graph (last update, rows written)</h2>" + "".join(_graphs(spark, storage)))
    return PAGE.replace("%BODY%", "\n".join(sections))


def write_report(spark: Any, storage: Path, out: Path, targets: Mapping[str, str] | None = None) -> Path:
    """The page at `out`; with `targets` (audit.store.default_targets), the audit is derived first."""
    if targets is not None:
        audit_local(spark, storage, targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(spark, storage))
    return out


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Bronze quality report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666}.grid{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
.chart .grid{stroke:#eee}.tick{font-size:10px;fill:#666}
.legend{font-size:11px;max-width:640px}.key{margin-right:10px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:middle}
table{border-collapse:collapse;background:#fff;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}
th{background:#f0f0f0;text-align:left}td.none{color:#888;font-style:italic}
.node rect{fill:#e8f1fb;stroke:#1f77b4}.node.view rect{fill:#f4f4f4;stroke:#999;stroke-dasharray:4 2}
.node.quarantine rect{fill:#fdecea;stroke:#d62728}.node .name{font-size:11px;font-weight:600}
.node .rows{font-size:10px;fill:#555}
#js-status{color:#666;font-size:12px;margin-top:24px}
</style>
<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
</script>
</head><body>
%BODY%
<p id="js-status" data-charts="" data-errors="">rendering</p>
<script>
(function () {
  var charts = document.querySelectorAll("svg.chart");
  var marks = document.querySelectorAll("svg.chart circle, svg.chart rect, svg.chart .node");
  var status = document.getElementById("js-status");
  document.querySelectorAll("svg.chart circle.point").forEach(function (c) {
    c.addEventListener("mouseenter", function () { c.setAttribute("r", "5"); });
    c.addEventListener("mouseleave", function () { c.setAttribute("r", "3.5"); });
  });
  status.dataset.charts = String(charts.length);
  status.dataset.marks = String(marks.length);
  status.dataset.errors = String(window.__errors.length);
  status.textContent = "rendered " + charts.length + " charts, " + marks.length + " marks; "
    + window.__errors.length + " script errors";
})();
</script>
</body></html>
"""
