import json

from wmplan.evaluation.demo import CELLS, MODELS, DemoScale, cell_name, run_demo

TINY = {"model.predictor.width": 32, "train.epochs": 1, "train.steps_per_epoch": 5, "model.encoder.pretrain_steps": 10}


def test_demo_runs_end_to_end_and_writes_every_cell_figure_and_command(tmp_path):
    scale = DemoScale(episodes=2, collect_episodes=12, preset="tiny", train=TINY,
                      adversarial={"train.epochs": 1, "train.steps_per_epoch": 3},
                      online={"train.epochs": 1, "train.steps_per_epoch": 3, "online.windows": 2},
                      planner={"steps": 4, "samples": 16, "topk": 4, "iterations": 2}, mpc={"replans": 2},
                      gap_windows=3, landscape_grid=5)
    out = tmp_path / "demo"
    report = run_demo(out, scale, progress=False)
    assert (out / "report.md").read_text() == report
    for encoder in ("conv", "state"):
        for model in MODELS:
            for planner, mpc, bounded in CELLS:
                summary = json.loads((out / "eval" / encoder / model / cell_name(planner, mpc, bounded) / "summary.json").read_text())
                assert summary["planner_config"].get("bounded", False) == bounded and summary["mpc"] == mpc
                assert summary["encoder"] == encoder and summary["planning_calls"] == (2 if mpc else 1)
        assert (out / "gap" / encoder / "gap.png").exists() and (out / "landscape" / encoder / "landscape.png").exists()
    assert (out / "efficiency.png").exists()
    rows = [line for line in report.splitlines() if line.startswith(("| base", "| Online", "| Adversarial"))]
    # per encoder: 3 models x (open, MPC, MPC bounded) success rows and reached rows + 3 gap/landscape rows
    assert len(rows) == 2 * (9 + 9 + 3)
    assert "wmplan finetune --method online" in report and "--set planner.bounded=true" in report
    for method in ("online", "adversarial"):
        meta = json.loads((out / "runs" / "state" / method / "config.json").read_text())
        assert meta["method"] == method and meta["parent_run"] == str(out / "runs" / "state" / "base")


def test_demo_of_a_deformable_task_reports_the_chamfer_distance(tmp_path):
    from wmplan.evaluation.demo import demo_scale

    scale = demo_scale("rope", episodes=2, collect_episodes=8, preset="tiny", train=TINY, cells=CELLS[:1],
                       adversarial={"train.epochs": 1, "train.steps_per_epoch": 2},
                       online={"train.epochs": 1, "train.steps_per_epoch": 2, "online.windows": 2},
                       planner={"steps": 3}, gap_windows=2, landscape_grid=3)
    report = run_demo(tmp_path / "demo", scale, env="rope", progress=False)
    summary = json.loads((tmp_path / "demo" / "eval" / "conv" / "base" / "gd" / "summary.json").read_text())
    assert summary["distance"] == "Chamfer distance"
    assert f"| base | open loop | {summary['mean_final_distance']:.3f} (" in report
    assert f"the starts are {summary['mean_initial_distance']:.3f} from their goals" in report
    assert "checked on the point estimates above, by mean final distance" in report
