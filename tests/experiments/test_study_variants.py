"""The authors' code versions of a study's middle settings, finetuned and compared on the study's pairs."""

import json

import pytest

from wmplan.evaluation.multiple import NO_DIFFERENCE, VERDICTS
from wmplan.experiments.study import run_study
from wmplan.experiments.study_variants import CODE_VERSIONS, middle_settings, run_variants
from wmplan.models.run_folder import RunFolder

from .test_study import _spec


def test_the_code_versions_are_finetuned_from_the_seeds_base_and_compared_on_the_studys_pairs(tmp_path):
    out = tmp_path / "study"
    spec = _spec(seeds=[0], strengths=[1.0])
    run_study(spec, out, progress=False)
    assert middle_settings(spec) == {"adversarial": "adversarial_e2_x1", "online": "online_6"}
    with pytest.raises(ValueError, match="has no training seed 1"):
        run_variants(out, seed=1, progress=False)
    rows = run_variants(out, seed=0, progress=False)
    for method, setting in middle_settings(spec).items():
        code = RunFolder(out / "runs" / "seed0" / f"{setting}_code").meta()
        ours = RunFolder(out / "runs" / "seed0" / setting).meta()
        assert code["parent_fingerprint"] == ours["parent_fingerprint"]  # the same base model
        for key, value in CODE_VERSIONS[method].items():
            section, name = key.split(".")
            assert code["config"][section][name] == value and ours["config"][section][name] != value
        assert code["config"]["train"] == ours["config"]["train"]  # the same length
    assert [(r["setting"], r["cell"]) for r in rows] == [
        (setting, cell) for setting in ("adversarial_e2_x1", "online_6") for cell in ("adam_mpc", "adam", "cem_mpc")
    ]
    for row in rows:
        ours = json.loads((out / "eval" / "seed0" / row["setting"] / row["cell"] / "summary.json").read_text())
        code = json.loads(
            (out / "eval" / "seed0" / f"{row['setting']}_code" / row["cell"] / "summary.json").read_text()
        )
        assert code["seed"] == ours["seed"] and code["episodes"] == ours["episodes"] == 3  # the same pairs
        assert row["study_success"] == ours["success_rate"] and row["code_success"] == code["success_rate"]
        assert row["difference"] == pytest.approx(code["success_rate"] - ours["success_rate"])
        base = json.loads((out / "eval" / "seed0" / "base" / row["cell"] / "summary.json").read_text())
        assert row["base_success"] == base["success_rate"] and row["p_holm"] >= row["p_value"]
        for version, cell in (("study_vs_base", ours), ("code_vs_base", code)):
            effect = row[version]
            assert effect["difference"] == pytest.approx(cell["success_rate"] - base["success_rate"])
            assert effect["p_holm"] >= effect["p_value"] and effect["verdict"] in (*VERDICTS, NO_DIFFERENCE)
    written = json.loads((out / "variants.json").read_text())
    assert written["rows"] == rows and "Holm-adjusted over the 6 rows" in (out / "variants.md").read_text()
    kept = out / "eval" / "seed0" / "online_6_code" / "cem_mpc" / "summary.json"
    before = kept.stat().st_mtime_ns
    assert run_variants(out, seed=0, progress=False) == rows and kept.stat().st_mtime_ns == before  # resumed


def test_the_study_command_refuses_code_versions_of_a_seed_it_does_not_train_before_writing(tmp_path):
    from wmplan.cli import main

    with pytest.raises(SystemExit, match=r"--code-versions 5: not one of the study's --seeds \[0, 1\]"):
        main(["study", "--out", str(tmp_path / "study"), "--seeds", "0,1", "--code-versions", "5"])
    assert not (tmp_path / "study").exists()
