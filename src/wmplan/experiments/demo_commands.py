"""The last section of a demo's report.md: the `wmplan` commands (collect, reference, train, finetune, eval,
gap, landscape) that make the demo's files one by one, so each number can be remade, or changed, without the demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmplan.tasks import task_spec


def reproduce_commands(
    out: Path,
    env: str,
    data: dict,
    scale: dict[str, Any],
    seed: int,
    encoders: list[str],
    references: dict[str, dict[str, Any]],
    train_seeds: list[int] | None = None,
) -> str:
    """The report's last section: the `wmplan` commands that make the demo's files one by one."""

    def sets(overrides: dict) -> str:
        return " ".join(f"--set {k}={v}" for k, v in overrides.items())

    train_seeds = train_seeds or [seed]
    several = len(train_seeds) > 1
    lines = [
        "## Commands that make the same files\n",
        "```",
        f"wmplan collect --env {env} --episodes {data['episodes']} --out {out}/data --seed {seed} --overwrite",
    ]
    reference = references["open loop"]
    pushes = (
        f" --pushes {reference['pushes']} --candidates {scale['reference_candidates']}"
        if task_spec(env).reports_distance
        else ""
    )
    lines.append(f"wmplan reference --env {env} --episodes {scale['episodes']}{pushes} --out {out}/reference")
    mpc_sets = "".join(f" --set mpc.{k}={v}" for k, v in scale["mpc"].items())
    for protocol in (p for p in ("fixed", "paper") if p in references):
        lines.append(
            f"wmplan reference --env {env} --episodes {scale['episodes']} --mpc --protocol {protocol}{mpc_sets} "
            f"--out {out}/reference_mpc_{protocol}"
        )
    for encoder in encoders:
        level, train_seed = ("/seed$s", "$s") if several else ("", str(seed))
        r, e = f"{out}/runs/{encoder}{level}", f"{out}/eval/{encoder}{level}/$m"
        block = [
            f"wmplan train --data {out}/data --out {r}/base --preset {scale['preset']} --encoder {encoder} "
            f"--set train.seed={train_seed} {sets(scale['train'])}"
        ]
        for method in ("online", "adversarial"):
            block.append(f"wmplan finetune --method {method} --run {r}/base --out {r}/{method} {sets(scale[method])}")
        n = f"{scale['episodes']}" + "".join(
            f" --set {group}.{k}={v}" for group in ("planner", "mpc") for k, v in scale[group].items()
        )
        block += [
            "for m in base online adversarial; do",
            "  for p in gd adam cem; do",
            f"    wmplan eval --run {r}/$m --planner $p --episodes {n} --out {e}/$p",
            f"    wmplan eval --run {r}/$m --planner $p --mpc --episodes {n} --out {e}/${{p}}_mpc",
            *(
                [
                    f"    wmplan eval --run {r}/$m --planner $p --mpc --protocol paper --episodes {n} --out {e}/${{p}}_mpc_paper"
                ]
                if scale.get("paper_protocol")
                else []
            ),
            "  done",
        ]
        bounded = sorted({p for p, _, b in scale["cells"] if b})
        if bounded:
            block += [
                f"  for p in {' '.join(bounded)}; do",
                f"    wmplan eval --run {r}/$m --planner $p --mpc --set planner.bounded=true --episodes {n} --out {e}/${{p}}_mpc_bounded",
                "  done",
            ]
        block.append("done")
        if several:
            block = [f"for s in {' '.join(map(str, train_seeds))}; do", *("  " + b for b in block), "done"]
        lines += block
        first = f"{out}/runs/{encoder}" + (f"/seed{train_seeds[0]}" if several else "")
        runs = " ".join(f"--run {first}/{m}" for m in ("base", "online", "adversarial"))
        lines.append(f"wmplan gap {runs} --episodes {scale['gap_windows']} --seed {seed} --out {out}/gap/{encoder}")
        lines.append(
            f"wmplan landscape {runs} --grid {scale['landscape_grid']} --seed {seed} --out {out}/landscape/{encoder}"
        )
    lines.append("```\n")
    return "\n".join(lines)
