"""Writer rule 3: an --out that holds another kind of output (a dataset, a run, an eval result, a demo,
study or sweep folder), or other files where the command needs the folder to itself or --overwrite would
replace them, is refused naming what it holds; nothing on disk changes."""

import json

import pytest

from wmplan.cli import main
from wmplan.output_rule import KINDS, OTHER_FILES, folder_kind

# Each kind as its writer leaves it, by the files wmplan recognises it by.
FOLDERS = {
    "dataset": {".zgroup": "{}", ".zattrs": json.dumps({"format": "wmplan.trajectories/2"})},
    "run": {"config.json": "{}", "checkpoint.json": "{}", "model.safetensors": "x"},
    "eval": {"summary.json": "{}", "episodes.jsonl": "{}\n", "episode_00.gif": "x"},
    "demo": {"demo.json": "{}", "report.md": "# demo", "data/.zattrs": "{}", "runs/conv/base/config.json": "{}"},
    "study": {"study.json": "{}", "grid.json": "{}", "data/.zattrs": "{}"},
    "sweep": {"sweep.json": "{}", "base/adam_open_seed99/cell.json": "{}"},
    "project": {"README.md": "mine", "data/a.csv": "1,2", "runs/notes.txt": "mine"},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    for name, files in FOLDERS.items():
        for path, text in files.items():
            (root / name / path).parent.mkdir(parents=True, exist_ok=True)
            (root / name / path).write_text(text)
    return root


def test_each_kind_is_recognised_by_its_own_files(folders, tmp_path):
    for name in FOLDERS:
        assert folder_kind(folders / name) is (OTHER_FILES if name == "project" else KINDS[name]), name
    assert folder_kind(tmp_path / "missing") is None and folder_kind(tmp_path) is None


# (command line writing into OUT, the folder OUT is, what the error says it holds); DATA and RUN are a
# tiny dataset and run.
LINES = [
    ("collect --env wall --episodes 2 --out OUT", "run", "holds a run, not a wmplan dataset"),
    ("collect --env wall --episodes 2 --overwrite --out OUT", "eval", "holds an eval result, not a wmplan dataset"),
    ("collect --env wall --episodes 2 --append --out OUT", "demo", "holds a demo folder, not a wmplan dataset"),
    (
        "collect --env wall --episodes 2 --overwrite --out OUT",
        "project",
        "not a wmplan dataset (README.md, data, runs)",
    ),
    ("import DATA --from diffusion-policy --env wall --out OUT", "study", "holds a study folder"),
    ("import DATA --from diffusion-policy --env wall --out OUT", "project", "not a wmplan dataset (README.md"),
    ("export DATA --to hf --overwrite --out OUT", "dataset", "holds a wmplan dataset, not a Hugging Face export"),
    ("export DATA --to lerobot --out OUT", "project", "not a LeRobot export (README.md"),
    ("train --data DATA --preset tiny --out OUT", "dataset", "holds a wmplan dataset, not a run"),
    ("train --data DATA --preset tiny --resume --out OUT", "eval", "holds an eval result, not a run"),
    ("finetune --method adversarial --run RUN --out OUT", "demo", "holds a demo folder, not a run"),
    ("eval --run RUN --planner adam --out OUT", "run", "holds a run, not an eval result"),
    ("eval --run RUN --planner adam --overwrite --out OUT", "project", "--overwrite only replaces an eval result"),
    ("gap --run RUN --out OUT", "eval", "holds an eval result, not a gap result"),
    ("landscape --run RUN --resume --out OUT", "dataset", "holds a wmplan dataset, not a landscape result"),
    ("reference --env wall --out OUT", "sweep", "holds a sweep folder, not a reference result"),
    ("demo --episodes 2 --out OUT", "project", "not a demo folder (README.md, data, runs)"),
    ("demo --episodes 2 --resume --out OUT", "study", "holds a study folder, not a demo folder"),
    ("demo --episodes 2 --overwrite --out OUT", "dataset", "holds a wmplan dataset, not a demo folder"),
    ("study --episodes 2 --out OUT", "demo", "holds a demo folder, not a study folder"),
    ("study --episodes 2 --out OUT", "project", "not a study folder (README.md"),
    ("sweep --set models=base:RUN --set planners=adam --out OUT", "demo", "holds a demo folder, not a sweep folder"),
    ("sweep --set models=base:RUN --set planners=adam --out OUT", "run", "holds a run, not a sweep folder"),
]


@pytest.mark.parametrize("line, folder, held", LINES, ids=[f"{f}: {line}" for line, f, _ in LINES])
def test_an_out_holding_another_kind_is_refused_naming_what_it_holds(
    folders, wall_store, tiny_run, tree, capsys, line, folder, held
):
    out = folders / folder
    paths = {"OUT": str(out), "DATA": str(wall_store.path), "RUN": str(tiny_run)}
    argv = [paths.get(token, token.replace("RUN", str(tiny_run))) for token in line.split()]
    before = tree(folders)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(out) in err and held in err, err
    assert tree(folders) == before


def test_a_project_folder_is_never_a_demo_folder(folders, tree, capsys, monkeypatch):
    """`wmplan demo --out .` inside a project: refused before anything is deleted, with or without flags."""
    monkeypatch.chdir(folders / "project")
    before = tree(folders)
    for flags in ([], ["--resume"], ["--overwrite"]):
        assert main(["demo", "--episodes", "2", "--out", ".", *flags]) == 2
        err = capsys.readouterr().err
        assert "not a demo folder" in err or "holds the current folder" in err, err
    assert tree(folders) == before
