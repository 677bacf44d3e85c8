"""`wmplan train --config FILE`: the keys of --set from a YAML or JSON file, nested or dotted; a key it shares with
--set or a flag must agree; an unknown key, or a missing, unreadable or ill-formed file, is refused in one line
naming the file (exit status 2) before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wmplan.cli import main
from wmplan.data.collect import collect


class TrainingStarted(Exception):
    """Raised in place of training: the command line got past every check, with this run config."""

    def __init__(self, cfg):
        super().__init__("training started")
        self.cfg = cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config_file") / "data"
    collect("wall", path, episodes=2, seed=0, progress=False, collector_settings={"steps": 5})
    return path


@pytest.fixture
def no_training(monkeypatch):
    def started(cfg, out, **kwargs):
        raise TrainingStarted(cfg)

    monkeypatch.setattr("wmplan.training.trainer.train", started)


def trained_config(data: Path, out: Path, *extra: str):
    """The run config `wmplan train` would train with, given `extra` options."""
    with pytest.raises(TrainingStarted) as started:
        main(["train", "--data", str(data), "--out", str(out), "--preset", "tiny", *extra])
    return started.value.cfg


def refusal(capsys, data: Path, out: Path, *extra: str) -> str:
    """The one-line error of a refused `wmplan train` (exit status 2), which created nothing."""
    code = main(["train", "--data", str(data), "--out", str(out), "--preset", "tiny", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and err.startswith("wmplan train: error: "), (code, err)
    assert not out.exists()
    return err


def test_a_yaml_or_json_file_sets_run_keys_nested_or_dotted(data, tmp_path, no_training):
    (tmp_path / "run.yaml").write_text(
        "model:\n  encoder: {name: state}\n  predictor:\n    depth: 1\ntrain.epochs: 2\ntrain:\n  batch_size: 8\n"
        "  lr_predictor: 2.0e-3\ndata: {num_hist: 1}\n"
    )
    cfg = trained_config(data, tmp_path / "run", "--config", str(tmp_path / "run.yaml"))
    assert cfg.model.encoder.name == "state" and cfg.model.predictor.depth == 1 and cfg.data.num_hist == 1
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr_predictor) == (2, 8, 2e-3)
    assert cfg.train.steps_per_epoch == 60 and cfg.model.predictor.heads == 2  # the rest is the tiny preset's
    flat = {"model.encoder.name": "state", "model.predictor.depth": 1, "train.epochs": 2, "train.batch_size": 8}
    (tmp_path / "run.json").write_text(json.dumps({**flat, "train.lr_predictor": 0.002, "data": {"num_hist": 1}}))
    assert trained_config(data, tmp_path / "run", "--config", str(tmp_path / "run.json")) == cfg
    sets = [
        w for k, v in {**flat, "train.lr_predictor": 0.002, "data.num_hist": 1}.items() for w in ("--set", f"{k}={v}")
    ]
    assert trained_config(data, tmp_path / "run", *sets) == cfg  # the same keys as --set, with the same effect


def test_the_file_and_a_set_or_a_flag_must_give_a_key_the_same_value(data, tmp_path, no_training, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epochs: 2\n  lr_predictor: 0.001\nmodel.encoder.name: state\n")
    same = ["--config", str(config), "--set", "train.epochs=2", "--epochs", "2", "--set", "train.lr_predictor=1e-3"]
    cfg = trained_config(data, tmp_path / "run", *same, "--encoder", "state", "--set", "train.seed=4")
    assert (cfg.train.epochs, cfg.train.lr_predictor, cfg.train.seed) == (2, 1e-3, 4)  # --set adds keys to the file's

    err = refusal(capsys, data, tmp_path / "run", "--config", str(config), "--set", "train.epochs=3")
    assert f"train.epochs=2 in --config {config} and --set train.epochs=3 give train.epochs two values" in err
    err = refusal(capsys, data, tmp_path / "run", "--config", str(config), "--encoder", "conv")
    assert f"--encoder conv and model.encoder.name=state in --config {config}" in err
    err = refusal(capsys, data, tmp_path / "run", "--config", str(config), "--set", "train.lr_predictor=0.01")
    assert "train.lr_predictor=0.001" in err and "--set train.lr_predictor=0.01" in err


def test_an_unknown_key_is_refused_as_a_set_of_it_is(data, tmp_path, no_training, capsys):
    (tmp_path / "typo.yaml").write_text("train:\n  epochz: 2\n")
    from_file = refusal(capsys, data, tmp_path / "run", "--config", str(tmp_path / "typo.yaml"))
    assert from_file == refusal(capsys, data, tmp_path / "run", "--set", "train.epochz=2")
    assert "unknown config key 'train.epochz'; valid keys: " in from_file and "train.epochs" in from_file


BAD_FILES = [  # (file name, its bytes or None for no file, words the error must hold besides the file's name)
    ("missing.yaml", None, "does not exist"),
    ("broken.yaml", b"train: [1\n", "is not valid YAML (expected ',' or ']'"),
    ("colon.yaml", b"train: epochs: 2\n", "is not valid YAML (mapping values are not allowed here at line 1"),
    ("broken.json", b'{"train": ', "is not valid JSON"),
    ("empty.yaml", b"", "must hold a mapping of run config keys (key: value lines), got nothing"),
    ("list.json", b"[1, 2]", "must hold a mapping of run config keys (key: value lines), got a list"),
    ("null.yaml", b"train:\n  epochs:\n", "gives train.epochs no value"),
    ("twice.yaml", b"train:\n  epochs: 2\ntrain.epochs: 3\n", "gives train.epochs twice"),
    ("typed.yaml", b"train:\n  epochs: many\n", "train.epochs in --config {file} expects a whole number, got 'many'"),
    ("binary.yaml", b"\xff\xfe\x00\x01", "is not a text file"),
]


@pytest.mark.parametrize(("name", "content", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_missing_or_ill_formed_file_is_refused_naming_it(data, tmp_path, no_training, capsys, name, content, words):
    config = tmp_path / name
    if content is not None:
        config.write_bytes(content)
    err = refusal(capsys, data, tmp_path / "run", "--config", str(config))
    assert str(config) in err and words.format(file=config) in err, err


def test_a_folder_or_an_unreadable_file_is_refused_naming_it(data, tmp_path, no_training, capsys, monkeypatch):
    err = refusal(capsys, data, tmp_path / "run", "--config", str(tmp_path))
    assert f"settings file {tmp_path} is a folder" in err
    config = tmp_path / "locked.yaml"
    config.write_text("train.epochs: 2\n")
    read_text = Path.read_text

    def denied(self, *args, **kwargs):  # as chmod 000 would be (a test run as root reads any file)
        if self == config:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    err = refusal(capsys, data, tmp_path / "run", "--config", str(config))
    assert f"cannot read {config} (Permission denied)" in err


def test_an_out_that_holds_the_config_file_is_refused(data, tmp_path, no_training, capsys, tree):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.yaml").write_text("train.epochs: 2\n")
    before = tree(out)
    assert main(["train", "--data", str(data), "--out", str(out), "--config", str(out / "run.yaml")]) == 2
    assert "holds the config file" in capsys.readouterr().err and tree(out) == before
