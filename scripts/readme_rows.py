#!/usr/bin/env python3
"""Rewrite the README's sample-efficiency rows from the headline table (docs/results_summary.json).

The README quotes only the headline rows whose runs are all under docs/protocol.md: those runs were
made by the one control path the robot runs (`runtime/control.ControlLoop`). Pre-protocol rows,
recorded earlier by the agent's own planner loop, stay in docs/results.md with their flags.
tests/test_protocol.py checks that the README equals what this prints.

    .venv/bin/mbrl-ros agent report --results results --out docs
    .venv/bin/python scripts/readme_rows.py            # rewrites README.md's rows
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mbrl_ros.agent.report import crossing_text, protocol_text, ratio_text  # noqa: E402

NAMES = {"mbrl": "ours", "sac": "SAC", "ppo": "PPO", "sac_utd": "SAC at UTD 4", "ppo_zoo": "zoo-tuned PPO"}
ROW_PATTERN = re.compile(r"\| .*, env steps to -?[0-9.]+ \(first / sustained")


def under_protocol(item: dict) -> bool:
    """Every run of every method in the headline row is a reported run under the protocol."""
    return bool(item["methods"]) and all(state == "protocol" for row in item["methods"].values()
                                         for state in row["protocol"])


def _seed_text(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


def _anchor(section: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", section.lower()).replace(" ", "-")


def _seeds_note(methods: dict) -> list[str]:
    """'every method on seeds 10-14, 5 evaluation episodes', or ours and the baselines apart."""
    episodes = {n for row in methods.values() for n in row["eval_episodes"]}
    if len(episodes) != 1:
        return []
    count = f"{episodes.pop()} evaluation episodes"
    seeds = {tuple(sorted(row["seeds"])) for row in methods.values()}
    if len(seeds) == 1:
        return [f"every method on {_seed_text(list(seeds.pop()))}, {count}"]
    baseline_seeds = {tuple(sorted(row["seeds"])) for method, row in methods.items() if method != "mbrl"}
    if "mbrl" in methods and len(baseline_seeds) == 1:
        return [f"ours on {_seed_text(methods['mbrl']['seeds'])}, every baseline on "
                f"{_seed_text(list(baseline_seeds.pop()))}, {count}"]
    return [count]


def measured_row(item: dict) -> str:
    parts, notes = [], []
    for method, row in item["methods"].items():
        text = f"{NAMES[method]} {crossing_text(row['first'])} / {crossing_text(row['sustained'])}"
        ratios = (ratio_text(row["first"], method), ratio_text(row["sustained"], method))
        if method != "mbrl" and ratios != ("n/a", "n/a"):
            text += f" = {ratios[0]} / {ratios[1]}"
        parts.append(f"{text} ({len(row['seeds'])} seed{'s' * (len(row['seeds']) != 1)})")
    notes.extend(_seeds_note(item["methods"]))
    for method, row in item["methods"].items():
        text = protocol_text(row, method, headline_task=True)
        if text != "protocol":
            notes.append(f"{NAMES[method]}: {text}")
    link = f"[docs/results.md](docs/results.md#{_anchor(item['section'])})" if item.get("section") else "docs/results.md"
    return (f"| {item['label']}, env steps to {item['threshold']:g} (first / sustained crossing, mean [95 % CI]) | "
            + "; ".join(parts + notes) + f" | {link} |")


def measured_rows(headline: list[dict]) -> list[str]:
    """The README rows: one per headline row under the protocol, in the headline file's order."""
    return [measured_row(item) for item in headline if under_protocol(item)]


def readme_rows(readme: str) -> list[str]:
    return [line for line in readme.splitlines() if ROW_PATTERN.match(line)]


def replace_rows(readme: str, rows: list[str]) -> str:
    """README text with its block of sample-efficiency rows replaced by `rows` (one contiguous block)."""
    lines = readme.split("\n")
    found = [i for i, line in enumerate(lines) if ROW_PATTERN.match(line)]
    if not found or found != list(range(found[0], found[-1] + 1)):
        raise ValueError("README: expected one contiguous block of '| <task>, env steps to <threshold> (first / "
                         "sustained ...' rows in its Measured table")
    lines[found[0]:found[-1] + 1] = rows
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--summary", type=Path, default=ROOT / "docs" / "results_summary.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    try:
        headline = json.loads(args.summary.read_text()).get("headline") or []
        args.readme.write_text(replace_rows(args.readme.read_text(), measured_rows(headline)))
    except (OSError, ValueError) as exc:
        print(f"readme_rows: {exc}", file=sys.stderr)
        return 2
    print(f"rewrote the sample-efficiency rows of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
