"""Settings files (wmplan.settings_file): one reader for train's and sweep's --config, and the flattening of
nested mappings to the dotted keys --set takes."""

from __future__ import annotations

import pytest

from wmplan.experiments.sweep_spec import load_spec
from wmplan.settings_file import dotted_settings, read_settings_file


def test_yaml_and_json_files_hold_the_same_settings(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  epochs: 2\n  lr: 1.0e-3\nname: state\nsizes: [1, 2]\n")
    (tmp_path / "a.yml").write_text("{train: {epochs: 2, lr: 0.001}, name: state, sizes: [1, 2]}\n")
    (tmp_path / "a.json").write_text('{"train": {"epochs": 2, "lr": 0.001}, "name": "state", "sizes": [1, 2]}')
    (tmp_path / "a.conf").write_text('{"train": {"epochs": 2, "lr": 0.001}, "name": "state", "sizes": [1, 2]}')
    expected = {"train": {"epochs": 2, "lr": 0.001}, "name": "state", "sizes": [1, 2]}
    for name in ("a.yaml", "a.yml", "a.json", "a.conf"):  # any suffix but .yaml and .yml is JSON
        assert read_settings_file(tmp_path / name) == expected, name
    (tmp_path / "b.conf").write_text("train: 1\n")
    with pytest.raises(ValueError, match=r"b.conf is not valid JSON .*; a .yaml or .yml file is read as YAML"):
        read_settings_file(tmp_path / "b.conf")


def test_nested_mappings_become_dotted_keys_and_a_key_given_twice_is_refused():
    nested = {"model": {"encoder": {"name": "state"}, "predictor": {}}, "train.epochs": 2, "task": "wall"}
    assert dotted_settings(nested) == {"model.encoder.name": "state", "train.epochs": 2, "task": "wall"}
    assert dotted_settings({"sizes": [1, 2], "a": {"b": None}}) == {"sizes": [1, 2], "a.b": None}  # lists stay values
    with pytest.raises(ValueError, match="run.yaml gives train.epochs twice"):
        dotted_settings({"train": {"epochs": 2}, "train.epochs": 2}, "run.yaml")


def test_sweep_reads_its_file_with_the_same_reader(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="sweep.yaml does not exist; give a YAML or JSON file of sweep settings"
    ):
        load_spec(tmp_path / "sweep.yaml")
    (tmp_path / "sweep.yaml").write_text("models: [runs/a\n")
    with pytest.raises(ValueError, match=r"sweep.yaml is not valid YAML \(.* at line 2, column 1\)"):
        load_spec(tmp_path / "sweep.yaml")
    (tmp_path / "sweep.yaml").write_text("- runs/a\n")
    with pytest.raises(ValueError, match="must hold a mapping of sweep settings"):
        load_spec(tmp_path / "sweep.yaml")
