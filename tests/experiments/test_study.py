"""The finetuning study at test scale: every model and cell, the report's verdicts, resuming."""

import json

import pytest

from wmplan.experiments import study_report
from wmplan.experiments.study import StudySpec, choose_length, finetune_recipe, run_study
from wmplan.experiments.study_report import write_study_report


def _spec(**changes):
    values = dict(
        env="wall",
        seeds=[0, 1],
        adversarial_epochs=[1, 2],
        online_steps=[3, 6],
        strengths=[1.0, 2.0],
        episodes=3,
        collect_episodes=16,
        encoder="state",
        base_overrides={"train.epochs": 1, "train.steps_per_epoch": 10},
        finetune_overrides={"train.steps_per_epoch": 2, "online.every": 2, "online.plan_steps": 3},
        planner={"steps": 4, "iterations": 2, "samples": 20, "topk": 4},
    )
    return StudySpec(**{**values, **changes})


def test_the_recipes_of_the_settings():
    assert finetune_recipe("online_200") == ("online", {"train.epochs": 1, "train.steps_per_epoch": 200})
    method, recipe = finetune_recipe("adversarial_e3_x2")
    assert method == "adversarial" and recipe["train.epochs"] == 3 and recipe["adversarial.lambda_visual"] == 0.1
    assert _spec().settings() == ["adversarial_e1_x1", "adversarial_e2_x1", "adversarial_e2_x2", "online_3", "online_6"]


def test_the_length_rule_uses_the_training_objective_only():
    assert choose_length([1, 3, 10], [1.0, 0.9, 0.89]) == 3  # 10% then 1%: stop at 3
    assert choose_length([1, 3, 10], [1.0, 0.99, 0.5]) == 1  # the first step already pays too little
    assert choose_length([1, 3, 10], [1.0, 0.8, 0.6]) == 10


def test_study_runs_every_cell_reports_verdicts_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "study"
    written = []  # (seeds in the grid, report says partial) of each report written while the study runs

    def record(out, spec, grid):
        text = write_study_report(out, spec, grid)
        written.append((len(grid["seeds"]), "**Partial**: 1 of the spec's 2 seeds" in text))
        return text

    monkeypatch.setattr(study_report, "write_study_report", record)
    grid = run_study(_spec(), out, progress=False)
    assert written == [(1, True), (2, False)]
    monkeypatch.undo()
    assert set(grid["seeds"]) == {"0", "1"}
    models = set(grid["seeds"]["0"])
    assert models == {"base", "adversarial_e1_x1", "adversarial_e2_x1", "adversarial_e2_x2", "online_3", "online_6"}
    cell = grid["seeds"]["1"]["online_6"]["adam_mpc"]
    assert len(cell["success"]) == 3 and len(cell["final_distance"]) == 3
    report = (out / "report.md").read_text()
    assert "Adversarial World Modeling: at its best length" in report and "Online World Modeling" in report
    assert "## Lengths chosen from the training side" in report
    assert (out / "effects.png").stat().st_size > 0 and (out / "training.png").stat().st_size > 0
    # Resume: nothing finished is redone; a lost eval cell and an interrupted finetuning are.
    summary = out / "eval" / "seed0" / "base" / "adam_mpc" / "summary.json"
    kept = out / "eval" / "seed1" / "base" / "cem_mpc" / "summary.json"
    before = kept.stat().st_mtime_ns
    summary.unlink()
    (out / "runs" / "seed0" / "online_3").rename(out / "runs" / "seed0" / "online_3.partial")
    again = run_study(_spec(), out, progress=False)
    assert summary.exists() and kept.stat().st_mtime_ns == before
    assert (out / "runs" / "seed0" / "online_3").is_dir() and not (out / "runs" / "seed0" / "online_3.partial").exists()
    assert again["seeds"]["1"] == json.loads(json.dumps(grid["seeds"]["1"]))
    with pytest.raises(ValueError, match="another spec"):
        run_study(_spec(episodes=4), out, progress=False)
