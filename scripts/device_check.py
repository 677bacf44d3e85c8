"""The device check of a GPU machine: what would break there, one row per check in one table at the end.

On a GPU machine, from the repository root, with wmplan installed on a CUDA build of torch
(`make install TORCH_SPEC=...`, then `source .venv/bin/activate`):

    bash scripts/gpu_check.sh [--nproc N] [--out DIR]      # every visible GPU under NCCL, sizes for a GPU
    bash scripts/gpu_check.sh --device cpu --tiny          # the same checks on a CPU in a minute (2 gloo ranks)

Checks (each row: check | result ok / FAILED / skipped | figures):
1. ddp training: `wmplan collect --env wall` of a small dataset, then `torchrun --nproc_per_node N -m wmplan.cli
   train` on it (each rank on cuda:LOCAL_RANK; the backend is wmplan.training.distributed's: nccl on CUDA, gloo on
   the CPU); every epoch must be in metrics.csv and the run must load, finished, on the device.
2. sharded eval: `torchrun ... -m wmplan.cli eval --batch K` of that run against one process with the same
   --batch (docs/usage.md, "Sharded evaluation and torchrun"): the same success rate and per-episode success and
   reached flags, final distances within DISTANCE_TOLERANCE (on the CPU they are identical).
3. bf16 planning: the one-process eval again with `--set planner.precision=bf16` on the same pairs, against fp32:
   both success rates, the difference of the mean final distances and the ratio of seconds per plan. Skipped,
   with wmplan.precision's reason, where bf16 is refused (a CPU without AVX512-BF16 or AMX, a GPU before compute
   capability 8.0). On CUDA, "fp32" matmuls are TF32 (wmplan's device rule).
4. throughput: scripts/gpu_check.py, the paper preset with random weights: training samples/s and FLOP/s,
   seconds per Adam and CEM plan, peak memory.

Every command's output goes to OUT/logs/<step>.log and the figures to OUT/device_check.json; the exit status is
1 when a check failed (after the table), 2 for bad flags. A check that hangs (a collective that never returns)
is killed, with its processes, after --timeout seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.precision import use_bf16
from wmplan.training.distributed import backend_for

SCRIPTS = Path(__file__).resolve().parent
DISTANCE_TOLERANCE = 1e-3
"""Largest difference of an episode's final distance between sharded and one-process planning. The CPU gives
identical numbers; a GPU's kernels may sum in another order from call to call, a rounding apart."""


@dataclass(frozen=True)
class Sizes:
    """How big each check runs: `collect` episodes collected; `train` and `plan` flags of wmplan train and eval
    (beyond data, run, out and device); `episodes` planned; `throughput` flags of scripts/gpu_check.py."""

    collect: int
    train: tuple[str, ...]
    episodes: int
    plan: tuple[str, ...]
    throughput: tuple[str, ...]


GPU = Sizes(
    collect=200,
    train=("--preset", "small", "--encoder", "conv", "--epochs", "2", "--set", "train.steps_per_epoch=50")
    + ("--set", "model.encoder.pretrain_steps=300", "--set", "train.precision=auto"),
    episodes=16,
    plan=("--planner", "hybrid", "--mpc"),  # CEM's random draws, then Adam's gradients, replanned
    throughput=("--preset", "paper"),
)
TINY = Sizes(
    collect=16,
    train=("--preset", "tiny", "--encoder", "state", "--epochs", "1", "--set", "train.steps_per_epoch=4")
    + ("--set", "train.precision=auto"),
    episodes=5,
    plan=("--planner", "hybrid", "--mpc", "--set", "planner.samples=12", "--set", "planner.topk=3")
    + ("--set", "planner.steps=4", "--set", "mpc.replans=2"),
    throughput=("--preset", "tiny", "--tokens", "8", "--token-dim", "2", "--num-hist", "1", "--steps", "1")
    + ("--episodes", "2"),
)


class CheckFailed(Exception):
    """A check went wrong: its one-line reason."""


class Skipped(Exception):
    """A check does not apply here: its one-line reason."""


@dataclass
class Row:
    check: str
    result: str
    """ok, FAILED or skipped."""
    figures: str
    data: dict


class Machine:
    """Where the checks run: the device type, the ranks, the sizes and the folder every step writes into."""

    def __init__(self, device: torch.device, nproc: int, sizes: Sizes, out: Path, timeout: float):
        self.device, self.nproc, self.sizes, self.out, self.timeout = device, nproc, sizes, out, timeout
        self.evals: dict[str, dict] = {}  # one-process eval summaries by name, planned once

    def run(self, step: str, args: list[str], ranks: int = 0) -> None:
        """`python ARGS`, or under torchrun with `ranks` processes; its output in OUT/logs/STEP.log. Killed
        with every process it started after the timeout (its own session: torchrun's ranks go with it)."""
        launch = [sys.executable]
        if ranks:  # torchrun, as `python -m` of this interpreter
            launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        log = self.out / "logs" / f"{step}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # torchrun's per rank
        with log.open("w") as f:
            proc = subprocess.Popen(
                [*launch, *args], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            try:
                code = proc.wait(timeout=self.timeout or None)
            except BaseException as exc:  # the timeout, or Ctrl-C: no rank is left behind on the device
                with contextlib.suppress(ProcessLookupError):  # every process of it may have ended already
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if isinstance(exc, subprocess.TimeoutExpired):
                    raise CheckFailed(f"{step} still running after {self.timeout:.0f} s, killed; see {log}") from None
                raise
        if code != 0:
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            raise CheckFailed(f"{step} exited with status {code}: {lines[-1] if lines else ''} (see {log})")

    def wmplan(self, step: str, *args: str, ranks: int = 0) -> None:
        self.run(step, ["-m", "wmplan.cli", *args], ranks)

    @property
    def run_dir(self) -> Path:
        return self.out / "run"

    def eval_args(self, out: Path, *extra: str) -> list[str]:
        """The same pairs, planner and batches for every eval: --batch is what sharding gives each rank."""
        batch = str(math.ceil(self.sizes.episodes / self.nproc))
        where = ["--model", str(self.run_dir), "--out", str(out), "--device", self.device.type]  # --model: torchrun's
        return ["eval", *where, "--episodes", str(self.sizes.episodes), "--batch", batch, *self.sizes.plan, *extra]

    def single_eval(self, name: str, *extra: str) -> dict:
        """The summary of a one-process eval (planned once, kept for the checks that compare with it)."""
        if name not in self.evals:
            self.wmplan(f"eval_{name}", *self.eval_args(self.out / "eval" / name, *extra))
            self.evals[name] = json.loads((self.out / "eval" / name / "summary.json").read_text())
        return self.evals[name]


def check_training(m: Machine) -> tuple[str, dict]:
    data = m.out / "data"
    m.wmplan("collect", "collect", "--env", "wall", "--episodes", str(m.sizes.collect), "--out", str(data))
    start = time.perf_counter()
    where = ["--data", str(data), "--out", str(m.run_dir), "--device", m.device.type]
    m.wmplan("train", "train", *where, *m.sizes.train, ranks=m.nproc)
    seconds = time.perf_counter() - start
    model = WorldModel.load(m.run_dir, device=m.device)  # a DDP run's weights load as a one-process run's
    assert model.run_folder is not None  # loaded from a folder
    state = model.run_folder.require_finished()
    rows = model.run_folder.metrics()
    if [int(r["epoch"]) for r in rows] != list(range(state.epochs)):
        raise CheckFailed(f"metrics.csv lists epochs {[r['epoch'] for r in rows]}, expected 0 to {state.epochs - 1}")
    last = {k: float(rows[-1][k]) for k in ("train_loss", "val_loss", "val_baseline_loss")}
    if not all(math.isfinite(v) for v in last.values()):
        raise CheckFailed(f"the last epoch's losses are not finite: {last}")
    precision = model.run_folder.meta().get("precision", "fp32")
    ranks = f"{m.nproc} ranks ({backend_for(m.device)} process group)" if m.nproc > 1 else "1 rank (no process group)"
    figures = (
        f"{ranks}, {state.epochs} epoch{'s' * (state.epochs != 1)} in {seconds:.0f} s, {precision}; val loss "
        f"{last['val_loss']:.3g} (copy-last-frame {last['val_baseline_loss']:.3g}); loads on {m.device.type}"
    )
    return figures, {"ranks": m.nproc, "epochs": state.epochs, "seconds": seconds, "precision": precision, **last}


def check_sharded(m: Machine) -> tuple[str, dict]:
    one = m.single_eval("single")
    m.wmplan("eval_sharded", *m.eval_args(m.out / "eval" / "sharded"), ranks=m.nproc)
    two = json.loads((m.out / "eval" / "sharded" / "summary.json").read_text())
    if two["batch"] != one["batch"] or two["episodes"] != one["episodes"]:
        raise CheckFailed(
            f"planned {two['episodes']} episodes by {two['batch']}, one process {one['episodes']} by {one['batch']}"
        )
    gap = float(np.max(np.abs(np.subtract(one["episode_final_distance"], two["episode_final_distance"]))))
    data = {
        "ranks": m.nproc,
        "batch": two["batch"],
        "success_rate": [one["success_rate"], two["success_rate"]],
        "same_success": one["episode_success"] == two["episode_success"],
        "same_reached": one["episode_reached"] == two["episode_reached"],
        "max_distance_difference": gap,
    }
    if not (data["same_success"] and data["same_reached"] and gap <= DISTANCE_TOLERANCE):
        differ = sum(a != b for a, b in zip(one["episode_success"], two["episode_success"]))
        raise CheckFailed(
            f"sharded differs from one process: {differ} episodes' success, reached the same: {data['same_reached']}, "
            f"max |final distance difference| {gap:.3g} (see {m.out / 'eval'})"
        )
    same = "identical" if gap == 0 else f"{gap:.2g} apart at most"
    figures = (
        f"{m.nproc} ranks, {two['episodes']} episodes by {two['batch']}: success {two['success_rate']:.0%} = "
        f"{one['success_rate']:.0%} of one process, per-episode outcomes equal, final distances {same}"
    )
    return figures, data


def check_bf16(m: Machine) -> tuple[str, dict]:
    try:
        use_bf16("bf16", m.device)
    except ValueError as exc:
        raise Skipped(str(exc)) from None
    fp32 = m.single_eval("single")
    bf16 = m.single_eval("bf16", "--set", "planner.precision=bf16")
    if (fp32["precision"], bf16["precision"]) != ("fp32", "bf16"):
        raise CheckFailed(f"the summaries record precisions {fp32['precision']} and {bf16['precision']}")
    if not np.all(np.isfinite(bf16["episode_final_distance"])):
        raise CheckFailed("bf16 planning left non-finite final distances")
    data = {
        "success_rate": {"fp32": fp32["success_rate"], "bf16": bf16["success_rate"]},
        "episodes_differing": sum(a != b for a, b in zip(fp32["episode_success"], bf16["episode_success"])),
        "mean_final_distance_difference": bf16["mean_final_distance"] - fp32["mean_final_distance"],
        "seconds_per_plan_ratio": bf16["seconds_per_plan"] / fp32["seconds_per_plan"],
    }
    figures = (
        f"success fp32 {fp32['success_rate']:.0%}, bf16 {bf16['success_rate']:.0%} ({data['episodes_differing']} of "
        f"{fp32['episodes']} episodes differ); mean final {fp32['distance']} bf16 - fp32 "
        f"{data['mean_final_distance_difference']:+.3g}; s/plan bf16 / fp32 {data['seconds_per_plan_ratio']:.2f}"
    )
    return figures, data


def check_throughput(m: Machine) -> tuple[str, dict]:
    path = m.out / "throughput.json"
    m.run(
        "throughput",
        [str(SCRIPTS / "gpu_check.py"), "--device", m.device.type, *m.sizes.throughput, "--json", str(path)],
    )
    r = json.loads(path.read_text())
    memory = f", peak {r['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in r else ""
    figures = (
        f"{r['preset']} preset{' bf16' if r['bf16'] else ''}: train {r['train_samples_per_second']:.0f} samples/s "
        f"({r['train_achieved_flops'] / 1e12:.3g} TFLOP/s), plan Adam 100 {r['adam100_plan_seconds']:.2f} s, "
        f"CEM 300x30 {r['cem300x30_plan_seconds']:.2f} s for {r['episodes_per_plan']} episodes{memory}"
    )
    return figures, r


CHECKS: list[tuple[str, Callable[[Machine], tuple[str, dict]]]] = [
    ("ddp training", check_training),
    ("sharded eval", check_sharded),
    ("bf16 planning", check_bf16),
    ("throughput", check_throughput),
]
NEEDS_RUN = {"sharded eval", "bf16 planning"}


def run_checks(m: Machine) -> list[Row]:
    rows: list[Row] = []
    for name, check in CHECKS:
        if name in NEEDS_RUN and any(r.check == "ddp training" and r.result != "ok" for r in rows):
            rows.append(Row(name, "skipped", "no trained run: ddp training failed", {}))
            continue
        try:
            figures, data = check(m)
            rows.append(Row(name, "ok", figures, data))
        except Skipped as exc:
            rows.append(Row(name, "skipped", str(exc), {}))
        except CheckFailed as exc:
            rows.append(Row(name, "FAILED", str(exc), {}))
        except Exception as exc:  # anything else (a run that does not load): this row; the next checks still run
            rows.append(Row(name, "FAILED", f"{type(exc).__name__}: {exc}", {}))
    return rows


def table(rows: list[Row]) -> str:
    header = Row("check", "result", "figures", {})
    wide = [max(len(r.check) for r in [header, *rows]), max(len(r.result) for r in [header, *rows])]
    lines = [f"{r.check:<{wide[0]}} | {r.result:<{wide[1]}} | {r.figures}" for r in [header, *rows]]
    lines.insert(1, f"{'-' * wide[0]}-|-{'-' * wide[1]}-|-{'-' * 7}")
    return "\n".join(lines)


def finish(rows: list[Row], out: Path, where: str) -> int:
    """Print the table and where everything went; the exit status: 1 if a check failed."""
    record = {"device": where, "torch": torch.__version__, "checks": [asdict(r) for r in rows]}
    (out / "device_check.json").write_text(json.dumps(record, indent=2))
    print(table(rows))
    print(f"wrote {out} (device_check.json; logs/ holds each command's output)")
    return 1 if any(r.result == "FAILED" for r in rows) else 0


def parse(argv: list[str] | None) -> tuple[Machine, str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto (wmplan's rule)"
    )
    parser.add_argument("--nproc", type=int, default=0, help="ranks under torchrun (0: every visible GPU; 2 on a CPU)")
    parser.add_argument("--tiny", action="store_true", help="the smallest sizes: a smoke test on a CPU")
    parser.add_argument("--out", type=Path, help="a new or empty folder (default: a new temporary folder)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a command may run (0: no limit)")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    nproc = args.nproc or gpus or 2
    if nproc < 1:
        parser.error(f"--nproc must be at least 1, got {nproc}")
    if device.type == "cuda" and nproc > gpus:
        parser.error(f"--nproc {nproc} asks for more ranks than the {gpus} GPUs torch sees (one GPU per rank)")
    if args.out is not None and args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"--out {args.out} is not an empty folder; give a new or empty one (every check writes afresh)")
    out = args.out or Path(tempfile.mkdtemp(prefix="wmplan-device-check-"))
    out.mkdir(parents=True, exist_ok=True)
    where = f"{nproc} x {torch.cuda.get_device_name(0)}" if device.type == "cuda" else f"CPU, {nproc} ranks"
    return Machine(device, nproc, TINY if args.tiny else GPU, out.resolve(), args.timeout), where


def main(argv: list[str] | None = None) -> int:
    machine, where = parse(argv)
    print(f"device check on {where} (torch {torch.__version__}), writing into {machine.out}", flush=True)
    return finish(run_checks(machine), machine.out, where)


if __name__ == "__main__":
    sys.exit(main())
