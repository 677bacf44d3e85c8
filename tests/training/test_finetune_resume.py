"""A killed finetuning goes on from its last checkpoint with --resume, as a killed training does."""

import json

import torch
from safetensors.torch import load

from wmplan.cli import main
from wmplan.models.run_folder import RunFolder
from wmplan.training.finetune import finetune

LENGTH = {"train.epochs": 2, "train.steps_per_epoch": 3}


def _weights(run):
    return load((run / "model.safetensors").read_bytes())


def test_a_killed_finetuning_resumes_and_ends_where_an_uninterrupted_one_ends(
    tiny_run, tmp_path, capsys, kill_at_epoch
):
    finetune(tiny_run, tmp_path / "whole", "adversarial", LENGTH, preset="tiny", progress=False)
    killed = tmp_path / "killed"
    with kill_at_epoch(1):
        finetune(tiny_run, killed, "adversarial", LENGTH, preset="tiny", progress=False)
    assert (RunFolder(killed).state().epoch, RunFolder(killed).state().finished) == (1, False)
    epoch_0 = (killed / "model.safetensors").read_bytes()

    args = ["finetune", "--method", "adversarial", "--run", str(tiny_run), "--out", str(killed), "--preset", "tiny"]
    args += ["--set", "train.epochs=2", "--set", "train.steps_per_epoch=3"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{killed} already holds a run; pass --resume" in err
    assert (killed / "model.safetensors").read_bytes() == epoch_0  # refused before touching it

    assert main([*args, "--resume"]) == 0
    assert RunFolder(killed).state().finished
    whole, resumed = _weights(tmp_path / "whole"), _weights(killed)
    for key in whole:  # the optimizer state and the radii fixed on the first batch came back with the checkpoint
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=0, msg=key)
    meta = json.loads((killed / "config.json").read_text())
    assert meta["parent_fingerprint"] == RunFolder(tiny_run).state().fingerprint
    assert meta["adversarial_eps"] == json.loads((tmp_path / "whole" / "config.json").read_text())["adversarial_eps"]


def test_resume_asks_for_the_settings_it_was_started_with(tiny_run, tmp_path, capsys, kill_at_epoch):
    killed = tmp_path / "killed"
    with kill_at_epoch(1):
        finetune(tiny_run, killed, "adversarial", LENGTH, preset="tiny", progress=False)
    before = (killed / "model.safetensors").read_bytes()
    args = ["finetune", "--method", "adversarial", "--run", str(tiny_run), "--out", str(killed), "--preset", "tiny"]
    assert main([*args, "--set", "train.epochs=2", "--set", "adversarial.lambda_action=0.9", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "adversarial.lambda_action" in err and "--resume" in err
    assert (killed / "model.safetensors").read_bytes() == before
    nothing = tmp_path / "nothing"
    assert main(["finetune", "--method", "adversarial", "--run", str(tiny_run), "--out", str(nothing), "--resume"]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
