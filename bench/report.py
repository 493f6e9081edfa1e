"""bench/results/<timestamp>.json and .md: every row's arms (median, min–max over the
rounds), ratios with their goals, checks and notes, plus where a create-payment request's
time goes. Absolute numbers are this machine's at that time; the ratios are the point."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.stats import RowResult, Spread

# Metrics shown in the markdown tables, per row kind, in this order (all are in the JSON).
SHOWN = ["rps", "p50_ms", "p99_ms", "ms_per_op", "api_p50_ms", "seconds", "schedule_seconds", "ms_per_subscription",
         "us_per_event", "paid", "deliveries", "non_2xx", "peak_rss_mib", "items"]


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _spread(spread: Spread | dict) -> str:
    s = spread if isinstance(spread, dict) else spread.__dict__
    return f"{_num(s['median'])} ({_num(s['min'])}–{_num(s['max'])})"


def summary_table(rows: list[dict]) -> list[str]:
    lines = ["| # | Row | Ratio | Value (per-round min–max) | Goal | Met |", "|---|---|---|---|---|---|"]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['id']} | {row['title']} | **failed**: {row['error'][:120]} | | | |")
            continue
        for ratio in row["ratios"]:
            met = "–" if ratio["met"] is None else ("yes" if ratio["met"] else "**no**")
            unit = ratio.get("unit", "×")
            lines.append(f"| {row['id']} | {row['title']} | {ratio['label']} | {_num(ratio['value'])}{unit} "
                         f"({_num(ratio['per_round']['min'])}–{_num(ratio['per_round']['max'])}) | {ratio['goal'] or 'reported'} | {met} |")
    return lines


def row_section(row: dict) -> list[str]:
    lines = [f"### {row['id']}. {row['title']}", ""]
    if row.get("error"):
        return lines + [f"Failed: `{row['error']}`", ""]
    lines += [f"- candidate: {row['candidate']}", f"- baseline: {row['baseline']}",
              f"- rounds: {row['rounds']} (interleaved), {row['seconds']:.0f} s; sizes: "
              + ", ".join(f"{k}={_num(v) if isinstance(v, (int, float)) else v}" for k, v in row["sizes"].items()), ""]
    metrics = [m for m in SHOWN if any(m in arm for arm in row["arms"].values())]
    lines += ["| arm | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for arm, values in row["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(_spread(values[m]) if m in values else "" for m in metrics) + " |")
    lines.append("")
    if row.get("checks"):
        lines += ["Checks: " + ", ".join(f"{k} = {v}" for k, v in row["checks"].items()), ""]
    lines += [f"- {note}" for note in row.get("notes", [])]
    return lines + [""]


def profile_section(profile: dict | None) -> list[str]:
    if not profile:
        return []
    create, replay, bare = profile["create_payment"], profile.get("replay") or {}, profile["bare"]
    lines = ["## Where a create-payment request's time goes (in-process, one request at a time)", "",
             "| | create payment | replay | bare |", "|---|---|---|---|"]
    for key, label in [("ms_per_request_in_process", "ms per request"), ("cpu_ms_per_request", "CPU ms per request"),
                       ("sql_statements", "SQL statements (with BEGIN/COMMIT)"),
                       ("transactions", "database transactions"), ("commits_of_atomic_blocks", "commits of atomic blocks"),
                       ("autocommit_statements", "autocommit statements"), ("redis_commands", "Redis commands"),
                       ("redis_round_trips", "Redis round trips (a pipeline is one)")]:
        values = [item.get(key, float("nan")) for item in (create, replay, bare)]
        lines.append(f"| {label} | " + " | ".join(_num(value) for value in values) + " |")
    lines += ["", "Statements per create request: " + ", ".join(f"{k} {_num(v)}" for k, v in create["statements_by_kind"].items()),
              "", "Redis commands per create request: " + ", ".join(f"{k} {_num(v)}" for k, v in create["redis_by_command"].items()),
              "", "Statements per replayed request: " + ", ".join(f"{k} {_num(v)}" for k, v in replay.get("statements_by_kind", {}).items()),
              "", f"Profile: {profile['profile']}", ""]
    for key, label in [("rebill_job", "Per rebill job (rebill_job_run)"), ("outbox_relay_per_event", "Per outbox event relayed")]:
        item = profile.get(key)
        if item:
            lines += [f"{label}: {_num(item['ms_per_request_in_process'])} ms in process, {_num(item['sql_statements'])} SQL "
                      f"statements, {_num(item['transactions'])} transactions, {_num(item['redis_commands'])} Redis commands; "
                      + ", ".join(f"{k} {_num(v)}" for k, v in item["statements_by_kind"].items()), ""]
    return lines


def write(*, out_dir: Path, stamp: str, meta: dict, rows: list[RowResult | dict], profile: dict | None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    row_dicts = [row.as_dict() if isinstance(row, RowResult) else row for row in rows]
    document = {**meta, "rows": row_dicts, "create_payment_profile": profile}
    json_path = out_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(document, indent=2, default=str))
    lines = [f"# FlowPay benchmark {stamp} ({meta['mode']})", "",
             f"`{meta['command']}` at commit `{meta['commit']}`; {meta['machine']}; {meta['seconds']:.0f} s.", "",
             "Ratios come from the medians of interleaved rounds (candidate and baseline in the same run). "
             "Absolute numbers are this machine's at that time; goals are reported, not asserted.", ""]
    lines += summary_table(row_dicts) + [""]
    lines += [f"- {note}" for note in meta.get("notes", [])] + [""]
    lines += ["## Rows", ""]
    for row in row_dicts:
        lines += row_section(row)
    lines += profile_section(profile)
    md_path = out_dir / f"{stamp}.md"
    md_path.write_text("\n".join(lines))
    return json_path, md_path
