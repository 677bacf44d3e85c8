import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from wmplan.cli import main
from wmplan.config import AdversarialConfig, apply_overrides, preset
from wmplan.data.windows import Normalizer
from wmplan.models.world_model import TaskDims, WorldModel
from wmplan.training.adversarial import AdversarialLoss
from wmplan.training.trainer import TrainingData, train

DIMS = TaskDims("wall", 64, 2, 2, 2)


def _model(num_hist=2, seed=0):
    torch.manual_seed(seed)
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    norm = Normalizer(zero, one, zero, one, np.full(2, 32, np.float32), np.full(2, 15, np.float32))
    cfg = apply_overrides(preset("tiny"), {"model.encoder.name": "state", "data.num_hist": num_hist})
    return WorldModel(cfg, DIMS, norm).eval()


def _batch(b=16, num_hist=2, spread=15.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = num_hist + 1
    return {
        "proprio": torch.randn(b, w, 2, generator=g) * spread / 15,
        "state": 32 + torch.randn(b, w, 2, generator=g) * spread,
        "action": torch.randn(b, w - 1, 10, generator=g) * spread / 15,
    }


@pytest.mark.parametrize("action_space,pgd_steps", [("raw", 1), ("embedding", 1), ("raw", 3)])
def test_fgsm_stays_in_the_ball_and_raises_the_loss_more_than_random_corners(tiny_run, action_space, pgd_steps):
    torch.manual_seed(0)
    model = WorldModel.load(tiny_run).eval()
    adv = AdversarialLoss(
        model, AdversarialConfig(0.1, 0.1, 0.1, eps_mode="adaptive", action_space=action_space, pgd_steps=pgd_steps)
    )
    data = TrainingData(model.cfg)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    attack_gain, random_gain = [], []
    for chunk in order[:256].split(32):
        context, act, target = adv.inputs(data.batch("train", chunk, torch.device("cpu")))
        eps = adv.radii(context, act)
        deltas = adv.attack(context, act, target, eps)
        for d, x, e in zip(deltas, (context.visual, context.proprio, act), eps):
            assert d.shape == x.shape and e > 0 and d.abs().max() <= e * (1 + 1e-6)
        # Random corners of the same ball: as large as any perturbation allowed (the stronger control).
        corners = [(torch.randint(0, 2, d.shape) * 2 - 1) * e for d, e in zip(deltas, eps)]
        with torch.no_grad():
            clean = adv.perturbed_loss(context, act, target, [torch.zeros_like(d) for d in deltas])
            attack_gain.append(adv.perturbed_loss(context, act, target, deltas) - clean)
            random_gain.append(adv.perturbed_loss(context, act, target, corners) - clean)
    attack, rand = torch.stack(attack_gain).mean(), torch.stack(random_gain).mean()
    assert attack > 0 and attack > 2 * rand, (attack, rand)


@pytest.mark.parametrize("action_space", ["raw", "embedding"])
def test_eps_is_lambda_times_each_groups_std_fixed_once_or_per_batch(action_space):
    model = _model()
    first, second = _batch(spread=15.0, seed=0), _batch(spread=45.0, seed=1)

    def expected(batch, lambdas):
        context, actions, _ = model.encode_window(batch)
        act = actions if action_space == "raw" else model.embed_actions(actions)
        return torch.tensor(lambdas) * torch.stack([context.visual.std(), context.proprio.std(), act.std()]).detach()

    lambdas = (0.1, 0.2, 0.3)
    fixed = AdversarialLoss(model, AdversarialConfig(*lambdas, eps_mode="fixed", action_space=action_space))
    fixed(first)
    torch.testing.assert_close(fixed.eps, expected(first, lambdas))
    fixed(second)  # three times the spread: a fixed radius does not follow it
    torch.testing.assert_close(fixed.eps, expected(first, lambdas))
    assert fixed.describe()["adversarial_eps"]["action"] == pytest.approx(float(expected(first, lambdas)[2]), rel=1e-4)

    adaptive = AdversarialLoss(model, AdversarialConfig(*lambdas, eps_mode="adaptive", action_space=action_space))
    adaptive(first)
    torch.testing.assert_close(adaptive.eps, expected(first, lambdas))
    adaptive(second)
    torch.testing.assert_close(adaptive.eps, expected(second, lambdas))
    assert (expected(second, lambdas) > 2 * expected(first, lambdas)).all()


def test_targets_are_clean_and_only_perturbed_batches_are_trained(monkeypatch):
    model = _model(num_hist=2)
    adv = AdversarialLoss(model, AdversarialConfig(0.3, 0.3, 0.3, pgd_steps=2))
    batch = _batch()
    calls = []
    real = model.prediction_loss
    monkeypatch.setattr(model, "prediction_loss", lambda c, e, t: calls.append((c, e, t)) or real(c, e, t))
    out = adv(batch)
    z = model.encode(proprio=batch["proprio"], state=batch["state"])
    clean_ctx, clean_next = z.frames(slice(0, 2)), z.frames(slice(1, 3))
    assert len(calls) == 3  # two ascent steps, then the training loss: no clean forward
    for _, _, target in calls:
        torch.testing.assert_close(target.visual, clean_next.visual)
        torch.testing.assert_close(target.proprio, clean_next.proprio)
        assert not target.visual.requires_grad and not target.proprio.requires_grad
    context, emb, target = calls[-1]
    dv, dp = context.visual - clean_ctx.visual, context.proprio - clean_ctx.proprio
    da = emb - model.embed_actions(batch["action"][:, :2])
    for d, e in zip((dv, dp), adv.eps[:2]):
        assert 0 < d.abs().max() <= e * (1 + 1e-5)
    assert da.abs().max() > 0  # the actions are perturbed too (raw space, seen through the embedding)
    torch.testing.assert_close(out["loss"], real(context, emb, target))
    out["loss"].backward()
    for module in (model.predictor, model.action_encoder, model.proprio_encoder):
        assert all(p.grad is not None for p in module.parameters())


def test_bad_settings_are_refused():
    model = _model()
    for cfg in (
        AdversarialConfig(eps_mode="every"),
        AdversarialConfig(action_space="tokens"),
        AdversarialConfig(pgd_steps=0),
        AdversarialConfig(lambda_visual=-1),
    ):
        with pytest.raises(ValueError, match="adversarial"):
            AdversarialLoss(model, cfg)


def test_cli_finetune_writes_an_ordinary_run_that_records_parent_and_method(tiny_run, tmp_path, capsys):
    out = tmp_path / "adv"
    args = ["finetune", "--method", "adversarial", "--run", str(tiny_run), "--out", str(out), "--preset", "tiny"]
    assert main(args + ["--set", "train.steps_per_epoch=10", "--set", "adversarial.lambda_action=0.5"]) == 0
    assert "adversarial radii" in capsys.readouterr().out
    meta, parent_meta = (json.loads((run / "config.json").read_text()) for run in (out, tiny_run))
    assert (meta["parent_run"], meta["method"]) == (str(tiny_run), "adversarial")
    assert meta["config"]["finetune"] == {"method": "adversarial", "parent": str(tiny_run)}
    assert meta["config"]["adversarial"]["lambda_action"] == 0.5 and meta["config"]["train"]["epochs"] == 1
    assert meta["dataset"] == parent_meta["dataset"] and meta["config"]["data"] == parent_meta["config"]["data"]
    assert all(e > 0 for e in meta["adversarial_eps"].values())
    assert [r["epoch"] for r in csv.DictReader((out / "metrics.csv").open())] == ["0"]
    model = WorldModel.load(out, task="wall")
    parent, child = load_file(str(tiny_run / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert parent.keys() == child.keys() and not torch.equal(
        parent["action_encoder.weight"], child["action_encoder.weight"]
    )
    assert model.rollout(
        model.encode(proprio=torch.zeros(1, 1, 2), state=torch.full((1, 1, 2), 30.0)), torch.zeros(1, 2, 10)
    ).visual.shape == (1, 3, 1, 2)

    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    assert main(args[:6] + [str(tmp_path / "x"), "--set", "model.predictor.depth=1"]) == 2
    assert "model.predictor.depth" in capsys.readouterr().err


def test_finetune_of_a_conv_run_keeps_the_encoder_frozen(wall_store, tmp_path):
    from wmplan.training.finetune import finetune

    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "train.epochs": 1,
            "train.steps_per_epoch": 5,
            "model.encoder.pretrain_steps": 20,
        },
    )
    train(cfg, tmp_path / "conv", progress=False)
    finetune(
        tmp_path / "conv",
        tmp_path / "conv-adv",
        "adversarial",
        {"train.steps_per_epoch": 5, "adversarial.action_space": "embedding", "adversarial.eps_mode": "adaptive"},
        preset="tiny",
        progress=False,
    )
    parent, child = (
        load_file(str(tmp_path / "conv" / "model.safetensors")),
        load_file(str(tmp_path / "conv-adv" / "model.safetensors")),
    )
    encoder_keys = [k for k in parent if k.startswith("encoder.")]
    assert encoder_keys and all(torch.equal(parent[k], child[k]) for k in encoder_keys)
    assert not torch.equal(parent["predictor.head.weight"], child["predictor.head.weight"])
    assert (tmp_path / "conv-adv" / "encoder.json").read_text() == (tmp_path / "conv" / "encoder.json").read_text()
    WorldModel.load(tmp_path / "conv-adv")
