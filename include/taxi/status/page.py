"""The "Taxi months" page as one self-contained HTML document (inline CSS and SVG).

No JavaScript library is downloaded (the api-server may have no internet, and a page that
draws itself on the server works in the Airflow UI's iframe and in a plain browser alike).
Every value from a log is escaped.

Run links must leave the iframe the UI shows the page in, but the UI sandboxes it without
``allow-top-navigation`` (Airflow 3.3: ``allow-scripts allow-same-origin allow-forms
allow-downloads``), so ``target="_top"`` is blocked. The one script here hands the link to the
UI's own router instead (same origin: ``history.pushState`` on the parent plus a ``popstate``
event, which is how a client-side router learns of a navigation); opened on its own, the page
follows links normally.
"""

from __future__ import annotations

import shlex
from html import escape
from urllib.parse import quote

from include.taxi.load_record import FAILED
from include.taxi.status.grid import (
    NOT_PUBLISHED,
    STATE_HELP,
    STATES,
    Cell,
    MonthsView,
    ServiceView,
)

TARGET_LABELS = {"postgres": "Postgres", "lake": "Lake", "bigquery": "BigQuery", "models": "Models"}
STATE_LABELS = {
    "loaded": "loaded",
    "unchanged": "unchanged",
    "stale": "stale at the source",
    "failed": "failed",
    "missing": "missing (published)",
    "not_published": "not published",
}
COLOURS = {
    "loaded": "#c8e6c9",
    "unchanged": "#b2dfdb",
    "stale": "#ffe082",
    "failed": "#ef9a9a",
    "missing": "#ffccbc",
    "not_published": "#eeeeee",
}
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 160, 44

CSS = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 24px 0 6px; }
.meta { color: #666; font-size: 0.85em; }
.legend span { display: inline-block; padding: 2px 8px; margin: 2px 4px 2px 0;
  border-radius: 4px; font-size: 0.85em; }
table.grid { border-collapse: collapse; font-size: 0.9em; }
table.grid th, table.grid td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.grid th { background: #f5f5f5; }
table.grid td.month { text-align: left; font-family: monospace; }
td.cell a { color: inherit; text-decoration: none; display: block; }
td.cell a:hover { text-decoration: underline; }
.state { font-size: 0.75em; color: #333; } .count { font-weight: 600; }
.warn { color: #b26a00; font-weight: 700; }
.problems { background: #fff3e0; border: 1px solid #ffb74d; padding: 6px 10px; }
ul.warnings { font-size: 0.9em; } ul.warnings code { font-size: 0.95em; }
.service { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
"""


SCRIPT = """
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-run]");
  if (!link || window.parent === window) return;
  try {
    const ui = window.parent;
    ui.history.pushState({}, "", link.href);
    ui.dispatchEvent(new ui.PopStateEvent("popstate", {state: {}}));
    event.preventDefault();
  } catch (e) { /* another origin: let the browser try target=_top */ }
});
"""


def _run_link(base_url: str, cell: Cell) -> str | None:
    if not cell.run_id or not cell.dag_id:
        return None
    return (
        f"{base_url.rstrip('/')}/dags/{quote(cell.dag_id, safe='')}/runs/"
        f"{quote(cell.run_id, safe='')}"
    )


def clear_command(month: str, cell: Cell) -> str | None:
    """The command that reruns a failed month's failed tasks, exactly: by partition key when
    the failed run is the month's partition (a scheduled or backfill run: its id carries the
    key), else by run id (a manual or taxi_daily run has no key). ``--only-failed``: a month
    reprocessed by a backfill has several runs with its key, and only the failures should
    run again."""
    if cell.state != FAILED or not cell.run_id or not cell.dag_id:
        return None
    if f"__{month}__" in cell.run_id:
        selector = f"--partition-key {month}"
    else:
        selector = f"--run-id {shlex.quote(cell.run_id)}"
    return f"airflow dags clear {cell.dag_id} {selector} --only-failed --yes"


def _cell(base_url: str, target: str, month: str, cell: Cell) -> str:
    count = f"{cell.rows:,}" if cell.rows is not None else ""
    warn = f' <span class="warn">⚠ {len(cell.warnings)}</span>' if cell.warnings else ""
    command = clear_command(month, cell)
    title = " · ".join(
        [cell.detail, *(f"{w.rule}: {w.message}" for w in cell.warnings)]
        + ([f"run {cell.run_id}"] if cell.run_id else [])
        + ([f"rerun: {command}"] if command else [])
    )
    inner = (
        f'<span class="count">{escape(count)}</span>{warn}<br>'
        f'<span class="state">{escape(STATE_LABELS[cell.state])}</span>'
    )
    link = _run_link(base_url, cell)
    if link:
        inner = f'<a href="{escape(link)}" target="_top" data-run>{inner}</a>'
    return (
        f'<td class="cell" data-target="{target}" data-month="{month}" '
        f'data-state="{cell.state}" style="background:{COLOURS[cell.state]}" '
        f'title="{escape(title)}">{inner}</td>'
    )


def chart(view: ServiceView) -> str:
    """Rows per month as an inline SVG bar chart (one bar per month of the grid)."""
    months = view.months
    values = [m.rows or 0 for m in months]
    top = max(values, default=0) or 1
    inner_w, inner_h = CHART_WIDTH - CHART_PAD - 8, CHART_HEIGHT - 36
    step = inner_w / max(len(months), 1)
    label_every = max(1, len(months) // 12)
    parts = [
        f'<svg class="chart" role="img" aria-label="{view.service} rows per month" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} '
        f'{CHART_HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="10">',
        f'<text x="{CHART_PAD - 4}" y="12" text-anchor="end">{top:,}</text>',
        f'<text x="{CHART_PAD - 4}" y="{inner_h + 10}" text-anchor="end">0</text>',
        f'<line x1="{CHART_PAD}" y1="{inner_h + 8}" x2="{CHART_WIDTH - 8}" '
        f'y2="{inner_h + 8}" stroke="#999"/>',
    ]
    for i, (row, value) in enumerate(zip(months, values, strict=True)):
        x = CHART_PAD + i * step
        height = inner_h * value / top
        if value:
            parts.append(
                f'<rect x="{x + step * 0.1:.1f}" y="{inner_h + 8 - height:.1f}" '
                f'width="{step * 0.8:.1f}" height="{height:.1f}" fill="#5c8fd6">'
                f"<title>{row.month}: {value:,} rows</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{inner_h + 22}" text-anchor="middle">'
                f"{row.month}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _service(base_url: str, targets: list[str], view: ServiceView) -> str:
    head = "".join(f"<th>{TARGET_LABELS[t]}</th>" for t in targets)
    body = []
    warnings = []
    failed = []
    for row in view.months:
        cells = "".join(_cell(base_url, t, row.month, row.cells[t]) for t in targets)
        body.append(f'<tr><td class="month">{row.month}</td>{cells}</tr>')
        for target in targets:
            if command := clear_command(row.month, row.cells[target]):
                failed.append(
                    f"<li><code>{row.month}</code> {TARGET_LABELS[target]}: "
                    f'<code class="clear">{escape(command)}</code></li>'
                )
            for w in row.cells[target].warnings:
                warnings.append(
                    f"<li><code>{row.month}</code> {TARGET_LABELS[target]}: "
                    f"<b>{escape(w.rule)}</b> ({escape(w.level)}) {escape(w.message)}</li>"
                )
    listed = (
        f'<h3>Quality warnings</h3><ul class="warnings">{"".join(warnings)}</ul>'
        if warnings
        else '<p class="meta">No quality warnings.</p>'
    )
    if failed:
        listed += f'<h3>Failed months: rerun with</h3><ul class="failed">{"".join(failed)}</ul>'

    return (
        f'<section id="{view.service}"><h2>{view.service}</h2><div class="service">'
        f'<table class="grid"><thead><tr><th>month</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f"<div>{chart(view)}{listed}</div></div></section>"
    )


def render(view: MonthsView, *, base_url: str) -> str:
    """The whole page. ``base_url`` is Airflow's (api.base_url), for the run links."""
    legend = "".join(
        f'<span style="background:{COLOURS[s]}" title="{escape(STATE_HELP[s])}">'
        f"{STATE_LABELS[s]}</span>"
        for s in STATES
    )
    problems = "".join(
        f"<li>{TARGET_LABELS[t]}: {escape(p)}</li>" for t, p in view.problems.items()
    )
    rejected = "".join(
        f'<li data-target="{r.target}">{TARGET_LABELS[r.target]}: <code>{escape(r.where)}</code>'
        + (f" (month <code>{escape(r.value)}</code>)" if r.value else "")
        + f": {escape(r.reason)}</li>"
        for r in view.rejected
    )
    if view.rejected_total > len(view.rejected):
        rejected += f"<li>and {view.rejected_total - len(view.rejected):,} more</li>"
    sections = "".join(_service(base_url, view.targets, s) for s in view.services)
    if not view.services:
        sections = (
            "<p>No month is in any log yet. Load one (e.g. <code>make month SERVICE=green "
            "MONTH=2021-01</code>, or trigger <code>taxi_to_postgres</code>) and reload.</p>"
        )
    shown = ", ".join(TARGET_LABELS[t] for t in view.targets) or "none configured"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Taxi months</title><style>{CSS}</style></head><body>"
        "<h1>Taxi months</h1>"
        f'<p class="meta">Read from the ingestion logs of: {shown} (never the trip tables), '
        f'at {escape(view.generated_at)}. <a href="api/months">JSON</a>. '
        f"Each cell links to the Airflow run that wrote it; hover for details. A month counts as "
        f"{STATE_LABELS[NOT_PUBLISHED]!r} when no log has seen its file.</p>"
        f'<div class="legend">{legend}</div>'
        + (f'<ul class="problems">{problems}</ul>' if problems else "")
        + (
            '<div class="problems rejected"><b>Left off the grid</b> (what they say about '
            "themselves cannot be read; fix or remove them, the rest is shown):"
            f"<ul>{rejected}</ul></div>"
            if rejected
            else ""
        )
        + sections
        + f"<script>{SCRIPT}</script></body></html>"
    )
