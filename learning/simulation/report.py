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
    ax.plot(
        x,
        [r.get("median_student", np.nan) for r in rounds],
        "k--o",
        label="median student (region)",
    )
    ax.plot(
        x, [r.get("best_student", np.nan) for r in rounds], "k:^", label="best student (region)"
    )
    ax.plot(
        x,
        [r.get("median_student_overall", np.nan) for r in rounds],
        "--s",
        color="grey",
        label="median student (over the round)",
    )
    ax.set_xticks(x, [f"round {r['round']}" for r in rounds])
    ax.set_ylim(0, 1)
    ax.set_ylabel("foreground Dice vs ground truth")
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
    stages = _stages(campaign)
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


def _mean(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(kept)) if kept else None


def area_shares(campaigns: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per strategy other than random: the labelled area at which its model first reaches
    random's final Dice, as a share of random's final labelled area (mean over seeds; None
    where it never got there)."""
    out: dict[str, float | None] = {}
    for seed in sorted({c["seed"] for c in campaigns}):
        same = [c for c in campaigns if c["seed"] == seed and c["curve"]]
        base = next((c for c in same if c["strategy"] == "random"), None)
        if base is None or base["curve"][-1].get("model_dice") is None:
            continue
        target = float(base["curve"][-1]["model_dice"])
        final_area = float(base["curve"][-1]["area_mm2"])
        for c in same:
            if c is base or final_area <= 0:
                continue
            scores = [
                p["model_dice"] if p.get("model_dice") is not None else np.nan for p in c["curve"]
            ]
            area = area_to_reach([p["area_mm2"] for p in c["curve"]], scores, target)
            out.setdefault(c["strategy"], [])
            out[c["strategy"]].append(None if area is None else area / final_area)
    return {
        k: (None if any(v is None for v in vs) else float(np.mean(vs))) for k, vs in out.items()
    }


def headline(campaigns: list[dict[str, Any]]) -> dict[str, Any]:
    """The README figures (means over campaigns): consensus vs single student, rank
    correlation, and the area share of the best strategy."""
    pooled = [c.get("pooled", {}) for c in campaigns]
    shares = area_shares(campaigns)
    reached = {k: v for k, v in shares.items() if v is not None}
    best = min(reached.items(), key=lambda kv: kv[1]) if reached else None
    return {
        "consensus_dice": _mean([p.get("final") for p in pooled]),
        "majority_vote_dice": _mean([p.get("majority_vote") for p in pooled]),
        "staple_dice": _mean([p.get("staple") for p in pooled]),
        "weighted_dice": _mean([p.get("weighted_vote") for p in pooled]),
        "median_student_dice": _mean([p.get("median_student") for p in pooled]),
        "best_student_dice": _mean([p.get("best_student") for p in pooled]),
        "median_student_overall_dice": _mean([p.get("median_student_overall") for p in pooled]),
        "best_student_overall_dice": _mean([p.get("best_student_overall") for p in pooled]),
        "spearman": _mean([c.get("spearman") for c in campaigns]),
        "area_shares": shares,
        "area_share": best,
        "rounds_completed": min((len(c["rounds"]) for c in campaigns), default=0),
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
        f"- Consensus Dice (platform answer, pooled over the rounds, mean over campaigns): "
        f"{_fmt(head['consensus_dice'])}; majority vote {_fmt(head['majority_vote_dice'])}, "
        f"STAPLE {_fmt(head['staple_dice'])}, reliability-weighted {_fmt(head['weighted_dice'])}; "
        f"single students of the same regions: median {_fmt(head['median_student_dice'])}, "
        f"best {_fmt(head['best_student_dice'])}; students over all their regions: median "
        f"{_fmt(head['median_student_overall_dice'])}, best "
        f"{_fmt(head['best_student_overall_dice'])}.",
        f"- Estimated vs true annotator reliability, Spearman rank correlation: "
        f"{_fmt(head['spearman'], 2)} (mean over campaigns).",
    ]
    if head["area_shares"]:
        parts = [
            f"`{k}` {v * 100:.0f} %" if v is not None else f"`{k}` did not reach it in every seed"
            for k, v in head["area_shares"].items()
        ]
        lines.append(
            "- Share of random's final labelled area each strategy needs to reach random's "
            "final model Dice on held-out ground truth (mean over seeds; goal: at most 60 %): "
            + ", ".join(parts)
            + "."
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
        "platform | median student (region) | best student (region) | median student (round) | "
        "expert decisions | model Dice |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in c["rounds"]:
        d = r.get("dice", {})
        lines.append(
            f"| {r['round']} | {r.get('regions')} | {r.get('labelled_regions')} "
            f"({_fmt(r.get('labelled_area_mm2'), 4)}) | {_fmt(d.get('majority_vote'))} | "
            f"{_fmt(d.get('staple'))} | {_fmt(d.get('weighted_vote'))} | {_fmt(d.get('final'))} | "
            f"{_fmt(r.get('median_student'))} | {_fmt(r.get('best_student'))} | "
            f"{_fmt(r.get('median_student_overall'))} | "
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


# The platform's "collecting" time is the people's work again (annotate, merge, adjudicate, as
# the simulator times them): stacking both would count it twice.
_OVERLAPPING = {"collecting"}


def _stages(c: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for r in c["rounds"]:
        for n in r.get("all_stage_seconds", {}):
            if n not in names and n not in _OVERLAPPING:
                names.append(n)
    return names
