"""Data-parallel training under torchrun (two gloo processes on the CPU): the ranks take equal parts of
one global batch, so they end where one process with that global batch ends; each reads only its own
batches' frames; rank 0 alone pretrains the encoder and fills the token cache; resume starts every rank
from the same checkpoint."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wmplan.config import TrainConfig, apply_overrides, preset
from wmplan.training import trainer as trainer_module
from wmplan.training.distributed import DistContext, local_batch_size
from wmplan.training.trainer import train

GLOBAL_BATCH = 32
LR = 1e-3  # the tiny preset's learning rates
# One process and two sum the same gradients in another order (gloo's all-reduce halves their sum): float32
# rounding. Adam's first steps move each weight by about lr whatever its gradient's size, so a weight whose
# gradient is rounding noise may move apart by up to lr in a step: each weight must agree within half of one
# step's move, and each tensor within 1e-3 of its norm (different batches would part them by ~lr per step).
ELEMENT_ATOL, TENSOR_RTOL = LR / 2, 1e-3

RUNS = {  # name -> settings on top of _settings: the token cache, frames read per batch, a pretrained encoder
    "cached": {},
    "frames": {"train.cache_tokens_gb": 0},
    "conv": {"model.encoder.name": "conv", "model.encoder.pretrain_steps": 3, "model.encoder.pretrain_frames": 256},
}

# Each rank trains every run (the "cached" one in two parts: an epoch, then --resume), then records what
# it held of the dataset: the arrays it keeps (wmplan.training.training_data.TrainingData.held_bytes) and
# the most frame bytes one read brought in, and how often it pretrained an encoder.
RANK_SCRIPT = """
import json, os, resource, sys
import torch.distributed as dist
from wmplan.config import apply_overrides, preset
from wmplan.training import encoder_stage, trainer

settings, runs, root = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
made, pretrained = [], []
real_data, real_prepare = trainer.TrainingData, encoder_stage.prepare_encoder

class RecordedData(real_data):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        made.append(self)

def recorded_prepare(*args, **kwargs):
    pretrained.append(1)
    return real_prepare(*args, **kwargs)

trainer.TrainingData, encoder_stage.prepare_encoder = RecordedData, recorded_prepare
for name, extra in runs.items():
    cfg = apply_overrides(preset("tiny", "wall"), {**settings, **extra})
    if name == "cached":
        trainer.train(apply_overrides(cfg, {"train.epochs": 1}), f"{root}/{name}", progress=False)
        trainer.train(cfg, f"{root}/{name}", resume=True, progress=False)
    else:
        trainer.train(cfg, f"{root}/{name}", progress=False)
    data = made[-1]
    record = {
        "held_bytes": data.held_bytes(),
        "largest_frame_read": max(data.train.obs.largest_read_bytes, data.val.obs.largest_read_bytes),
        "pretrained": len(pretrained),
        "token_cache_left": os.path.exists(f"{root}/{name}/.token-cache"),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    pretrained.clear()
    with open(f"{root}/{name}-rank{dist.get_rank()}.json", "w") as f:
        json.dump(record, f)
dist.destroy_process_group()
"""


def _metrics(run) -> list[dict]:
    return list(csv.DictReader((run / "metrics.csv").open()))


def _settings(store) -> dict:
    return {
        "data.path": str(store.path),
        "model.encoder.name": "state",
        "train.epochs": 2,
        "train.steps_per_epoch": 5,
        "train.global_batch_size": GLOBAL_BATCH,
        "train.device": "cpu",
    }


def test_two_ranks_end_where_one_process_ends_and_each_holds_a_fraction_of_the_dataset(wall_store, tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    args = [json.dumps(_settings(wall_store)), json.dumps(RUNS), str(tmp_path / "ddp")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]

    made: list = []
    real_data = trainer_module.TrainingData
    for name, extra in RUNS.items():  # one process, the same global batch
        cfg = apply_overrides(preset("tiny", "wall"), {**_settings(wall_store), **extra})
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trainer_module, "TrainingData", lambda *a, **k: made.append(real_data(*a, **k)) or made[-1])
            train(cfg, tmp_path / "one" / name, progress=False)
        alone = load_file(str(tmp_path / "one" / name / "model.safetensors"))
        ranks = load_file(str(tmp_path / "ddp" / name / "model.safetensors"))
        assert alone.keys() == ranks.keys()
        for key in alone:
            torch.testing.assert_close(ranks[key], alone[key], rtol=0, atol=ELEMENT_ATOL, msg=f"{name}: {key}")
            assert (ranks[key] - alone[key]).norm() <= TENSOR_RTOL * alone[key].norm(), (name, key)
        for one, two in zip(_metrics(tmp_path / "one" / name), _metrics(tmp_path / "ddp" / name)):
            for column in ("train_loss", "val_loss", "val_baseline_loss"):
                assert float(two[column]) == pytest.approx(float(one[column]), rel=1e-5), (name, column)

    dataset_bytes = sum(wall_store.read(k).nbytes for k in ("obs", "state", "proprio", "action"))
    one_process = made[0].held_bytes()
    assert one_process > dataset_bytes * 0.5  # alone, a process holds the splits' frames: the measure sees them
    for name in RUNS:
        for rank in (0, 1):
            record = json.loads((tmp_path / "ddp" / f"{name}-rank{rank}.json").read_text())
            held = record["held_bytes"] + record["largest_frame_read"]
            rss = record["maxrss_kb"]
            print(
                f"{name} rank {rank}: held {held} B (maxrss {rss} kB); dataset {dataset_bytes} B, alone {one_process} B"
            )
            assert held < dataset_bytes / 2, (name, rank, record)  # below its share of the whole dataset
            assert record["pretrained"] == (1 - rank)  # stage 1 on rank 0 alone
            assert not record["token_cache_left"]


def test_a_global_batch_the_processes_cannot_split_is_refused_before_any_work(wall_store, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"train.global_batch_size=6 .* over 4 processes"):
        local_batch_size(TrainConfig(global_batch_size=6), 4)
    assert local_batch_size(TrainConfig(global_batch_size=8), 4) == 2
    assert local_batch_size(TrainConfig(batch_size=5), 4) == 5  # 0: train.batch_size in each process
    four_ranks = DistContext(torch.device("cpu"), rank=0, world_size=4)
    monkeypatch.setattr(trainer_module.DistContext, "from_env", lambda device: four_ranks)
    cfg = apply_overrides(preset("tiny", "wall"), {**_settings(wall_store), "train.global_batch_size": 6})
    with pytest.raises(ValueError, match=r"global_batch_size=6 cannot be split evenly over 4 processes"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
