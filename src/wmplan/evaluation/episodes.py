"""Planning episodes scored in the real simulator, batched over every episode at once.

Start/goal pairs are a pure function of (task, seed), so every planner and every model sees the same
pairs: comparisons between them are paired. Plans are executed in the simulator; success is the task's
own criterion, at the end of the budget (`success`) and at any env step on the way (`reached`,
reported separately). MPC runs under one of two protocols (evaluation.protocols): `fixed` (a fixed
number of replans, scored at the end) or `paper` (DINO-WM's loop: whole plans executed and replanned
until the simulator's success test passes at a replanning boundary, scored and frozen there).
Episodes are planned in batches (EvalConfig.batch, default one batch of all), each episode drawing from
its own generator; under torchrun (`sharded=True`) the batches are split across the ranks and rank 0
writes what one process planning them would.

Example:
    >>> summary = evaluate("runs/wall", EvalConfig(planner="cem", mpc=True), "results/cem_mpc")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wmplan.closed_loop import SimulatedEpisodes
from wmplan.envs import make_task
from wmplan.evaluation.eval_config import EvalConfig, build_planner
from wmplan.evaluation.paired import mean_interval, wilson_interval
from wmplan.evaluation.protocols import PROTOCOL_NOTES
from wmplan.evaluation.summary import EpisodeOutcomes, EvalSummary
from wmplan.models.run_folder import NO_RUN_RECORD
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.planning.mpc import MPC, MPCConfig
from wmplan.precision import precision_name, use_bf16
from wmplan.writing import atomic_write, claim_folder


def batches_of(episodes: int, batch: int) -> list[np.ndarray]:
    """The episode indices of each batch: consecutive runs of `batch` (the last may be shorter)."""
    return [np.arange(lo, min(lo + batch, episodes)) for lo in range(0, episodes, batch)]


def _process_group(sharded: bool) -> tuple[int, int]:
    """(rank, world size): (0, 1) unless `sharded`, then the initialised torch.distributed group's."""
    if not sharded:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "sharded evaluation needs an initialised process group: run it under torchrun "
            "(torchrun --nproc_per_node N -m wmplan.cli eval ...), or call evaluate without sharded=True"
        )
    return dist.get_rank(), dist.get_world_size()


def evaluate(
    run: str | Path | WorldModel,
    cfg: EvalConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    video: int = 0,
    device: str | torch.device | None = "auto",
    sharded: bool = False,
    allow_unfinished: bool = False,
) -> EvalSummary:
    """Plan and execute cfg.episodes episodes, cfg.batch at a time (default all at once); write
    summary.json and episodes.jsonl into `out`. A run path is loaded on `device` (resolve_device: auto is
    CUDA when present); a model stays where it is.

    sharded: split the batches across the ranks of the initialised torch.distributed group (torchrun;
    batch j to rank j mod N, cfg.batch defaulting to ceil(episodes / N)), each rank on its own device;
    rank 0 merges and alone writes `out`; every rank returns the merged summary. Every episode draws its
    random numbers from its own generator and a batch is the same computation wherever it runs, so the
    files equal those of a single process planning the same batches, timing fields aside.

    An unfinished run (stopped before its last epoch, or still being written) is refused unless
    `allow_unfinished`; the summary records which run planned and how far it had trained (RunState)."""
    cfg.check()
    rank, world = _process_group(sharded)
    batch = min(cfg.batch or -(-cfg.episodes // world), cfg.episodes)
    mine = batches_of(cfg.episodes, batch)[rank::world]
    model = run if isinstance(run, WorldModel) else WorldModel.load(run, device=resolve_device(device))
    run_record = (
        model.run_folder.require_finished(allow_unfinished).record() if model.run_folder else dict(NO_RUN_RECORD)
    )
    model.plan_bf16 = use_bf16(cfg.settings.precision, model.state_mean.device)
    model.eval()
    meta = model.describe()
    task = make_task(model.dims.task, model.task_settings)
    start, goal = task.sample_start_goal(np.random.default_rng(cfg.seed), cfg.episodes)
    planner = build_planner(cfg, model, task)
    mpc_cfg = (
        cfg.mpc_settings.resolve(model.dims.task, planner.cfg.horizon, cfg.protocol)
        if cfg.mpc
        else MPCConfig(replans=1, execute=planner.cfg.horizon)
    )
    controller = MPC(planner, mpc_cfg)
    # Settings checked; fail before planning. Only rank 0 writes.
    lock = claim_folder(out, "the evaluation") if out is not None and rank == 0 else None  # noqa: F841
    bar = tqdm(
        total=mpc_cfg.replans * len(mine),  # the paper protocol's batches may stop early
        desc=f"{cfg.planner}{' mpc' if cfg.mpc else ''}{' (paper protocol)' if cfg.protocol == 'paper' else ''}",
        unit="plan",
        disable=not (progress and rank == 0),
    )
    if not bar.disable:  # where a plan is, inside the bar's step (an open-loop plan is one long step)
        planner.on_step = lambda where: bar.set_postfix_str(where)
    outcomes = [_plan_batch(task, model, controller, cfg, start, goal, indices, video, bar) for indices in mine]
    bar.close()
    shares: list[list[EpisodeOutcomes]] | None = [outcomes]
    if world > 1:
        import torch.distributed as dist

        shares = [outcomes] * world if rank == 0 else None
        dist.gather_object(outcomes, shares, dst=0)
    summary: list[EvalSummary | None] = [None]
    if rank == 0:
        assert shares is not None
        merged = EpisodeOutcomes.merge(shares)
        summary[0] = _finish(
            run, cfg, out, model, meta, task, planner, mpc_cfg, start, goal, merged, video, batch, world, run_record
        )
    if world > 1:
        dist.broadcast_object_list(summary, src=0)
    assert summary[0] is not None
    return summary[0]


def _plan_batch(
    task,
    model: WorldModel,
    controller: MPC,
    cfg: EvalConfig,
    start: np.ndarray,
    goal: np.ndarray,
    indices: np.ndarray,
    video: int,
    bar,
) -> EpisodeOutcomes:
    """Plan and execute the episodes `indices` (consecutive) of the pair list, all in one batch,
    recording the frames of those among the first `video`."""
    start, goal = start[indices], goal[indices]
    episodes = SimulatedEpisodes(
        task, model, start, goal, record=max(0, min(video, int(indices[-1]) + 1) - int(indices[0]))
    )
    z_goal = episodes.encode(goal)
    # One generator per episode, seeded by its place in the pair list: its draws do not depend on which
    # other episodes share its batch.
    gens = [torch.Generator(device=episodes.device).manual_seed(cfg.seed * 1_000_003 + int(i)) for i in indices]

    def execute(actions, active):
        episodes.execute(actions, active)
        bar.update(1)

    done = episodes.boundary if cfg.protocol == "paper" else None  # the paper protocol's loop asks the simulator
    result = controller.run(model, episodes.observe, execute, z_goal, generator=gens, done=done)
    final = episodes.outcome_states()
    assert result.replans is not None and result.held is not None
    return EpisodeOutcomes(
        indices=np.asarray(indices),
        final=final,
        success=np.asarray(task.is_success(final, goal)),
        reached=np.asarray(episodes.reached),
        distance=np.asarray(task.distance(final, goal)),
        plan_seconds=list(result.plan_seconds),
        frames=episodes.frames,
        replans=result.replans.numpy(),
        held=result.held.numpy(),
    )


def _finish(
    run: str | Path | WorldModel,
    cfg: EvalConfig,
    out: str | Path | None,
    model: WorldModel,
    meta: dict,
    task,
    planner,
    mpc_cfg: MPCConfig,
    start: np.ndarray,
    goal: np.ndarray,
    outcomes: EpisodeOutcomes,
    video: int,
    batch: int,
    world: int,
    run_record: dict,
) -> EvalSummary:
    """The summary of all episodes' outcomes; episodes.jsonl, the videos and summary.json (last, so a
    present summary.json means a finished eval) written into `out`, each file atomically. `world`: the
    processes the batches were sharded across (only the timing note says so)."""
    success, distance, reached = outcomes.success, outcomes.distance, outcomes.reached
    per_plan = float(np.mean(outcomes.plan_seconds))
    summary: EvalSummary = {
        "run": str(run) if not isinstance(run, WorldModel) else "(in memory)",
        **run_record,  # type: ignore[typeddict-item]
        "task": model.dims.task,
        "planner": cfg.planner,
        "mpc": cfg.mpc,
        "protocol": cfg.protocol,
        "protocol_note": PROTOCOL_NOTES[cfg.protocol] if cfg.mpc else "open loop: one plan, scored at its end",
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "batch": batch,
        "success_rate": float(success.mean()),
        "ci95": wilson_interval(int(success.sum()), cfg.episodes),
        "reached_rate": float(reached.mean()),
        "mean_initial_distance": float(task.distance(start, goal).mean()),
        "mean_final_distance": float(distance.mean()),
        "final_distance_ci95": mean_interval(distance),
        "distance": getattr(task, "distance_name", "distance"),
        "seconds_per_plan": per_plan,
        "planning_calls": len(outcomes.plan_seconds),
        "planning_seconds_total": float(np.sum(outcomes.plan_seconds)),
        "seconds_per_plan_note": "wall-clock of one batched planning call for all episodes, simulator excluded"
        + (f"; {batch} episodes at a time, each call summed over the batches" if batch < cfg.episodes else "")
        + (f"; batches shared by {world} processes, the slowest one's sum" if world > 1 else ""),
        "planner_config": dataclasses.asdict(planner.cfg),
        "mpc_config": dataclasses.asdict(mpc_cfg),
        "objective": dataclasses.asdict(planner.objective),
        "simulator_early_stop": cfg.protocol == "paper",
        "mean_replans": float(np.mean(outcomes.replans)),
        "encoder": meta["config"]["model"]["encoder"]["name"],
        "precision": precision_name(model.plan_bf16),
        "episode_success": [bool(v) for v in success],
        "episode_final_distance": [float(v) for v in distance],
        "episode_reached": [bool(v) for v in reached],
        "episode_replans": [int(v) for v in outcomes.replans],
        "episode_held": [int(v) for v in outcomes.held],
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r) + "\n" for r in _episode_records(outcomes, start, goal, cfg.episodes))
        atomic_write(out / "episodes.jsonl", lambda tmp: tmp.write_text(text))
        if video:
            write_videos(out, outcomes.frames, task.render(goal)[:video])
        summary_text = json.dumps(summary, indent=2)
        atomic_write(out / "summary.json", lambda tmp: tmp.write_text(summary_text))
    return summary


def _episode_records(outcomes: EpisodeOutcomes, start: np.ndarray, goal: np.ndarray, episodes: int) -> list[dict]:
    """One record per episode for episodes.jsonl: its pair, where it ended and how it fared, so that
    a comparison can pair episodes across planners and models."""
    return [
        {
            "episode": i,
            "start": start[i].tolist(),
            "goal": goal[i].tolist(),
            "final": outcomes.final[i].tolist(),
            "final_distance": float(outcomes.distance[i]),
            "success": bool(outcomes.success[i]),
            "reached": bool(outcomes.reached[i]),
            "replans": int(outcomes.replans[i]),
            "planning_seconds": float(np.sum(outcomes.plan_seconds)) / episodes,
        }
        for i in range(episodes)
    ]


def write_videos(out: Path, frames: list[np.ndarray], goals: np.ndarray) -> None:
    """One GIF per recorded episode: the observation beside the goal, one frame per env step."""
    from PIL import Image

    for i in range(len(goals)):
        pictures = [
            Image.fromarray(np.concatenate([f[i], goals[i]], axis=1)).resize((256, 128), Image.Resampling.NEAREST)
            for f in frames
        ]
        pictures[0].save(out / f"episode_{i:02d}.gif", save_all=True, append_images=pictures[1:], duration=80, loop=0)
