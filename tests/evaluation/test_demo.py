from wmplan.evaluation.demo import run_demo


def test_demo_runs_end_to_end_and_writes_the_report(tmp_path):
    report = run_demo(
        tmp_path / "demo", episodes=2, progress=False, preset_name="tiny", collect_episodes=12,
        train_overrides={"train.epochs": 1, "train.steps_per_epoch": 5, "model.encoder.pretrain_steps": 10},
    )
    assert (tmp_path / "demo" / "report.md").read_text() == report
    for name in ("gd", "adam", "cem", "gd_mpc", "adam_mpc", "cem_mpc"):
        assert (tmp_path / "demo" / "eval" / name / "summary.json").exists()
    table_rows = [line for line in report.splitlines() if line.startswith("| GD") or line.startswith("| Adam") or line.startswith("| CEM")]
    assert len(table_rows) == 6
