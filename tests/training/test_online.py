import csv
import json

import numpy as np
import pytest
import torch

from wmplan.cli import main
from wmplan.config import OnlineConfig, apply_overrides, preset
from wmplan.data.windows import Normalizer
from wmplan.envs import make_task
from wmplan.models.world_model import TaskDims, WorldModel
from wmplan.training.online import OnlineBuffer, OnlineLoss, build_windows, execute_plan
from wmplan.training.trainer import METRIC_COLUMNS, TrainingData


def test_windows_pair_each_context_with_the_frames_its_own_actions_reached():
    """Free-space Wall moves are exact (pos += 2 a per env step), so the states every window must hold
    are known; a window shifted by one frame (the authors' misalignment) would fail index by index."""
    torch.manual_seed(0)
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    norm = Normalizer(
        zero,
        one,
        np.full(2, 32, np.float32),
        np.full(2, 15, np.float32),
        np.full(2, 32, np.float32),
        np.full(2, 15, np.float32),
    )
    h, horizon, fs = 2, 5, 5
    cfg = apply_overrides(preset("tiny"), {"model.encoder.name": "conv", "data.num_hist": h})
    task = make_task("wall")
    model = WorldModel(cfg, TaskDims("wall", task.image_size, 2, 2, 2), norm).eval()  # conv: windows vs renders
    start = np.array([[17.0, 30.0], [45.0, 30.0]])  # left and right of the wall, >= 8 px from every solid
    actions = (torch.rand(2, horizon, fs * 2, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 0.15
    windows = build_windows(execute_plan(task, model, start, actions), actions, h)

    env = actions.double().numpy().reshape(2, horizon * fs, 2)  # the identity normalizer: env actions = model actions
    pos = start[:, None] + 2.0 * np.concatenate([np.zeros((2, 1, 2)), np.cumsum(env, 1)], 1)[:, ::fs]  # (2, H + 1, 2)
    assert not task.in_solid(pos.reshape(-1, 2)).any() and (np.abs(np.diff(pos, axis=1)).sum(-1) > 0.1).all()
    n = horizon - h + 1
    assert windows["visual"].shape[:2] == (2 * n, h + 1) and windows["action"].shape == (2 * n, h, fs * 2)
    for b in range(2):
        for i in range(n):
            w = b * n + i
            expected = pos[b, i : i + h + 1]  # context i..i+h-1, target i+1..i+h
            np.testing.assert_allclose(windows["state"][w].numpy(), expected, atol=1e-4)
            renders = torch.as_tensor(task.render(expected))[None]
            torch.testing.assert_close(windows["visual"][w], model.encode_visual(obs=renders)[0])
            torch.testing.assert_close(
                windows["proprio"][w], torch.as_tensor((expected - 32) / 15, dtype=torch.float32)
            )
            torch.testing.assert_close(windows["action"][w], actions[b, i : i + h])


def test_buffer_is_bounded_and_first_in_first_out():
    buf = OnlineBuffer(5)
    assert len(buf) == 0

    def windows(values):
        v = torch.tensor(values, dtype=torch.float32)
        return {
            "visual": v[:, None, None, None].expand(-1, 2, 1, 3),
            "proprio": v[:, None, None].expand(-1, 2, 2),
            "action": v[:, None, None].expand(-1, 1, 10),
            "state": v[:, None, None].expand(-1, 2, 2),
        }

    buf.add(windows([0, 1, 2]))
    assert len(buf) == 3
    buf.add(windows([3, 4, 5, 6]))
    assert len(buf) == 5 and buf.added == 7
    assert buf.data["state"][:, 0, 0].tolist() == [2, 3, 4, 5, 6]  # the two oldest went first, order kept
    assert all(
        torch.equal(buf.data[k][:, 0].flatten(1)[:, 0], buf.data["state"][:, 0, 0])
        for k in ("visual", "proprio", "action")
    )
    sample = buf.sample(12, torch.Generator().manual_seed(0))
    assert sample["state"].shape == (12, 2, 2) and set(sample["state"][:, 0, 0].tolist()) <= {2, 3, 4, 5, 6}
    with pytest.raises(ValueError, match="buffer_size"):
        OnlineBuffer(0)


def test_online_batches_enter_the_loss_after_the_first_refresh(tiny_run, monkeypatch):
    torch.manual_seed(0)
    model = WorldModel.load(tiny_run).train()
    data = TrainingData(model.cfg)
    with pytest.raises(ValueError, match="online.online_fraction"):  # the rule RunConfig.check applies too
        OnlineLoss(model, data, OnlineConfig(online_fraction=1.0))
    cfg = OnlineConfig(every=2, windows=3, plan_steps=4, online_fraction=0.25)
    online = OnlineLoss(model, data, cfg)
    calls = []
    real = model.loss
    monkeypatch.setattr(model, "loss", lambda batch: calls.append(batch) or real(batch))
    batch = data.batch("train", torch.arange(8), torch.device("cpu"))
    out = online(batch)
    assert model.training  # planning ran in eval mode and left the model as the trainer set it
    assert len(online.buffer) == 3 * (5 - model.num_hist + 1) and online.refreshes == 1
    assert len(calls) == 2 and len(calls[0]["action"]) == 6 and len(calls[1]["action"]) == 2  # 25% of 8 online
    assert (
        torch.equal(calls[0]["state"], batch["state"][:6]) and "obs" in calls[0]
    )  # no token cache: the expert part keeps its obs
    in_buffer = (calls[1]["state"][:, None] == online.buffer.data["state"][None]).flatten(2).all(-1).any(1)
    assert in_buffer.all()
    expert, on = real(calls[0])["loss"], real(calls[1])["loss"]
    torch.testing.assert_close(out["loss"], 0.75 * expert + 0.25 * on)
    torch.testing.assert_close(out["online_loss"], on.detach())
    # The online windows start at true training states and carry the planned actions' executed frames.
    starts = online.buffer.data["state"][:: 5 - model.num_hist + 1, 0]
    assert all((data.train.state == s).all(-1).any() for s in starts)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.predictor.parameters())
    online(batch), online(batch)
    assert online.refreshes == 2 and online.calls == 3 and len(online.log) == 3
    assert "plan_cost" in online.log[2] and "plan_cost" not in online.log[1]


def test_the_growing_share_trains_expert_and_online_windows_one_to_k_in_the_kth_pass(tiny_run, monkeypatch):
    """online.share=growing (the authors' code's schedule): 1/2 online in the first pass over the training
    windows, 2/3 in the second, 3/4 in the third; a second rank doubles the windows each step consumes."""
    model = WorldModel.load(tiny_run).train()
    data = TrainingData(model.cfg)
    with pytest.raises(ValueError, match="online.share must be one of fixed, growing"):
        OnlineLoss(model, data, OnlineConfig(share="rising"))
    n, b = len(data.train), 12
    sizes: list[int] = []
    cfg = OnlineConfig(every=1000, windows=2, plan_steps=1, share="growing", online_fraction=0.1)
    online = OnlineLoss(model, data, cfg)

    def share_at(step: int, ranks: int = 1) -> float:
        online.calls, online.world_size = step, ranks
        return online.online_share(b)

    second, third = -(-n // b), -(-2 * n // b)  # the first steps of the second and third passes
    assert n > 3 * b and [share_at(s) for s in (0, second - 1, second, third)] == [1 / 2, 1 / 2, 2 / 3, 3 / 4]
    assert share_at(-(-n // (2 * b)), ranks=2) == 2 / 3 and share_at(-(-n // (2 * b)) - 1, ranks=2) == 1 / 2
    share_at(0)
    zero = torch.zeros(())
    monkeypatch.setattr(
        model, "loss", lambda batch: sizes.append(len(batch["action"])) or {"loss": zero, "baseline": zero}
    )
    online(data.batch("train", torch.arange(b), torch.device("cpu")))
    assert sizes == [6, 6]  # the refresh filled the buffer; half of the first pass's batch is online


def test_cli_finetune_online_end_to_end(tiny_run, tmp_path, capsys):
    out = tmp_path / "online"
    args = ["finetune", "--method", "online", "--run", str(tiny_run), "--out", str(out), "--preset", "tiny"]
    sets = {"train.steps_per_epoch": 6, "online.every": 3, "online.windows": 4, "online.plan_steps": 5}
    assert main(args + sum((["--set", f"{k}={v}"] for k, v in sets.items()), [])) == 0
    assert "online world modeling" in capsys.readouterr().out
    meta = json.loads((out / "config.json").read_text())
    assert (meta["parent_run"], meta["method"]) == (str(tiny_run), "online")
    assert meta["config"]["finetune"] == {"method": "online", "parent": str(tiny_run)}
    assert meta["config"]["online"]["every"] == 3
    per_episode = 5 - meta["config"]["data"]["num_hist"] + 1
    assert meta["online"]["refreshes"] == 2 and meta["online"]["buffer_windows"] == 2 * 4 * per_episode
    assert meta["online"]["expert_loss"] > 0 and meta["online"]["online_loss"] > 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert list(rows[0]) == METRIC_COLUMNS and [r["epoch"] for r in rows] == ["0"]
    log = list(csv.DictReader((out / "online_metrics.csv").open()))
    assert [int(r["step"]) for r in log] == list(range(6)) and all(float(r["online_loss"]) > 0 for r in log)
    assert [r["plan_cost"] != "" for r in log] == [True, False, False, True, False, False]
    model = WorldModel.load(out, task="wall")
    assert model.cfg.finetune.method == "online"
