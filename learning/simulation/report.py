"""The simulation report: Markdown with PNG plots (matplotlib, Agg backend; pure, no Django).

Input is one plain dict (``results``): the scale, the frozen generator parameters, the people,
and per campaign (strategy x seed) its rounds. Output: ``report.md``, ``results.json`` and the
plots in one directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from learning.simulation.metrics import area_to_reach, spearman

METHOD_LABELS = {
    "majority_vote": "majority vote",
    "staple": "STAPLE",
    "weighted_vote": "reliability-weighted",
    "final": "platform answer",
}
KIND_COLOURS = {"careful": "tab:green", "careless": "tab:orange", "adversarial": "tab:red"}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_consensus(campaign: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rounds = campaign["rounds"]
    methods = [m for m in METHOD_LABELS if any(m in r.get("dice", {}) for r in rounds)]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(rounds))
    for i, method in enumerate(methods):
        values = [r.get("dice", {}).get(method, np.nan) for r in rounds]
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=METHOD_LABELS[method])
    ax.plot(x, [r.get("median_student", np.nan) for r in rounds], "k--o", label="median student")
    ax.plot(x, [r.get("best_student", np.nan) for r in rounds], "k:^", label="best student")
    ax.set_xticks(x, [f"round {r['round']}" for r in rounds])
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice vs ground truth (mean over classes)")
    ax.set_title(f"Consensus quality ({campaign['strategy']}, seed {campaign['seed']})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(campaign: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for kind, colour in KIND_COLOURS.items():
        pts = [
            (s["true_reliability"], s["estimated"])
            for s in campaign["students"].values()
            if s["kind"] == kind
        ]
        if pts:
            ax.scatter(*zip(*pts, strict=True), c=colour, label=kind, s=40)
    ax.set_xlabel("true reliability ((sens + spec) / 2 vs ground truth)")
    ax.set_ylabel("estimated reliability ((sens + spec) / 2)")
    ax.set_title(f"Reliability, Spearman {_fmt(campaign.get('spearman'), 2)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_learning(campaigns: list[dict[str, Any]], path: Path) -> bool:
    series = [c for c in campaigns if any(p.get("model_dice") is not None for p in c["curve"])]
    if not series:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for c in series:
        pts = [
            (p["area_mm2"], p["model_dice"]) for p in c["curve"] if p.get("model_dice") is not None
        ]
        ax.plot(*zip(*pts, strict=True), "-o", label=f"{c['strategy']} (seed {c['seed']})")
    ax.set_xlabel("labelled area (mm²)")
    ax.set_ylabel("model Dice on held-out ground truth")
    ax.set_title("Model quality against labelling effort")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_stages(campaign: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rounds = campaign["rounds"]
    stages: list[str] = []
    for r in rounds:
        for name in r.get("all_stage_seconds", {}):
            if name not in stages:
                stages.append(name)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    bottom = np.zeros(len(rounds))
    for name in stages:
        values = np.array([float(r["all_stage_seconds"].get(name, 0.0)) for r in rounds])
        ax.bar([f"round {r['round']}" for r in rounds], values, bottom=bottom, label=name)
        bottom += values
    ax.set_ylabel("wall time (s)")
    ax.set_title("Wall time per stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def headline(campaigns: list[dict[str, Any]]) -> dict[str, Any]:
    """The README figures: consensus vs single student, rank correlation, area share."""
    first = campaigns[0]
    last_rounds = [c["rounds"][-1] for c in campaigns if c["rounds"]]
    pooled = first.get("pooled", {})
    share = None
    random_runs = [c for c in campaigns if c["strategy"] == "random" and c["curve"]]
    others = [c for c in campaigns if c["strategy"] != "random" and c["curve"]]
    if random_runs and others:
        target = np.nanmean([c["curve"][-1].get("model_dice") or np.nan for c in random_runs])
        final_area = np.nanmean([c["curve"][-1]["area_mm2"] for c in random_runs])
        needs = []
        for c in others:
            area = area_to_reach(
                [p["area_mm2"] for p in c["curve"]],
                [
                    p.get("model_dice") if p.get("model_dice") is not None else np.nan
                    for p in c["curve"]
                ],
                float(target),
            )
            if area is not None and final_area > 0:
                needs.append((c["strategy"], area / final_area))
        if needs and np.isfinite(target):
            share = min(needs, key=lambda t: t[1])
    return {
        "consensus_dice": pooled.get("final"),
        "majority_vote_dice": pooled.get("majority_vote"),
        "staple_dice": pooled.get("staple"),
        "weighted_dice": pooled.get("weighted_vote"),
        "median_student_dice": pooled.get("median_student"),
        "best_student_dice": pooled.get("best_student"),
        "spearman": float(np.nanmean([c.get("spearman", np.nan) for c in campaigns])),
        "area_share": share,
        "rounds_completed": min(len(r) for r in [c["rounds"] for c in campaigns])
        if last_rounds
        else 0,
    }


def write_report(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    campaigns = results["campaigns"]
    for c in campaigns:
        true = [s["true_reliability"] for s in c["students"].values()]
        est = [s["estimated"] for s in c["students"].values()]
        c["spearman"] = spearman(est, true)
    plots: list[tuple[str, str]] = []
    for c in campaigns:
        tag = f"{c['strategy']}-seed{c['seed']}"
        plot_consensus(c, out / f"consensus-{tag}.png")
        plot_reliability(c, out / f"reliability-{tag}.png")
        plot_stages(c, out / f"stages-{tag}.png")
        plots += [
            (f"Consensus quality, {tag}", f"consensus-{tag}.png"),
            (f"Estimated vs true reliability, {tag}", f"reliability-{tag}.png"),
            (f"Wall time per stage, {tag}", f"stages-{tag}.png"),
        ]
    if plot_learning(campaigns, out / "learning.png"):
        plots.insert(0, ("Model Dice vs labelled area, per strategy", "learning.png"))
    head = headline(campaigns)
    results["headline"] = head
    lines = [
        f"# Campaign simulation ({results['scale']['name']})",
        "",
        f"Run {results['started_at']} to {results['finished_at']} on {results['machine']}.",
        f"Command: `{results['command']}`",
        "",
        "## Frozen set-up (recorded before any strategy is compared)",
        "",
        "Generator parameters of each slide (same for every strategy of a seed):",
        "",
        "```json",
        json.dumps(results["generator"], indent=1),
        "```",
        "",
        "Scale: `"
        + json.dumps({k: v for k, v in results["scale"].items() if k != "learning_env"})
        + "`",
        "",
        "Worker training settings: `" + json.dumps(results["scale"]["learning_env"]) + "`",
        "",
        "## Headline",
        "",
        f"- Consensus Dice (platform answer, pooled over all rounds of the first campaign): "
        f"{_fmt(head['consensus_dice'])}; majority vote {_fmt(head['majority_vote_dice'])}, "
        f"STAPLE {_fmt(head['staple_dice'])}, reliability-weighted {_fmt(head['weighted_dice'])}; "
        f"median single student {_fmt(head['median_student_dice'])}, best single student "
        f"{_fmt(head['best_student_dice'])}.",
        f"- Estimated vs true annotator reliability, Spearman rank correlation: "
        f"{_fmt(head['spearman'], 2)} (mean over campaigns).",
    ]
    if head["area_share"] is not None:
        lines.append(
            f"- Share of random's final labelled area that `{head['area_share'][0]}` needs to "
            f"reach random's final model Dice: {head['area_share'][1] * 100:.0f} %."
        )
    else:
        lines.append(
            "- Share of labelled area the best strategy needs to reach random's final Dice: "
            "not available (needs model versions of random and another strategy)."
        )
    for c in campaigns:
        lines += _campaign_section(c)
    lines += ["", "## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({name})\n" for title, name in plots]
    notes = [n for c in campaigns for n in c.get("notes", [])]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    lines += ["", "## Method", "", results["method"]]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return out / "report.md"


def _campaign_section(c: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## Campaign: strategy `{c['strategy']}`, seed {c['seed']} (project {c['project_id']})",
        "",
        "| round | regions | labelled regions (area mm²) | majority vote | STAPLE | weighted | "
        "platform | median student | best student | expert decisions | model Dice |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in c["rounds"]:
        d = r.get("dice", {})
        lines.append(
            f"| {r['round']} | {r.get('regions')} | {r.get('labelled_regions')} "
            f"({_fmt(r.get('labelled_area_mm2'), 4)}) | {_fmt(d.get('majority_vote'))} | "
            f"{_fmt(d.get('staple'))} | {_fmt(d.get('weighted_vote'))} | {_fmt(d.get('final'))} | "
            f"{_fmt(r.get('median_student'))} | {_fmt(r.get('best_student'))} | "
            f"{r.get('adjudicated', 0)} | {_fmt(r.get('model_dice'))} |"
        )
    lines += ["", "Wall time per stage (s):", "", "| round | " + " | ".join(_stages(c)) + " |"]
    lines.append("| --- " * (len(_stages(c)) + 1) + "|")
    for r in c["rounds"]:
        s = r.get("all_stage_seconds", {})
        lines.append(
            f"| {r['round']} | " + " | ".join(_fmt(s.get(n), 1) for n in _stages(c)) + " |"
        )
    lines += [
        "",
        f"Annotators (Spearman of estimated vs true: {_fmt(c.get('spearman'), 2)}):",
        "",
        "| student | kind | true Dice | true reliability | estimated reliability |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in c["students"].items():
        lines.append(
            f"| {name} | {s['kind']} | {_fmt(s['true_dice'])} | {_fmt(s['true_reliability'])} "
            f"| {_fmt(s['estimated'])} |"
        )
    return lines


def _stages(c: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for r in c["rounds"]:
        for n in r.get("all_stage_seconds", {}):
            if n not in names:
                names.append(n)
    return names
