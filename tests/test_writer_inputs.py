"""Writer rule 2: an --out that is, holds or lies inside one of the command's inputs (dataset, run, source,
demo, a sweep's models) is refused naming both paths, and so is an empty --out; nothing on disk changes."""

import json

import pytest

from wmplan.cli import main

# (command line, the relation, the input); DATA and RUN are a tiny dataset and a run trained on it, and
# their parent folders DATA_PARENT and RUN_PARENT hold nothing else.
LINES = [
    ("train --data DATA --preset tiny --out DATA", "is the dataset", "DATA"),
    ("train --data DATA --preset tiny --out DATA/run", "lies inside the dataset", "DATA"),
    ("train --data DATA --preset tiny --out DATA_PARENT", "holds the dataset", "DATA"),
    ("finetune --method online --run RUN --preset tiny --out RUN/online", "lies inside the parent run", "RUN"),
    ("finetune --method online --run RUN --preset tiny --out DATA/online", "lies inside the dataset", "DATA"),
    ("eval --run RUN --planner adam --out RUN/eval", "lies inside the run", "RUN"),
    ("eval --run RUN --planner adam --overwrite --out RUN_PARENT", "holds the run", "RUN"),
    ("gap --run RUN --out RUN", "is the run", "RUN"),
    ("gap --run RUN --out DATA/gap", "lies inside the dataset", "DATA"),
    ("landscape --run RUN --out RUN_PARENT", "holds the run", "RUN"),
    ("export DATA --to hf --overwrite --out DATA_PARENT", "holds the dataset", "DATA"),
    ("export DATA --to lerobot --out DATA/lerobot", "lies inside the dataset", "DATA"),
    ("import DATA --from diffusion-policy --env wall --overwrite --out DATA", "is the source", "DATA"),
    ("import DATA --from diffusion-policy --env wall --out DATA_PARENT", "holds the source", "DATA"),
    ("study --from-demo DEMO --out DEMO/study", "lies inside the demo", "DEMO"),
    ("sweep --set models=base:RUN --set planners=adam --out RUN_PARENT", "holds the model base", "RUN"),
]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "demo"
    folder.mkdir()
    (folder / "demo.json").write_text(json.dumps({"env": "wall"}))
    return folder


@pytest.mark.parametrize("line, relation, source", LINES, ids=[line for line, _, _ in LINES])
def test_an_out_that_is_holds_or_lies_inside_an_input_is_refused_naming_both(
    wall_store, tiny_run, demo_folder, tree, capsys, line, relation, source
):
    paths = {
        "DATA": str(wall_store.path),
        "RUN": str(tiny_run),
        "DEMO": str(demo_folder),
        "DATA_PARENT": str(wall_store.path.parent),
        "RUN_PARENT": str(tiny_run.parent),
    }
    argv = [_expand(token, paths) for token in line.split()]
    out = argv[argv.index("--out") + 1]
    roots = (wall_store.path.parent, tiny_run.parent, demo_folder.parent)
    before = {root: tree(root) for root in roots}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{out} {relation} {paths[source]}" in err, err
    assert before == {root: tree(root) for root in roots}


def _expand(token: str, paths: dict[str, str]) -> str:
    """DATA/run -> <the dataset's path>/run; models=base:RUN -> models=base:<the run's path>."""
    for name in sorted(paths, key=len, reverse=True):
        token = token.replace(name, paths[name])
    return token


EMPTY_OUT = [
    "collect --env wall --episodes 2",
    "import SOURCE --from diffusion-policy --env wall",
    "export SOURCE --to hf",
    "train --data SOURCE --preset tiny",
    "finetune --method adversarial --run SOURCE",
    "eval --run SOURCE --planner adam",
    "gap --run SOURCE",
    "landscape --run SOURCE",
    "reference --env wall",
    "demo",
    "study",
    "sweep --set models=base:SOURCE",
]


@pytest.mark.parametrize("line", EMPTY_OUT)
def test_an_empty_out_is_refused_and_the_current_folder_is_untouched(tmp_path, monkeypatch, tree, capsys, line):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "source").mkdir()
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert main([*line.replace("SOURCE", "source").split(), "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert tree(tmp_path) == before
