"""Planning episodes scored in the real simulator, batched over every episode at once.

Start/goal pairs are a pure function of (task, seed), so every planner and every model sees the same
pairs: comparisons between them are paired. Plans are executed in the simulator; success is the task's
own criterion, at the end of the budget (`success`) and at any env step on the way (`reached`, the
paper's sticky variant, reported separately).

Example:
    >>> summary = evaluate("runs/wall", EvalConfig(planner="cem", mpc=True), "results/cem_mpc")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wmplan.closed_loop import SimulatedEpisodes, action_bounds
from wmplan.config import (
    CEM_SAMPLES,
    CEM_TOPK,
    GD_LR,
    GD_NOISE,
    GD_STEPS,
    HYBRID_ADAM_STEPS,
    HYBRID_CEM_ITERATIONS,
    MPC_MODEL_STEPS,
    MULTISTART_RESTARTS,
    PLAN_HORIZON,
    PLANNERS,
    check_ranges,
)
from wmplan.envs import make_task
from wmplan.evaluation.paired import mean_interval, wilson_interval
from wmplan.evaluation.summary import EvalSummary
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.planning import (
    CEMConfig,
    CEMPlanner,
    GDConfig,
    GDPlanner,
    HybridConfig,
    HybridPlanner,
    objective_for,
    task_planning,
)
from wmplan.planning.mpc import MPC, MPCConfig
from wmplan.planning.objective import objective_mode
from wmplan.writing import claim_folder


@dataclass
class PlannerSettings:
    """Planner knobs reachable as planner.<name>; None means the paper's default for the mode."""

    lr: float | None = None
    """GD/Adam step size (open loop 0.3, MPC 0.2)."""
    steps: int | None = None
    """GD/Adam steps (open loop 300, MPC 100; hybrid: 30 after its CEM iterations)."""
    optimizer: str | None = None
    """sgd or adam (default: from --planner)."""
    noise: float = GD_NOISE
    """GD/Adam: std of the noise added to the actions after each step."""
    horizon: int = PLAN_HORIZON
    """Model steps planned."""
    samples: int = CEM_SAMPLES
    """CEM samples per iteration."""
    topk: int = CEM_TOPK
    """CEM elites."""
    iterations: int | None = None
    """CEM iterations (default per task, wmplan.tasks: Wall and PointMaze 10, PushT 30; hybrid: 3)."""
    bounded: bool = False
    """Keep plans inside the task's action bounds (GD: projection; CEM: clipped samples)."""
    init: str = "randn"
    """GD/Adam initial actions: randn or zero."""
    restarts: int | None = None
    """GD/Adam starts optimised at once per episode, the lowest final model cost kept (default 1;
    multistart: 8)."""
    objective: str | None = None
    """Frames the cost scores: last (the horizon's final frame, the paper's) or all (every predicted
    frame, later ones weighted more); default per task and mode (wmplan.tasks)."""


@dataclass
class MPCSettings:
    """MPC knobs reachable as mpc.<name>; None means the task's default (wmplan.tasks)."""

    execute: int | None = None
    """Model steps executed from each plan before replanning (Wall 1; PushT and PointMaze 5, the whole plan)."""
    replans: int | None = None
    """Planning calls per episode (default: MPC_MODEL_STEPS // execute, so every episode executes 10 model steps)."""

    def resolve(self, task: str, horizon: int) -> MPCConfig:
        """The MPC schedule for a task and plan horizon (a default `execute` never exceeds the horizon)."""
        execute = self.execute if self.execute is not None else min(task_planning(task).mpc_execute, horizon)
        replans = self.replans if self.replans is not None else max(1, MPC_MODEL_STEPS // execute)
        return MPCConfig(replans=replans, execute=execute)


@dataclass
class EvalConfig:
    planner: str = "adam"
    """gd (plain SGD, the paper's GD), adam or cem; beyond the paper: cem_best, hybrid, multistart."""
    mpc: bool = False
    """Receding horizon instead of open loop."""
    episodes: int = 50
    """Start/goal pairs."""
    seed: int = 99
    """Seed of the start/goal pairs and of the planners' random streams."""
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    mpc_settings: MPCSettings = field(default_factory=MPCSettings)

    def check(self) -> EvalConfig:
        """Raise a ValueError naming the first setting out of its range; returns self."""
        check_ranges(
            self,
            {
                "episodes": 1,
                "seed": 0,
                "settings.steps": 1,
                "settings.noise": 0,
                "settings.horizon": 1,
                "settings.samples": 1,
                "settings.topk": 1,
                "settings.iterations": 1,
                "settings.restarts": 1,
                "mpc_settings.replans": 1,
                "mpc_settings.execute": 1,
            },
            ("settings.lr",),
            names={"settings": "planner", "mpc_settings": "mpc", "episodes": "--episodes", "seed": "--seed"},
        )
        for name, value, allowed in (
            ("init", self.settings.init, ("randn", "zero")),
            ("optimizer", self.settings.optimizer, (None, "sgd", "adam")),
            ("objective", self.settings.objective, (None, "last", "all")),
        ):
            if value not in allowed:
                raise ValueError(f"unknown planner.{name} {value!r}; choose {' or '.join(a for a in allowed if a)}")
        if self.settings.topk > self.settings.samples:
            raise ValueError(
                f"planner.topk ({self.settings.topk}) cannot exceed planner.samples ({self.settings.samples})"
            )
        if self.mpc and (self.mpc_settings.execute or 0) > self.settings.horizon:
            raise ValueError(
                f"mpc.execute ({self.mpc_settings.execute}) cannot exceed planner.horizon ({self.settings.horizon})"
            )
        return self


def build_planner(cfg: EvalConfig, model: WorldModel, task):
    """The planner of an eval config for a model of `task`, with the task's action bounds."""
    s, task_name = cfg.settings, model.dims.task
    if cfg.planner not in PLANNERS:
        raise ValueError(f"unknown planner {cfg.planner!r}; choose one of {', '.join(PLANNERS)}")
    low, high = action_bounds(model, task)
    objective = objective_for(task_name, mode=s.objective or objective_mode(task_name, cfg.mpc))
    mode = "mpc" if cfg.mpc else "open loop"
    hybrid = cfg.planner == "hybrid"
    iterations = HYBRID_CEM_ITERATIONS if hybrid else task_planning(task_name).cem_iterations
    cem = CEMConfig(
        samples=s.samples,
        topk=s.topk,
        iterations=s.iterations if s.iterations is not None else iterations,
        horizon=s.horizon,
        bounded=s.bounded,
        keep_best=cfg.planner == "cem_best",
    )
    if cfg.planner in ("cem", "cem_best"):
        return CEMPlanner(cem, objective, low, high)
    gd = GDConfig(
        optimizer=s.optimizer or ("sgd" if cfg.planner == "gd" else "adam"),
        lr=s.lr if s.lr is not None else GD_LR[mode],
        steps=s.steps if s.steps is not None else HYBRID_ADAM_STEPS if hybrid else GD_STEPS[mode],
        noise=s.noise,
        horizon=s.horizon,
        init=s.init,
        bounded=s.bounded,
        restarts=s.restarts if s.restarts is not None else MULTISTART_RESTARTS if cfg.planner == "multistart" else 1,
    )
    if hybrid:
        return HybridPlanner(HybridConfig(cem=cem, gd=gd), objective, low, high)
    return GDPlanner(gd, objective, low, high)


def evaluate(
    run: str | Path | WorldModel,
    cfg: EvalConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    video: int = 0,
    device: str | None = "auto",
) -> EvalSummary:
    """Plan and execute cfg.episodes episodes; write summary.json and episodes.jsonl into `out`. A run
    path is loaded on `device` (resolve_device: auto is CUDA when present); a model stays where it is."""
    cfg.check()
    model = run if isinstance(run, WorldModel) else WorldModel.load(run, device=resolve_device(device))
    model.eval()
    meta = model.describe()
    task = make_task(model.dims.task, model.task_settings)
    start, goal = task.sample_start_goal(np.random.default_rng(cfg.seed), cfg.episodes)
    planner = build_planner(cfg, model, task)
    mpc_cfg = (
        cfg.mpc_settings.resolve(model.dims.task, planner.cfg.horizon)
        if cfg.mpc
        else MPCConfig(replans=1, execute=planner.cfg.horizon)
    )
    controller = MPC(planner, mpc_cfg)
    lock = claim_folder(out, "the evaluation") if out is not None else None  # noqa: F841 (settings checked; fail before planning)
    episodes = SimulatedEpisodes(task, model, start, goal, record=video)
    z_goal = episodes.encode(goal)
    gens = [torch.Generator(device=episodes.device).manual_seed(cfg.seed * 1_000_003 + i) for i in range(cfg.episodes)]
    bar = tqdm(
        total=mpc_cfg.replans, desc=f"{cfg.planner}{' mpc' if cfg.mpc else ''}", unit="plan", disable=not progress
    )

    def execute(actions):
        episodes.execute(actions)
        bar.update(1)

    result = controller.run(model, episodes.observe, execute, z_goal, generator=gens)
    bar.close()
    final = task.get_state()
    success = task.is_success(final, goal)
    distance = task.distance(final, goal)
    per_plan = float(np.mean(result.plan_seconds))
    rows = [
        {
            "episode": i,
            "start": start[i].tolist(),
            "goal": goal[i].tolist(),
            "final": final[i].tolist(),
            "final_distance": float(distance[i]),
            "success": bool(success[i]),
            "reached": bool(episodes.reached[i]),
            "planning_seconds": float(np.sum(result.plan_seconds)) / cfg.episodes,
        }
        for i in range(cfg.episodes)
    ]
    summary: EvalSummary = {
        "run": str(run) if not isinstance(run, WorldModel) else "(in memory)",
        "task": model.dims.task,
        "planner": cfg.planner,
        "mpc": cfg.mpc,
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "success_rate": float(success.mean()),
        "ci95": wilson_interval(int(success.sum()), cfg.episodes),
        "reached_rate": float(episodes.reached.mean()),
        "mean_initial_distance": float(task.distance(start, goal).mean()),
        "mean_final_distance": float(distance.mean()),
        "final_distance_ci95": mean_interval(distance),
        "distance": getattr(task, "distance_name", "distance"),
        "seconds_per_plan": per_plan,
        "planning_calls": len(result.plan_seconds),
        "planning_seconds_total": float(np.sum(result.plan_seconds)),
        "seconds_per_plan_note": "wall-clock of one batched planning call for all episodes, simulator excluded",
        "planner_config": dataclasses.asdict(planner.cfg),
        "mpc_config": dataclasses.asdict(mpc_cfg),
        "objective": dataclasses.asdict(planner.objective),
        "simulator_early_stop": False,
        "encoder": meta["config"]["model"]["encoder"]["name"],
        "episode_success": [bool(v) for v in success],
        "episode_final_distance": [float(v) for v in distance],
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        (out / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if video:
            write_videos(out, episodes.frames, task.render(goal)[:video])
    return summary


def write_videos(out: Path, frames: list[np.ndarray], goals: np.ndarray) -> None:
    """One GIF per recorded episode: the observation beside the goal, one frame per env step."""
    from PIL import Image

    for i in range(len(goals)):
        pictures = [
            Image.fromarray(np.concatenate([f[i], goals[i]], axis=1)).resize((256, 128), Image.Resampling.NEAREST)
            for f in frames
        ]
        pictures[0].save(out / f"episode_{i:02d}.gif", save_all=True, append_images=pictures[1:], duration=80, loop=0)
