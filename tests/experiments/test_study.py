"""The finetuning study at test scale: every model and cell, the report's verdicts, resuming."""

import dataclasses
import json
import re

import pytest

from wmplan.evaluation.multiple import NO_DIFFERENCE, OPPOSITE_DIRECTION, REPRODUCED, REVERSED, SAME_DIRECTION
from wmplan.evaluation.paired import PairedEffect
from wmplan.experiments import study_report
from wmplan.experiments.legacy_results import convert_study_grid
from wmplan.experiments.results import GridResults, read_results
from wmplan.experiments.study import (
    StudySpec,
    choose_length,
    extends,
    finetune_recipe,
    run_study,
    spec_changes,
    study_cells,
)
from wmplan.experiments.study_report import length_rule_finding, write_study_report


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
        protocols=["fixed"],
    )
    return StudySpec(**{**values, **changes})


def test_the_recipes_of_the_settings():
    assert finetune_recipe("online_200") == ("online", {"train.epochs": 1, "train.steps_per_epoch": 200})
    method, recipe = finetune_recipe("adversarial_e3_x2")
    assert method == "adversarial" and recipe["train.epochs"] == 3 and recipe["adversarial.lambda_visual"] == 0.1
    assert _spec().settings() == ["adversarial_e1_x1", "adversarial_e2_x1", "adversarial_e2_x2", "online_3", "online_6"]


def test_the_demo_finetunes_for_the_lengths_its_tasks_study_chose():
    """Each task with a committed study (docs/results/study/<task>) sets its demo's finetuning lengths by
    the rule on that study's training side, and the demo trains exactly the study's setting of that length
    (so `study --from-demo` adopts it)."""
    from pathlib import Path

    from wmplan.experiments.demo import demo_scale
    from wmplan.experiments.study import adversarial_name, online_name
    from wmplan.tasks import task_names, task_spec

    studied = [d for d in (Path(__file__).parents[2] / "docs/results/study").iterdir() if d.name in task_names()]
    assert studied, "no committed study of a task"
    for folder in studied:
        spec = StudySpec(**json.loads((folder / "study.json").read_text()))
        chosen = study_report.rule_lengths(spec, read_results(folder))
        recipe = task_spec(spec.env).demo
        assert (recipe.adversarial_epochs, recipe.online_steps) == (chosen["adversarial"], chosen["online"]), folder
    for env in task_names():
        task = task_spec(env)
        scale = demo_scale(env)
        for setting, trained in (
            (adversarial_name(task.demo.adversarial_epochs), scale.adversarial),
            (online_name(task.demo.online_steps), scale.online),
        ):
            recipe = finetune_recipe(setting)[1]
            assert trained == {k: v for k, v in recipe.items() if k.startswith("train.")}, (env, setting)


def test_the_length_rule_uses_the_training_objective_only():
    assert choose_length([1, 3, 10], [1.0, 0.9, 0.89]) == 3  # 10% then 1%: stop at 3
    assert choose_length([1, 3, 10], [1.0, 0.99, 0.5]) == 1  # the first step already pays too little
    assert choose_length([1, 3, 10], [1.0, 0.8, 0.6]) == 10
    assert choose_length([1, 3, 10], [1.0, float("nan"), 0.6]) is None  # a missing objective: no silent choice
    assert (
        length_rule_finding("epochs", [1, 3, 10], [1.0, 0.9, 0.89])[1] == "3 epochs (objective by length 1, 0.9, 0.89)"
    )
    assert length_rule_finding("epochs", [1, 3], [1.0, 0.99])[1].startswith("1 epoch (")
    chosen, finding = length_rule_finding("epochs", [1, 3, 10], [1.0, 0.8, 0.6])
    assert chosen == 10 and "found no plateau" in finding  # the longest, because every step still paid: said


def test_a_spec_the_rule_cannot_read_is_refused():
    with pytest.raises(ValueError, match="increasing order"):
        _spec(online_steps=[6, 3])
    with pytest.raises(ValueError, match="no repeats"):
        _spec(seeds=[0, 0])
    with pytest.raises(ValueError, match="at least one value"):
        _spec(adversarial_epochs=[])


def test_holding_across_seeds_needs_every_seed_and_the_adjusted_pooled_test():
    significant = PairedEffect(0.1, (0.02, 0.18), 0.01, 150)
    assert study_report.verdict(significant, [0.12, 0.08, 0.1]) == REPRODUCED
    assert study_report.verdict(significant, [0.3, 0.04, -0.04]) == SAME_DIRECTION  # one seed against
    assert study_report.verdict_text(significant, [0.3, 0.04, -0.04], 0.01).endswith(study_report.NOT_EVERY_SEED)
    assert study_report.verdict(significant, [0.12, 0.08, 0.1], p_adjusted=0.05) == SAME_DIRECTION  # after Holm
    weak = PairedEffect(0.1, (-0.02, 0.2), 0.09, 150)
    assert study_report.verdict(weak, [0.1, 0.1, 0.1]) == SAME_DIRECTION
    worse = PairedEffect(-0.1, (-0.2, -0.02), 0.01, 150)
    assert study_report.verdict(worse, [-0.1] * 3) == REVERSED
    assert study_report.verdict(worse, [-0.2, -0.1, 0.0]) == OPPOSITE_DIRECTION  # one seed not worse
    assert study_report.verdict(PairedEffect(-0.02, (-0.1, 0.06), 0.6, 150), [0.0] * 3) == OPPOSITE_DIRECTION
    assert study_report.verdict(PairedEffect(0.0, (-0.1, 0.1), 1.0, 150), [0.0] * 3) == NO_DIFFERENCE


def test_the_report_reads_its_verdicts_from_holm_adjusted_p_values(tmp_path):
    # two seeds on the same 20 pairs; adversarial_e1 wins 7 pairs under both seeds, its raw p 2/128 = 0.016;
    # the three other models move nothing. Over the family of 4, Holm multiplies the smallest p by 4: 0.0625.
    spec = _spec(adversarial_epochs=[1, 2], online_steps=[3, 6], strengths=[1.0], episodes=20)
    base_success = [False] * 20
    training = {"train_loss": 1.0, "val_loss": 1.0, "online_loss": 1.0}

    def model(success: list[bool]) -> dict:
        outcome = {"success": success, "final_distance": [0.0] * len(success), "seconds_per_plan": 1.0}
        return dict.fromkeys(("adam_mpc", "adam", "cem_mpc"), outcome) | {"training": training}

    def seed(e1: list[bool]) -> dict:
        return {
            "base": model(base_success),
            "adversarial_e1_x1": model(e1),
            "adversarial_e2_x1": model(base_success),
            "online_3": model(base_success),
            "online_6": model(base_success),
        }

    gains = [True] * 7 + [False] * 13
    grid = {"episodes": 20, "seeds": {"0": seed(gains), "1": seed(gains)}}
    text = write_study_report(tmp_path, spec, GridResults.from_document(convert_study_grid(grid, spec)))
    verdicts = text[text.index("### Verdicts, fixed protocol") : text.index("## Lengths")]
    assert "p-values Holm-adjusted over the 4 claims of this block (one per finetuned model)" in verdicts
    best = re.search(
        r"at its best length \(adversarial_e1_x1\) (.+?): \+35 points .*?, p = (\S+), Holm-adjusted p = (\S+),",
        verdicts,
    )
    assert best, verdicts
    label, raw, adjusted = best.group(1), float(best.group(2)), float(best.group(3))
    assert raw == pytest.approx(2 / 128, abs=0.004) and adjusted == pytest.approx(4 * raw, abs=1e-3)
    assert label == SAME_DIRECTION  # it would read "reproduced" from the raw p
    assert "adversarial_e2_x1 no difference, not significant (p = 1, adjusted 1)" in verdicts
    assert "by a two-level bootstrap over seeds and pairs" in verdicts
    assert (tmp_path / "effects.png").stat().st_size > 0


def test_study_runs_every_cell_reports_verdicts_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "study"
    both = lambda **changes: _spec(protocols=["fixed", "paper"], **changes)  # noqa: E731
    written = []  # (seeds in the grid, report says partial) of each report written while the study runs

    def record(out, spec, grid):
        text = write_study_report(out, spec, grid)
        written.append((len(grid.train_seeds), "**Partial**: 1 of the spec's 2 seeds" in text))
        return text

    monkeypatch.setattr(study_report, "write_study_report", record)
    grid = run_study(both(), out, progress=False)
    assert written == [(1, True), (2, False)]
    monkeypatch.undo()
    assert grid.train_seeds == [0, 1] and grid.kind == "study" and not (out / "study_grid.json").exists()
    assert read_results(out) == grid  # what it returns is what grid.json says
    models = set(grid.model_names())
    assert models == {"base", "adversarial_e1_x1", "adversarial_e2_x1", "adversarial_e2_x2", "online_3", "online_6"}
    [cell] = [c for c in grid.cells_of("online_6", "adam_mpc") if c.train_seed == 1]
    assert len(cell.success) == 3 and len(cell.final_distance) == 3
    planned = json.loads((out / cell.record["folder"] / "summary.json").read_text())
    assert cell.record["folder"] == "eval/seed1/online_6/adam_mpc" and list(cell.success) == planned["episode_success"]
    assert len(grid.success("online_6", "adam_mpc")) == 6  # both seeds' episodes, pooled
    report = (out / "report.md").read_text()
    assert "Adversarial World Modeling: at its best length" in report and "Online World Modeling" in report
    assert "## Lengths chosen from the training side" in report
    assert "p-values Holm-adjusted over the 4 claims of this block" in report
    assert (out / "effects.png").stat().st_size > 0 and (out / "training.png").stat().st_size > 0
    # each protocol: its own cells, section, family of claims and plot
    paper = json.loads((out / "eval" / "seed0" / "base" / "cem_mpc_paper" / "summary.json").read_text())
    assert paper["protocol"] == "paper" and grid.protocols == ["fixed", "paper"]
    assert [len(c.success) for c in grid.cells_of("online_6", "adam_mpc_paper", "paper")] == [3, 3]
    assert "## Fixed protocol" in report and "## Paper protocol" in report and "### Verdicts, paper protocol" in report
    assert report.count("p-values Holm-adjusted over the 4 claims of this block") == 2
    assert (out / "effects_paper.png").stat().st_size > 0
    diagnostics = grid.models["online_6"][1].diagnostics
    assert diagnostics is not None
    assert set(diagnostics) == {"gap_expert_error", "gap_planner_error", "gap_ratio", "roughness", "basin_width"}
    gap_file = out / "diagnostics" / "seed1" / "gap" / "gap.json"
    assert json.loads(gap_file.read_text())["online_6"]["ratio"] == diagnostics["gap_ratio"]
    assert "## Train-test gap and cost landscape" in report
    gap_written = gap_file.stat().st_mtime_ns
    # Resume: nothing finished is redone; a lost eval cell and an interrupted finetuning are.
    summary = out / "eval" / "seed0" / "base" / "adam_mpc" / "summary.json"
    kept = out / "eval" / "seed1" / "base" / "cem_mpc" / "summary.json"
    before = kept.stat().st_mtime_ns
    summary.unlink()
    (out / "runs" / "seed0" / "online_3").rename(out / "runs" / "seed0" / "online_3.partial")
    again = run_study(both(), out, progress=False)
    assert summary.exists() and kept.stat().st_mtime_ns == before and gap_file.stat().st_mtime_ns == gap_written
    assert (out / "runs" / "seed0" / "online_3").is_dir() and not (out / "runs" / "seed0" / "online_3.partial").exists()
    assert [c for c in again.cells if c.train_seed == 1] == [c for c in grid.cells if c.train_seed == 1]
    assert {m: s[1] for m, s in again.models.items()} == {m: s[1] for m, s in grid.models.items()}
    with pytest.raises(ValueError, match="another spec .*episodes differs"):
        run_study(both(episodes=4), out, progress=False)
    # Extended with a longer online finetuning: made for every seed, the rest kept.
    wider = run_study(both(online_steps=[3, 6, 9]), out, progress=False)
    assert set(wider.models["online_9"]) == {0, 1} and kept.stat().st_mtime_ns == before
    assert json.loads((out / "study.json").read_text())["online_steps"] == [3, 6, 9]
    with pytest.raises(ValueError, match="another spec .*online_steps differs"):
        run_study(both(online_steps=[3]), out, progress=False)  # dropping a length is not extending


def test_a_study_plans_with_the_tasks_pixel_encoder_unless_told():
    assert StudySpec(env="pusht").encoder == "patch" and StudySpec(env="wall").encoder == "conv"
    assert StudySpec(env="pusht", encoder="state").encoder == "state"


def test_a_study_extends_only_by_adding_seeds_lengths_or_strengths():
    stored = dataclasses.asdict(_spec())
    assert extends(stored, dataclasses.asdict(_spec(seeds=[0, 1, 2], adversarial_epochs=[1, 2, 5])))
    assert extends(stored, stored)
    assert not extends(stored, dataclasses.asdict(_spec(seeds=[1, 2])))
    assert not extends(stored, dataclasses.asdict(_spec(encoder="conv")))
    assert spec_changes(stored, dataclasses.asdict(_spec(encoder="conv", seeds=[1]))) == ["encoder", "seeds"]
    assert not extends(stored, dataclasses.asdict(_spec(planner={"steps": 5})))
    # a study made before protocols were recorded planned its MPC cells under the fixed protocol
    older = {k: v for k, v in stored.items() if k != "protocols"}
    assert extends(older, dataclasses.asdict(_spec(protocols=["fixed", "paper"])))
    assert not extends(older, dataclasses.asdict(_spec(protocols=["paper"])))


def test_a_study_plans_its_mpc_cells_under_each_protocol_and_reports_each_apart():
    spec = _spec(protocols=["fixed", "paper"])
    assert [(c.planner, c.mode.mpc, c.protocol) for c in study_cells(spec)] == [
        ("adam", True, "fixed"),
        ("adam", True, "paper"),
        ("adam", False, "fixed"),  # open loop: one plan, the same under either protocol
        ("cem", True, "fixed"),
        ("cem", True, "paper"),
    ]
    with pytest.raises(ValueError, match="unknown protocol 'papers'; choose one of fixed, paper"):
        _spec(protocols=["papers"])


def test_a_study_from_a_demo_adopts_only_what_matches_its_recipe(tmp_path):
    from wmplan.experiments.demo import DemoScale, demo_scale, run_demo
    from wmplan.experiments.study import adopt_demo

    spec = _spec(adversarial_epochs=[1], online_steps=[3], strengths=[1.0])
    shared = {k: spec.finetune_overrides[k] for k in ("online.every", "online.plan_steps")}
    demo = tmp_path / "demo"
    run_demo(
        demo,
        DemoScale(
            episodes=spec.episodes,
            collect_episodes=spec.collect_episodes,
            train={**demo_scale("wall").train, **spec.base_overrides},
            adversarial={"train.epochs": 1, "train.steps_per_epoch": 0, **shared},  # the study's adversarial_e1_x1
            online={"train.epochs": 1, "train.steps_per_epoch": 4, **shared},  # not online_3: trained anew
            planner=spec.planner,
            encoders=("state",),
            cells=(("adam", True, False), ("adam", False, False), ("cem", True, False)),
            objective_check=(),
            gap_windows=2,
            landscape_grid=3,
        ),
        train_seeds=[0, 1],
        progress=False,
    )
    out = tmp_path / "study"
    grid = run_study(spec, out, progress=False, from_demo=demo)
    adopted = json.loads((out / "adopted.json").read_text())["adopted"]
    cells = [
        f"eval/seed{s}/{m}/{c}"
        for s in (0, 1)
        for m in ("base", "adversarial_e1_x1")
        for c in ("adam", "adam_mpc", "cem_mpc")
    ]
    models = [f"runs/seed{s}/{m}" for s in (0, 1) for m in ("base", "adversarial_e1_x1")]
    assert sorted(adopted) == sorted(["data", *models, *cells])
    for s in (0, 1):
        source = demo / "eval" / "state" / f"seed{s}" / "adversarial" / "cem_mpc" / "summary.json"
        copied = out / "eval" / f"seed{s}" / "adversarial_e1_x1" / "cem_mpc" / "summary.json"
        assert copied.read_text() == source.read_text()  # adopted, not planned again
        [cem] = [c for c in grid.cells_of("adversarial_e1_x1", "cem_mpc") if c.train_seed == s]
        assert list(cem.success) == json.loads(source.read_text())["episode_success"]
        demo_base = demo / "runs" / "state" / f"seed{s}" / "base" / "model.safetensors"
        assert (out / "runs" / f"seed{s}" / "base" / "model.safetensors").read_bytes() == demo_base.read_bytes()
        online = json.loads((out / "runs" / f"seed{s}" / "online_3" / "config.json").read_text())
        assert online["config"]["train"]["steps_per_epoch"] == 3 and online["parent_run"].startswith(str(out))
        assert online["config"]["data"]["path"] == str((out / "data").resolve())  # the study's copy, not the demo's
    assert "## Taken from a demo" in (out / "report.md").read_text()
    # another base recipe: only the data; other pairs: the models, not their cells
    assert adopt_demo(demo, tmp_path / "a", _spec(base_overrides={"train.epochs": 2}), "cpu", study_cells(spec)) == [
        "data"
    ]
    other_pairs = adopt_demo(demo, tmp_path / "b", _spec(episodes=4, adversarial_epochs=[1]), "cpu", study_cells(spec))
    assert sorted(other_pairs) == sorted(["data", *models])
    with pytest.raises(ValueError, match="other data"):
        adopt_demo(demo, tmp_path / "c", _spec(collect_episodes=20), "cpu", study_cells(spec))
    # a seed whose base the study trained itself (killed, then rerun with --from-demo): none of the demo's
    # finetunings or cells of that seed are grafted onto it
    (tmp_path / "d" / "runs" / "seed0" / "base").mkdir(parents=True)
    grafted = adopt_demo(demo, tmp_path / "d", spec, "cpu", study_cells(spec))
    assert not [p for p in grafted if "seed0" in p] and [p for p in grafted if "seed1" in p]


def test_the_study_command_refuses_an_unknown_or_repeated_protocol_before_writing(tmp_path, capsys):
    from wmplan.cli import main

    for given, message in (("fixed,papers", "unknown protocol 'papers'"), ("paper,paper", "each protocol once")):
        assert main(["study", "--out", str(tmp_path / "study"), "--protocols", given]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
