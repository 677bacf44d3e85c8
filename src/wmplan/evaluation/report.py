"""Tables of planning results beside the paper's numbers, as Markdown.

Example:
    >>> print(success_table({("adam", True): summary}, task="wall"))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

# Success % over 50 episodes of the base DINO-WM model (the paper's Table 1): planner -> (open loop, MPC).
PAPER_BASE_SUCCESS = {
    "wall": {"gd": (2, 12), "adam": (10, 80), "cem": (74, 82)},
    "pointmaze": {"gd": (12, 42), "adam": (24, 68), "cem": (90, 90)},
    "pusht": {"gd": (38, 56), "adam": (54, 76), "cem": (78, 92)},
}
PLANNER_NAMES = {"gd": "GD", "adam": "Adam", "cem": "CEM"}


def success_table(results: dict[tuple[str, bool], dict[str, Any]], task: str) -> str:
    """One row per (planner, mpc) summary: success % with its 95% CI, seconds per plan, the paper's %."""
    lines = [
        "| planner | mode | success % (95% CI) | reached at any step % | seconds per plan | paper (DINO-WM, DINOv2) % |",
        "|---|---|---|---|---|---|",
    ]
    for (planner, mpc), s in results.items():
        low, high = s["ci95"]
        paper = PAPER_BASE_SUCCESS.get(task, {}).get(planner)
        paper_cell = str(paper[int(mpc)]) if paper else "-"
        lines.append(
            f"| {PLANNER_NAMES.get(planner, planner)} | {'MPC' if mpc else 'open loop'} | {100 * s['success_rate']:.0f} "
            f"({100 * low:.0f}-{100 * high:.0f}) | {100 * s['reached_rate']:.0f} | {s['seconds_per_plan']:.2f} | {paper_cell} |"
        )
    return "\n".join(lines)
