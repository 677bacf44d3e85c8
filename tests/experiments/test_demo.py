import json

from wmplan.evaluation.protocols import Mode
from wmplan.experiments.cells import Cell
from wmplan.experiments.demo import CELLS, MODELS, OBJECTIVE_CHECK, DemoScale, run_demo

TINY = {"model.predictor.width": 32, "train.epochs": 1, "train.steps_per_epoch": 5, "model.encoder.pretrain_steps": 10}


def state_only_scale(**changes) -> DemoScale:
    """The smallest demo: the state control alone, tiny planner budgets, no objective check."""
    values = dict(
        collect_episodes=12,
        preset="tiny",
        train=TINY,
        adversarial={"train.epochs": 1, "train.steps_per_epoch": 2},
        online={"train.epochs": 1, "train.steps_per_epoch": 2, "online.windows": 2},
        planner={"steps": 3, "samples": 8, "topk": 2, "iterations": 1},
        gap_windows=2,
        landscape_grid=3,
        encoders=("state",),
        objective_check=(),
    )
    return DemoScale(**{**values, **changes})


def test_demo_runs_end_to_end_and_writes_every_cell_figure_and_command(tmp_path):
    scale = DemoScale(
        episodes=2,
        collect_episodes=12,
        preset="tiny",
        train=TINY,
        adversarial={"train.epochs": 1, "train.steps_per_epoch": 3},
        online={"train.epochs": 1, "train.steps_per_epoch": 3, "online.windows": 2},
        planner={"steps": 4, "samples": 16, "topk": 4, "iterations": 2},
        mpc={"replans": 2},
        gap_windows=3,
        landscape_grid=5,
    )
    out = tmp_path / "demo"
    report = run_demo(out, scale, progress=False)
    assert (out / "report.md").read_text() == report
    for encoder in ("conv", "state"):
        for model in MODELS:
            for planner, mpc, bounded in CELLS:
                summary = json.loads(
                    (
                        out / "eval" / encoder / model / Cell(planner, Mode(mpc, bounded)).name / "summary.json"
                    ).read_text()
                )
                assert summary["planner_config"].get("bounded", False) == bounded and summary["mpc"] == mpc
                assert summary["encoder"] == encoder and summary["planning_calls"] == (2 if mpc else 1)
        assert (out / "gap" / encoder / "gap.png").exists() and (out / "landscape" / encoder / "landscape.png").exists()
    assert (out / "efficiency.png").exists()
    rows = [
        line for line in report.splitlines() if line.startswith(("| base |", "| Online WM |", "| Adversarial WM |"))
    ]
    # per encoder: 3 models x (open, MPC, MPC bounded) success rows and reached rows + 3 gap/landscape rows
    # + 3 rows of MPC under the paper protocol
    assert len(rows) == 2 * (9 + 9 + 3 + 3)
    kind_rows = [
        line for line in report.splitlines() if line.startswith(("| base,", "| Online WM,", "| Adversarial WM,"))
    ]
    assert len(kind_rows) == 2 * (9 + 3)  # every cell split by pair kind, both protocols
    for model in MODELS:  # every unbounded MPC cell planned again under the paper protocol, capped at 20 plans
        for planner in ("gd", "adam", "cem"):
            paper = json.loads((out / "eval" / "state" / model / f"{planner}_mpc_paper" / "summary.json").read_text())
            assert paper["protocol"] == "paper" and paper["mpc_config"] == {"replans": 20, "execute": 5, "hold": False}
            assert 1 <= min(paper["episode_replans"]) and max(paper["episode_replans"]) <= 20
    assert "MPC under the paper protocol, beside the paper's Table 1" in report
    assert "--protocol paper" in report and "the loop uses the simulator's success test" in report
    assert "Success % by pair kind (direct / detour" in report and "| base, MPC (paper protocol) |" in report
    assert (out / "door_path" / "conv" / "door_path.png").exists() and "latent cost rises before it falls on" in report
    assert "wmplan finetune --method online" in report and "--set planner.bounded=true" in report
    assert "the authors' own rerun measured 32%" in report  # the paper's other figure for a Wall cell, beside it
    for method in ("online", "adversarial"):
        meta = json.loads((out / "runs" / "state" / method / "config.json").read_text())
        assert meta["method"] == method and meta["parent_run"] == str(out / "runs" / "state" / "base")
    # the simulator reference on the same pairs, in the report and in grid.json with every cell
    reference = json.loads((out / "reference" / "summary.json").read_text())
    assert reference["episodes"] == 2 and reference["method"] == "cem_in_simulator"
    assert f"reaches {100 * reference['success_rate']:.0f}% success" in report
    grid = json.loads((out / "grid.json").read_text())
    assert grid["task"] == "wall" and grid["reference"]["success_rate"] == reference["success_rate"]
    assert grid["encoders"]["conv"]["pixels"] and not grid["encoders"]["state"]["pixels"]
    assert 0.9 < grid["encoders"]["state"]["latent_distance_spearman"] <= 1  # the state is the true distance itself
    assert (
        grid["encoders"]["conv"]["copy_last_loss"] > 0 and 0 < grid["encoders"]["conv"]["latent_distance_spearman"] <= 1
    )
    assert len(grid["cells"]) == 2 * (len(MODELS) * len(CELLS) + len(OBJECTIVE_CHECK) + len(MODELS) * 3)
    assert grid["format"] == 3 and grid["kind"] == "demo"
    assert grid["tuning_seed"] != grid["cells"][0]["pair_seed"] == 99
    assert set(grid["references"]) == {"open loop", "fixed", "paper"}
    paper_reference = json.loads((out / "reference_mpc_paper" / "summary.json").read_text())
    assert grid["references"]["paper"]["success_rate"] == paper_reference["success_rate"]
    assert grid["references"]["paper"]["max_replans"] == 20 and grid["references"]["fixed"]["max_replans"] == 2
    for c in grid["cells"]:  # per-episode outcomes: every rate recomputable from the file
        assert [e["pair"] for e in c["episodes"]] == [0, 1]
        assert c["success_rate"] == sum(e["success"] for e in c["episodes"]) / 2
        assert c["protocol"] in ("fixed", "paper")
        planned = json.loads((out / c["folder"] / "summary.json").read_text())  # each cell names its own folder
        assert [e["success"] for e in c["episodes"]] == planned["episode_success"]
        assert (planned["planner"], planned["protocol"]) == (c["planner"], c["protocol"])
    adam_mpc = json.loads((out / "eval" / "state" / "online" / "adam_mpc" / "summary.json").read_text())
    [cell] = [
        c
        for c in grid["cells"]
        if (c["encoder"], c["model"], c["planner"], c["mpc"], c["bounded"], c["protocol"])
        == ("state", "online", "adam", True, False, "fixed")
    ]
    assert cell["success_rate"] == adam_mpc["success_rate"] and cell["seconds_per_plan"] == adam_mpc["seconds_per_plan"]
    assert cell["mpc_execute"] == 5 and "an MPC episode makes 2 calls and executes 5 model steps of each" in report
    # the base model planned with the other objective mode too, beside the default in the report
    modes = {
        c["objective"]
        for c in grid["cells"]
        if (c["encoder"], c["model"], c["planner"], c["mpc"], c["protocol"]) == ("conv", "base", "cem", True, "fixed")
    }
    assert modes == {"last", "all"} and "| cem | MPC | last: " in report and "| cem | open loop | last: " in report


def test_demo_of_a_deformable_task_reports_the_chamfer_distance(tmp_path):
    from wmplan.experiments.demo import demo_scale

    scale = demo_scale(
        "rope",
        episodes=2,
        collect_episodes=8,
        preset="tiny",
        train=TINY,
        cells=CELLS[:1],
        adversarial={"train.epochs": 1, "train.steps_per_epoch": 2},
        online={"train.epochs": 1, "train.steps_per_epoch": 2, "online.windows": 2},
        planner={"steps": 3},
        gap_windows=2,
        landscape_grid=3,
        objective_check=(),
        reference_candidates=4,
    )
    report = run_demo(tmp_path / "demo", scale, env="rope", progress=False)
    summary = json.loads((tmp_path / "demo" / "eval" / "conv" / "base" / "gd" / "summary.json").read_text())
    assert summary["distance"] == "Chamfer distance"
    assert f"| base | open loop | {summary['mean_final_distance']:.3f} (" in report
    assert f"the starts are {summary['mean_initial_distance']:.3f} from their goals" in report
    assert "paired tests over the same pairs, by minus the mean final distance" in report
    reference = json.loads((tmp_path / "demo" / "reference" / "summary.json").read_text())
    assert (
        reference["method"] == "greedy_pushes_in_simulator"
        and reference["pushes"] == 10
        and reference["candidates"] == 4
    )


def test_demo_with_several_training_seeds_pools_each_cell_over_them(tmp_path):
    scale = state_only_scale(episodes=3, cells=(("adam", False, False), ("cem", False, False)))
    out = tmp_path / "demo"
    report = run_demo(out, scale, train_seeds=[0, 1], progress=False)
    grid = json.loads((out / "grid.json").read_text())
    assert len(grid["cells"]) == len(MODELS) * 2
    for c in grid["cells"]:
        per_seed = [
            json.loads((out / "eval" / "state" / f"seed{s}" / c["model"] / c["planner"] / "summary.json").read_text())
            for s in (0, 1)
        ]
        assert c["train_seeds"] == [0, 1] and c["folder"] == c["seed_folders"][0]
        assert c["seed_folders"] == [f"eval/state/seed{s}/{c['model']}/{c['planner']}" for s in (0, 1)]
        assert c["seed_success_rates"] == [s["success_rate"] for s in per_seed]
        assert abs(c["success_rate"] - (per_seed[0]["success_rate"] + per_seed[1]["success_rate"]) / 2) < 1e-12
    # two differently seeded base models (same data), each reported, and the pooled cells with their range
    weights = [(out / "runs" / "state" / f"seed{s}" / "base" / "model.safetensors").read_bytes() for s in (0, 1)]
    assert weights[0] != weights[1]
    assert "Models (training seed 0):" in report and "Models (training seed 1):" in report
    assert "trained with each of the seeds 0, 1 on the same data" in report
    base_adam = next(c for c in grid["cells"] if (c["model"], c["planner"]) == ("base", "adam"))
    low, high = (round(100 * r) for r in sorted(base_adam["seed_success_rates"]))
    assert f"| base | open loop | - | {100 * base_adam['success_rate']:.0f} [{low}-{high}] · " in report
    assert "for s in 0 1; do" in report and "--set train.seed=$s" in report
    assert (out / "gap" / "state" / "gap.png").exists()  # on the first seed's models


def test_a_resumed_demo_redoes_only_what_a_kill_left_unfinished_and_refuses_other_arguments(tmp_path):
    scale = state_only_scale(episodes=2, cells=(("adam", False, False), ("cem", True, False)))
    out = tmp_path / "demo"
    first = run_demo(out, scale, progress=False)
    runs, evals = out / "runs" / "state", out / "eval" / "state"
    kept_cell = (evals / "base" / "adam" / "summary.json").read_text()  # seconds_per_plan differs on a rerun
    kept_model = (runs / "base" / "model.safetensors").stat().st_mtime_ns
    kept_references = {f: (out / f / "summary.json").read_text() for f in ("reference", "reference_mpc_paper")}
    (out / "reference_mpc_fixed" / "summary.json").unlink()  # a reference the kill interrupted
    lost_cell = json.loads((evals / "online" / "cem_mpc" / "summary.json").read_text())
    # what a kill leaves: a cell without its summary, a finetuning half written
    (evals / "online" / "cem_mpc" / "summary.json").unlink()
    (runs / "adversarial").rename(runs / "adversarial.partial")
    (runs / "adversarial.partial" / "model.safetensors").unlink()
    resumed = run_demo(out, scale, progress=False, resume=True)
    assert (evals / "base" / "adam" / "summary.json").read_text() == kept_cell
    assert (runs / "base" / "model.safetensors").stat().st_mtime_ns == kept_model
    assert {f: (out / f / "summary.json").read_text() for f in kept_references} == kept_references  # seconds too
    assert (out / "reference_mpc_fixed" / "summary.json").exists()
    assert not (runs / "adversarial.partial").exists() and (runs / "adversarial" / "model.safetensors").exists()
    redone = json.loads((evals / "online" / "cem_mpc" / "summary.json").read_text())
    assert redone["episode_success"] == lost_cell["episode_success"]  # the same model, pairs and random streams
    assert redone["episode_final_distance"] == lost_cell["episode_final_distance"]
    timings = json.loads((out / "timings.json").read_text())
    assert list(timings)[-1] == "total" and timings["total"] >= timings["state: train"] > 0
    assert resumed.count("| total |") == first.count("| total |") == 1
    try:
        run_demo(out, DemoScale(**{**scale.__dict__, "episodes": 3}), progress=False, resume=True)
    except ValueError as e:
        assert "--resume" in str(e) and "demo.json: scale.episodes differs" in str(e)
    else:
        raise AssertionError("a resume with other arguments must be refused")
    assert (evals / "base" / "adam" / "summary.json").read_text() == kept_cell  # nothing written was lost


def test_demo_cells_planned_by_two_workers_equal_one_thread_in_process(tmp_path):
    import torch

    scale = state_only_scale(episodes=2, cells=(("adam", True, False), ("cem", False, False)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker plans with; the models, trained in this process, the same
    try:
        run_demo(tmp_path / "one", scale, progress=False)
        report = run_demo(tmp_path / "two", scale, progress=False, workers=2)
    finally:
        torch.set_num_threads(threads)
    for model in MODELS:
        for cell in ("adam_mpc", "cem"):
            one, two = (
                json.loads((tmp_path / d / "eval" / "state" / model / cell / "summary.json").read_text())
                for d in ("one", "two")
            )
            assert one["episode_success"] == two["episode_success"]
            assert one["episode_final_distance"] == two["episode_final_distance"]
    assert "eval cells planned by 2 one-thread processes at once" in report


def test_demo_preset_quick_and_encoders_reach_the_scale(monkeypatch, capsys, tmp_path):
    from wmplan.cli import main
    from wmplan.experiments import demo

    asked = []
    monkeypatch.setattr(demo, "run_demo", lambda out, scale, **kwargs: asked.append(scale) or "report")
    assert main(["demo", "--preset", "quick", "--encoders", "jepa,state", "--out", str(tmp_path / "unused")]) == 0
    assert asked[0].preset == "tiny" and asked[0].episodes == demo.QUICK["episodes"]
    assert asked[0].encoders == ("jepa", "state") and asked[0].planner == demo.QUICK["planner"]
    assert (
        main(["demo", "--preset", "quick", "--episodes", "3", "--out", str(tmp_path / "unused")]) == 0
        and asked[1].episodes == 3
    )
    assert main(["demo", "--preset", "quick", "--full", "--out", str(tmp_path / "unused")]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_the_report_says_where_each_tasks_planning_defaults_were_chosen():
    from wmplan.experiments.demo_report import _defaults_origin

    for env in ("wall", "pointmaze", "pusht"):
        assert "chosen on other pairs, seed 7" in _defaults_origin(env)
    assert "without a search" in _defaults_origin("rope")


def test_a_task_whose_defaults_were_chosen_on_the_report_pairs_is_reported_so(monkeypatch):
    import dataclasses

    from wmplan.experiments import demo_report
    from wmplan.tasks import task_spec

    spec = task_spec("pusht")
    flattered = dataclasses.replace(spec, planning=dataclasses.replace(spec.planning, chosen_on="report"))
    monkeypatch.setattr(demo_report, "task_spec", lambda env: flattered)
    origin = demo_report._defaults_origin("pusht")
    assert "chosen on these report pairs" in origin and "other pairs" not in origin
