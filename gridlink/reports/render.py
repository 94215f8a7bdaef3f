"""A stored report as CSV (one row per event interval and baseline) and as an HTML page with a
plot of power against each baseline and the requested limit, rendered server-side (inline SVG)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from html import escape
from typing import Any

from gridlink.models.report import Report
from gridlink.reports.inputs import BASELINES

CSV_COLUMNS = (
    "subject",
    "version",
    "content_hash",
    "interval_start_utc",
    "interval_start_local",
    "interval_s",
    "baseline",
    "baseline_kw",
    "measured_kw",
    "delivered_kw",
    "requested_kind",
    "requested_value",
    "requested_fraction",
    "requested_limit_kw",
    "compliant",
    "complete",
    "nodes_reporting",
    "nodes_missing",
    "nodes_partial",
)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_csv(report: Report) -> str:
    body = report.body
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in body["intervals"]:
        if row["phase"] != "event":
            continue
        req = row["requested"] or {}
        for name in BASELINES:
            values = (
                report.subject,
                report.version,
                report.content_hash,
                row["start"],
                row["start_local"],
                body["window"]["interval_s"],
                name,
                row["baseline_kw"][name],
                row["measured_kw"],
                row["delivered_kw"][name],
                req.get("kind"),
                req.get("value"),
                req.get("fraction"),
                row["requested_limit_kw"][name],
                row["compliant"][name],
                row["complete"],
                row["nodes_reporting"],
                row["nodes_missing"],
                row["nodes_partial"],
            )
            writer.writerow([_cell(v) for v in values])
    return out.getvalue()


def plot_svg(body: dict[str, Any]) -> str:
    """Measured facility power, each baseline and the requested limit over the report, as SVG."""
    from matplotlib.figure import Figure  # heavy: only when a page is rendered

    rows = body["intervals"]
    if not rows:
        return ""
    starts = [datetime.fromisoformat(r["start_local"]) for r in rows]
    step = body["window"]["interval_s"]
    figure = Figure(figsize=(9, 4), dpi=100)
    axes = figure.add_subplot()

    end = starts[-1] + timedelta(seconds=step)

    def draw(values: list[float | None], label: str, **style: Any) -> None:
        # Each value holds over its interval: repeat the last one at the end of its interval.
        points = [(x, v) for x, v in zip([*starts, end], [*values, values[-1]], strict=True)]
        xs = [x for x, v in points if v is not None]
        ys = [v for _, v in points if v is not None]
        if xs:
            axes.step(xs, ys, where="post", label=label, **style)  # type: ignore[arg-type]

    draw([r["measured_kw"] for r in rows], "measured", color="black", linewidth=2)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    for name, colour in zip(BASELINES, colours, strict=True):
        values = [r["baseline_kw"].get(name) for r in rows]
        draw(values, f"baseline: {name}", linestyle="--", color=colour)
    limit_source = (
        "model" if any(r["requested_limit_kw"].get("model") for r in rows) else ("contracted")
    )
    draw(
        [r["requested_limit_kw"].get(limit_source) for r in rows],
        "requested limit",
        color="red",
        linewidth=1.5,
    )
    axes.set_ylabel("facility power (kW)")
    axes.set_xlabel(f"local time ({body['window']['timezone']}), {step // 60}-min intervals")
    axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(_cell(v)))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: Report) -> str:
    body = report.body
    totals = body["totals"]
    summary = _table(
        ["baseline", "delivered kWh", "baseline kWh", "compliance share", "intervals judged"],
        [
            [
                name,
                totals["delivered_kwh"][name],
                totals["baseline_kwh"][name],
                totals["compliance_share"][name],
                totals["intervals_judged"][name],
            ]
            for name in BASELINES
        ],
    )
    intervals = _table(
        ["start (local)", "measured kW", "requested", *BASELINES, "complete", "missing/partial"],
        [
            [
                r["start_local"],
                r["measured_kw"],
                "" if not r["requested"] else f"{r['requested']['kind']} {r['requested']['value']}",
                *[r["delivered_kw"].get(n) for n in BASELINES],
                r["complete"],
                f"{r['nodes_missing']}/{r['nodes_partial']}",
            ]
            for r in body["intervals"]
            if r["phase"] == "event"
        ],
    )
    nodes = _table(
        ["node", "measured kWh", "delivered kWh (model)", "delivered kWh (pre-event)", "coverage"],
        [
            [
                n["name"],
                n["measured_kwh"],
                n["delivered_kwh_model"],
                n["delivered_kwh_pre_event"],
                n["coverage"],
            ]
            for n in body["nodes"]
        ],
    )
    service = _table(
        ["phase", "tokens served", "tokens demanded", "served share", "QoS-violated windows"],
        [
            [
                p,
                c["tokens_served"],
                c["tokens_demanded"],
                c["served_share"],
                c["qos_violated_windows"],
            ]
            for p, c in body["service"].items()
        ],
    )
    window = body["window"]
    title = f"Delivered-reduction report {report.id}: {body['subject']} (version {report.version})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>
<h1>{escape(title)}</h1>
<p>Window {escape(window["start_local"])} to {escape(window["end_local"])}
({escape(window["timezone"])}), {window["interval_s"]} s intervals. Generated
{escape(report.generated_at.isoformat())} by {escape(report.generated_by)}
({escape(report.trigger)}); previous version: {report.previous_id or "none"}.</p>
<p>Content hash <code>{report.content_hash}</code>,
inputs hash <code>{report.inputs_hash}</code>.</p>
<h2>Delivered against each baseline</h2>{summary}
<figure>{plot_svg(body)}</figure>
<h2>Intervals (delivered kW per baseline)</h2>{intervals}
<h2>Per node</h2>{nodes}
<h2>Service cost</h2>{service}
<h2>Gaps</h2><p>{escape(body["gap_policy"])}</p>
<p>High X of Y: {escape(body["baselines"]["high_x_of_y"]["note"])}</p>
</body></html>
"""


def render(report: Report, fmt: str) -> str:
    """The report in ``json`` (the API's shape), ``csv`` or ``html``."""
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "json":
        from gridlink.reports.schemas import ReportOut

        return ReportOut.model_validate(report).model_dump_json(indent=2) + "\n"
    raise ValueError(f"format must be json, csv or html, got {fmt!r}")
