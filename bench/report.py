"""Rendering the results: the table and the targets on stdout, the JSON and its Markdown copy."""

from __future__ import annotations

import datetime
import json
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.clients import AGENT, CEILINGS, COPY_CLIENTS, DESCRIPTIONS
from bench.options import RECOMMENDED_RUNS, Options
from bench.results import check_targets, document, render_markdown, render_table, summarize
from bench.sizes import format_size

if TYPE_CHECKING:
    from bench.measure import Measured


def report(
    options: Options, measured: Measured, machine: dict[str, Any], started: datetime.datetime
) -> int:
    """Print the table and targets, write the JSON and Markdown; 3 if --check-targets fails."""
    summaries = summarize(
        measured.runs, size=options.size, clients=options.clients, baseline=options.baseline
    )
    targets = check_targets(summaries, agent=AGENT, copy_clients=COPY_CLIENTS, ceilings=CEILINGS)
    notes = _notes(options, machine)
    meta = {
        "created": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *options.argv]),
        "size_bytes": options.size,
        "runs_per_client": options.runs,
        "baseline": options.baseline,
        "order": "round-robin, rotated one client per round",
        "machine": machine,
        "notes": notes,
    }
    extra = {
        "clients": {
            name: {
                "description": DESCRIPTIONS[name],
                "argv": list(client.argv),
                "settings": client.settings,
            }
            for name, client in measured.clients.items()
        },
        "verification": measured.verification,
        "boto3_grid": measured.grid,
        "agent_report": measured.agent_report,
        "agent_profile": measured.agent_profile,
    }
    result = document(
        meta=meta, summaries=summaries, runs=measured.runs, targets=targets, extra=extra
    )
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    markdown = options.output.with_suffix(".md")
    markdown.write_text(_markdown_report(result, summaries, options))
    print(
        f"\n{format_size(options.size)}, {options.runs} runs per client, round-robin; "
        f"ratios to {options.baseline or '-'} (above 1: slower)"
    )
    print(render_table(summaries, options.baseline))
    for target in targets:
        print(
            f"{'MET    ' if target['met'] else 'NOT MET'} {target['target']}: {target['measured']}"
        )
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {options.output} and {markdown}")
    if options.check_targets and not all(t["met"] for t in targets):
        return 3
    return 0


def _notes(options: Options, machine: dict[str, Any]) -> list[str]:
    notes = []
    if options.runs < RECOMMENDED_RUNS:
        notes.append(f"{options.runs} runs per client (< {RECOMMENDED_RUNS}): provisional")
    cpus = machine.get("cpus") or 1
    load = max(machine["loadavg_start"][0], machine["loadavg_end"][0])
    if load > 0.5 * cpus:
        notes.append(
            f"the machine was busy (load average up to {load:.1f} on {cpus} CPUs): "
            "figures are provisional, rerun on a quiet machine"
        )
    return notes


def _markdown_report(result: dict[str, Any], summaries: Sequence[Any], options: Options) -> str:
    machine = result["machine"]
    lines = [
        f"Measured {result['created']} with `{result['command']}`: "
        f"{format_size(options.size)}, {options.runs} runs per client, round-robin.",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}; load average {machine['loadavg_start'][0]:.1f} at start, "
        f"{machine['loadavg_end'][0]:.1f} at end.",
        "",
        render_markdown(summaries, options.baseline),
        "",
    ]
    lines += [
        f"- {'met' if t['met'] else 'NOT met'}: {t['target']} ({t['measured']})"
        for t in result["targets"]
    ]
    if result["boto3_grid"]:
        best = min(result["boto3_grid"], key=lambda p: p["wall_s"])
        lines.append(
            f"- boto3 grid best: {format_size(best['multipart_chunksize'])} parts x "
            f"{best['max_concurrency']} threads "
            f"(median {best['wall_s']:.3f} s of {best['runs']} run(s))"
        )
    lines += [f"- note: {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"
