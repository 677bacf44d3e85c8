import json

import pytest

from wmplan.models.run_folder import RUN_FORMAT, RunFolder
from wmplan.models.world_model import WorldModel


def test_a_run_reads_back_its_config_metrics_and_format(tiny_run):
    folder = RunFolder(tiny_run)
    meta = folder.meta()
    assert meta["format"] == RUN_FORMAT and folder.config().model.encoder.name == "state"
    assert folder.dataset()["fingerprint"] and len(folder.metrics()) == folder.config().train.epochs


def test_a_newer_format_and_a_missing_run_are_refused_by_name(tiny_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no run"):
        RunFolder(tmp_path).meta()
    copy = tmp_path / "run"
    copy.mkdir()
    for f in ("config.json", "model.safetensors", "normalization.json"):
        (copy / f).write_bytes((tiny_run / f).read_bytes())
    meta = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**meta, "format": RUN_FORMAT + 1}))
    with pytest.raises(ValueError, match=f"has format {RUN_FORMAT + 1}, newer than this wmplan reads"):
        WorldModel.load(copy)
    del meta["format"]  # a run written before the field existed reads as format 1
    (copy / "config.json").write_text(json.dumps(meta))
    assert WorldModel.load(copy).cfg == RunFolder(tiny_run).config()


def test_a_trained_model_takes_new_training_settings_but_not_another_architecture(tiny_run):
    import dataclasses

    model = WorldModel.load(tiny_run)
    longer = dataclasses.replace(model.cfg, train=dataclasses.replace(model.cfg.train, epochs=9))
    model.use_config(longer)
    assert model.cfg.train.epochs == 9
    other = dataclasses.replace(model.cfg, data=dataclasses.replace(model.cfg.data, num_hist=3))
    with pytest.raises(ValueError, match="cannot change data.num_hist"):
        model.use_config(other)
