"""Generated bad command lines for every `wmplan` subcommand: values out of range or of the wrong type,
settings that contradict a flag, and settings that do not apply to the chosen planner, mode or task. Each
must be refused with exit status 2 and a one-line error naming it, before any work starts and with nothing
on disk changed.

The command lines are built by walking `build_parser()`'s actions. The heavy entry points (collecting an
episode, training, planning, the experiment runners) are replaced by a function that raises WorkStarted,
so a line that is not refused shows as work started, never as an hour-long job; and a line the tests
expect to be accepted must reach one of them.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wmplan.cli import build_parser, main
from wmplan.config import RunConfig
from wmplan.data.collect import collect
from wmplan.overrides import valid_keys

EXAMPLES = settings(max_examples=60, deadline=None)


class WorkStarted(Exception):
    """Raised in place of a heavy entry point: the command line was not refused before the work."""


def _started(*args, **kwargs):
    raise WorkStarted


HEAVY = [  # (module, attribute) of each command's work
    ("wmplan.data.interchange", "export_dataset"),
    ("wmplan.data.interchange", "import_dataset"),
    ("wmplan.training.trainer", "train"),
    ("wmplan.training.finetune", "finetune"),
    ("wmplan.evaluation.episodes", "evaluate"),
    ("wmplan.experiments.demo", "run_demo"),
    ("wmplan.experiments.sweep", "run_sweep"),
    ("wmplan.evaluation.gap", "gap"),
    ("wmplan.evaluation.landscape", "landscape"),
    ("wmplan.experiments.sim_reference", "cem_reference"),
    ("wmplan.experiments.sim_reference", "greedy_reference"),
    ("wmplan.experiments.study", "run_study"),
    ("wmplan.hub", "push_run"),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding a tiny dataset `data` and a folder `run`, the working folder of every line; the
    heavy entry points (and each collector's episode policy) raise WorkStarted."""
    import importlib

    from wmplan.data import collect as collect_module

    registered = collect_module.collector
    root = tmp_path_factory.mktemp("cli")
    collect("wall", root / "data", episodes=2, seed=0, progress=False, collector_settings={"steps": 5})
    (root / "run").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for module, name in HEAVY:
            mp.setattr(importlib.import_module(module), name, _started)
        mp.setattr(collect_module, "collector", lambda env: (_started, registered(env)[1]))
        yield root


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def run(line: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of `wmplan LINE` in this process; WorkStarted passes through."""
    err = io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            try:
                code = main(line)
            except SystemExit as exc:  # argparse's own exit
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        torch.set_flush_denormal(False)  # main turns it on; hypothesis cannot draw floats with it
    return code, err.getvalue()


def remove_new(root: Path, before: dict) -> None:
    """Remove what a line that was not refused created, so that the next line starts from the same tree."""
    for path in sorted(set(tree(root)) - set(before)):
        shutil.rmtree(root / path, ignore_errors=True) if (root / path).is_dir() else (root / path).unlink(True)


def assert_refused(root: Path, line: list[str], *words: str) -> None:
    """`line` exits 2 with one line on stderr that names every word, before any work, changing nothing."""
    before = tree(root)
    try:
        code, err = run(line)
    except WorkStarted:
        remove_new(root, before)
        pytest.fail(f"work started for: wmplan {' '.join(line)}")
    assert code == 2, (line, code, err)
    text = err.strip()
    assert "Traceback" not in text and text.count("\n") == 0 and text, (line, err)
    for word in words:
        assert word in text, (line, word, text)
    after = tree(root)
    remove_new(root, before)
    assert after == before, line


def assert_accepted(root: Path, line: list[str]) -> None:
    """`line` gets past every check to its command's work."""
    before = tree(root)
    try:
        with pytest.raises(WorkStarted):
            code, err = run(line)
            pytest.fail(f"wmplan {' '.join(line)} did not reach its work: exit {code}, {err.strip()}")
    finally:
        remove_new(root, before)


# ----- the parser, walked --------------------------------------------------------------------------------
def subcommands() -> dict[str, argparse.ArgumentParser]:
    """'collect' -> its parser, ..., 'config show' -> its parser."""

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> dict[str, argparse.ArgumentParser]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {" ".join(prefix): parser}
        found: dict[str, argparse.ArgumentParser] = {}
        for name, child in subs[0].choices.items():
            found |= walk(child, [*prefix, name])
        return found

    return walk(build_parser(), [])


COMMANDS = subcommands()
# What a required argument is given in a valid line, by its dest (choices take their first).
REQUIRED_VALUES = {
    "out": "new",
    "episodes": "1",
    "data": "data",
    "path": "data",
    "source": "data",
    "run": "run",
    "env": "wall",
    "repo_id": "owner/name",
}


def base_line(command: str) -> list[str]:
    """A line of `command` that passes every check (its work then starts)."""
    line = command.split()
    for action in COMMANDS[command]._actions:
        if not action.required:
            continue
        value = action.choices[0] if action.choices else REQUIRED_VALUES[action.dest]
        line += [str(value)] if not action.option_strings else [action.option_strings[0], str(value)]
    if command == "sweep":
        line += ["--set", "models=base:run"]
    return line


BASE_PASSES = [c for c in COMMANDS if c not in ("info", "config show")]  # those two do no heavy work


@pytest.mark.parametrize("command", BASE_PASSES)
def test_each_base_line_passes_its_checks(workdir, command):
    """The lines the generated ones start from are valid, so a refusal below is the bad value's."""
    assert_accepted(workdir, base_line(command))


# ----- values out of range or of the wrong type ----------------------------------------------------------
SEED_MAX = 2**32 - 1
JUNK = st.sampled_from(["", "abc", "1.5", "nan", "inf", "1e3", "0x10", "3,", " "])


def _bad_list(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Comma-separated values, at least one of them bad."""
    return st.tuples(st.lists(good, max_size=3), bad, st.lists(good, max_size=3)).map(
        lambda t: ",".join(str(v) for v in [*t[0], t[1], *t[2]])
    )


BAD_FLOATS = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf, -math.inf, "x"]))
BAD_VALUES = {
    "count": st.one_of(st.integers(max_value=0), JUNK),
    "non-negative": st.one_of(st.integers(max_value=-1), JUNK),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=SEED_MAX + 1), JUNK),
    "odd grid": st.one_of(st.integers(max_value=2), st.integers(0, 200).map(lambda n: 2 * n), JUNK),
    "seeds": st.one_of(
        _bad_list(st.integers(0, SEED_MAX), st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32))),
        st.sampled_from(["", ",", "0,,1", "0;1", "a"]),
    ),
    "counts": st.one_of(_bad_list(st.integers(1, 99), st.integers(max_value=0)), st.sampled_from(["", "1;2"])),
    "positive numbers": _bad_list(st.floats(0.01, 10), BAD_FLOATS),
    # fixed and paper, each once, are the protocols: anything else is refused
    # distinct names of encoders a demo can train, comma-separated: anything else is refused
    "encoders": st.one_of(
        st.sampled_from(["", ",", "conv,", "conv,conv", "vit", "dinov2", "Conv", "conv;state"]),
        st.text("abcdefghijklmnopqrstuvwxyz,", min_size=1, max_size=12).filter(
            lambda s: (
                not set(s.split(",")) <= {"conv", "patch", "jepa", "state", "particles"}
                or len(set(s.split(","))) != len(s.split(","))
            )
        ),
    ),
    "protocols": st.one_of(
        st.sampled_from(["", ",", "fixed,", "fixed,fixed", "paper,fixed,paper", "Fixed", "papers"]),
        st.text("abcdefghijklmnopqrstuvwxyz,", min_size=1, max_size=12).filter(
            lambda s: not set(s.split(",")) <= {"fixed", "paper"} or len(set(s.split(","))) != len(s.split(","))
        ),
    ),
    # 'auto', 'cpu' and an accelerator this torch may see are valid: anything else is not a usable device
    "device": st.one_of(
        st.sampled_from(["nope", "gpu", "cuda:x", "", "cpu:abc", "meta", "CPU", "cuda:99", "auto:0"]),
        st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
            lambda s: s not in ("auto", "cpu", "cuda", "mps", "xpu")
        ),
    ),
}
# The range of every numeric option, by its name: the same name means the same thing in every command.
OPTION_KINDS = {
    "--episodes": "count",
    "--workers": "count",
    "--cells-per-job": "count",
    "--batch": "count",
    "--epochs": "count",
    "--fps": "count",
    "--pushes": "count",
    "--candidates": "count",
    "--video": "non-negative",
    "--seed": "seed",
    "--seeds": "seeds",
    "--code-versions": "seed",
    "--grid": "odd grid",
    "--adversarial-epochs": "counts",
    "--online-steps": "counts",
    "--strengths": "positive numbers",
    "--device": "device",
    "--protocols": "protocols",
    "--encoders": "encoders",
}
if not torch.cuda.is_available():
    BAD_VALUES["device"] = st.one_of(BAD_VALUES["device"], st.sampled_from(["cuda", "cuda:0"]))


def numeric_options() -> list[tuple[str, str]]:
    return [
        (command, option)
        for command, parser in COMMANDS.items()
        for action in parser._actions
        for option in action.option_strings[:1]
        if option in OPTION_KINDS
    ]


def choice_options() -> list[tuple[str, str, tuple]]:
    return [
        (command, action.option_strings[0], tuple(action.choices))
        for command, parser in COMMANDS.items()
        for action in parser._actions
        if action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction)
    ]


def test_every_option_with_a_type_has_a_known_range():
    """A new numeric option cannot slip past the generated tests: each one with a type is listed above."""

    def numeric(action: argparse.Action) -> bool:
        default = action.default
        has_type = action.type is not None and getattr(action.type, "__name__", "") not in ("run_location", "task_name")
        return has_type or (isinstance(default, (int, float)) and not isinstance(default, bool))

    typed = {
        action.option_strings[0]
        for parser in COMMANDS.values()
        for action in parser._actions
        if action.option_strings and numeric(action)
    }
    assert typed <= set(OPTION_KINDS), typed - set(OPTION_KINDS)
    assert {option for _, option in numeric_options()} == set(OPTION_KINDS)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_out_of_range_and_wrong_typed_values_are_refused_at_parse_time(workdir, data):
    command, option = data.draw(st.sampled_from(numeric_options()), label="option")
    value = data.draw(BAD_VALUES[OPTION_KINDS[option]], label="value")
    assert_refused(workdir, [*base_line(command), f"{option}={value}"], option)


@EXAMPLES
@given(data=st.data())
def test_values_outside_the_choices_are_refused(workdir, data):
    command, option, choices = data.draw(st.sampled_from(choice_options()), label="option")
    value = data.draw(st.text("abcdefghijklmnopqrstuvwxyz_-", max_size=10).filter(lambda v: v not in choices))
    assert_refused(workdir, [*base_line(command), f"{option}={value}"], option)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_non_finite_run_settings_are_refused_naming_the_key(workdir, data):
    """Every float setting of a run (train --set) takes finite numbers only."""
    import typing

    floats = [
        k
        for k in valid_keys(RunConfig())
        if typing.get_type_hints(type(_parent(RunConfig(), k)))[k.rsplit(".", 1)[-1]] is float
    ]
    key = data.draw(st.sampled_from(floats), label="key")
    value = data.draw(st.sampled_from(["inf", "-inf", "nan"]), label="value")
    assert_refused(workdir, [*base_line("train"), "--set", f"{key}={value}"], key)


@EXAMPLES
@given(
    fraction=st.one_of(
        st.floats(0, 1, exclude_max=True), st.floats(min_value=1, allow_infinity=False), st.floats(max_value=-1e-9)
    )
)
def test_the_online_fraction_has_one_range_for_the_config_and_the_online_loss(workdir, fraction):
    """train --set and finetuning's online loss (which asks OnlineConfig.check) take [0, 1): the rest of each
    batch is expert data."""
    from wmplan.config import OnlineConfig

    line = [*base_line("train"), "--set", f"online.online_fraction={fraction!r}"]
    if 0 <= fraction < 1:
        assert_accepted(workdir, line)
        OnlineConfig(online_fraction=fraction).check()
    else:
        assert_refused(workdir, line, "online.online_fraction")
        with pytest.raises(ValueError, match="online.online_fraction"):
            OnlineConfig(online_fraction=fraction).check()


def _parent(obj, key: str):
    for part in key.split(".")[:-1]:
        obj = getattr(obj, part)
    return obj


# ----- a flag and a --set for the same quantity -----------------------------------------------------------
FLAG_AND_SET = [  # (command, flag, --set key, valid values)
    ("train", "--epochs", "train.epochs", st.integers(1, 4).map(str)),
    ("train", "--encoder", "model.encoder.name", st.sampled_from(["conv", "state"])),
    ("train", "--device", "train.device", st.sampled_from(["cpu", "auto"])),
    ("train", "--data", "data.path", st.sampled_from(["data", "elsewhere"])),
    ("finetune", "--data", "data.path", st.sampled_from(["data", "elsewhere"])),
    ("finetune", "--device", "train.device", st.sampled_from(["cpu", "auto"])),
]


@EXAMPLES
@given(data=st.data())
def test_a_flag_and_a_set_of_the_same_setting_must_agree(workdir, data):
    command, flag, key, values = data.draw(st.sampled_from(FLAG_AND_SET), label="pair")
    given_flag = "data" if flag == "--data" else data.draw(values, label="flag value")
    given_set = data.draw(values, label="set value")
    line = [*base_line(command), flag, given_flag, "--set", f"{key}={given_set}"]
    if given_flag == given_set:
        assert_accepted(workdir, line)
    else:
        assert_refused(workdir, line, flag, key)


@EXAMPLES
@given(episodes=st.integers(1, 80))
def test_demo_full_and_episodes_must_agree(workdir, episodes):
    line = ["demo", "--out", "new", "--full", "--episodes", str(episodes)]
    if episodes == 50:
        assert_accepted(workdir, line)
    else:
        assert_refused(workdir, line, "--full", "--episodes")


# ----- settings that do not apply to the planner, the mode or the task ------------------------------------
GD_FIELDS = {"lr": "0.1", "steps": "7", "optimizer": "sgd", "noise": "0.01", "init": "zero", "restarts": "2"}
GD_FIELDS |= {"plateau": "0.01", "warm_steps": "3"}
CEM_FIELDS = {"samples": "100", "topk": "10", "iterations": "4"}
EVERY_PLANNER_FIELDS = {"horizon": "4", "bounded": "true", "objective": "all", "precision": "fp32"}
GD_PLANNERS, CEM_PLANNERS = ("gd", "adam", "multistart", "hybrid"), ("cem", "cem_best", "hybrid")
FIELDS = GD_FIELDS | CEM_FIELDS | EVERY_PLANNER_FIELDS


def applies(planner: str, field: str, mpc: bool) -> bool:
    if field == "warm_steps":  # GD's steps in a warm-started plan: an MPC replan, or hybrid's Adam stage
        return planner in GD_PLANNERS and (mpc or planner == "hybrid")
    return (
        field in EVERY_PLANNER_FIELDS
        or (field in GD_FIELDS and planner in GD_PLANNERS)
        or (field in CEM_FIELDS and planner in CEM_PLANNERS)
    )


@EXAMPLES
@given(
    planner=st.sampled_from(["gd", "adam", "cem", "cem_best", "hybrid", "multistart"]),
    field=st.sampled_from(sorted(FIELDS)),
    mpc=st.booleans(),
)
def test_planner_settings_apply_to_the_planner_and_mode(workdir, planner, field, mpc):
    line = ["eval", "--run", "run", "--planner", planner, "--out", "new", "--set", f"planner.{field}={FIELDS[field]}"]
    line += ["--mpc"] if mpc else []
    if applies(planner, field, mpc):
        assert_accepted(workdir, line)
    else:
        reads_it_under_mpc = field == "warm_steps" and planner in GD_PLANNERS
        assert_refused(workdir, line, f"planner.{field}", "--mpc" if reads_it_under_mpc else planner)


MPC_FIELDS = {"execute": "2", "replans": "3", "max_replans": "4"}


def mpc_applies(field: str, mpc: bool, protocol: str) -> bool:
    return mpc and {"execute": True, "replans": protocol == "fixed", "max_replans": protocol == "paper"}[field]


@EXAMPLES
@given(field=st.sampled_from(sorted(MPC_FIELDS)), mpc=st.booleans(), paper=st.booleans())
def test_mpc_settings_apply_only_with_mpc_and_their_protocol(workdir, field, mpc, paper):
    protocol = "paper" if paper and mpc else "fixed"
    line = ["eval", "--run", "run", "--planner", "adam", "--out", "new", "--set", f"mpc.{field}={MPC_FIELDS[field]}"]
    line += (["--mpc"] if mpc else []) + ["--protocol", protocol]
    if mpc_applies(field, mpc, protocol):
        assert_accepted(workdir, line)
    else:
        assert_refused(workdir, line, f"mpc.{field}", "--mpc" if not mpc else protocol)


@EXAMPLES
@given(
    planners=st.lists(
        st.sampled_from(["gd", "adam", "cem", "cem_best", "hybrid", "multistart"]), min_size=1, unique=True
    ),
    modes=st.lists(st.sampled_from(["open", "mpc", "mpc_bounded"]), min_size=1, unique=True),
    setting=st.sampled_from(
        [f"planner.{f}" for f in sorted(set(FIELDS) - {"warm_steps"})] + [f"mpc.{f}" for f in MPC_FIELDS]
    ),
)
def test_sweep_settings_apply_to_some_cell(workdir, planners, modes, setting):
    """A sweep's shared setting must apply to at least one of its cells (open-loop cells ignore mpc.*)."""
    group, field = setting.split(".")
    value = FIELDS[field] if group == "planner" else MPC_FIELDS[field]
    mpc = any(m != "open" for m in modes)
    line = ["sweep", "--out", "new", "--set", "models=base:run", "--set", f"planners={','.join(planners)}"]
    line += ["--set", f"modes={','.join(modes)}", "--set", f"{setting}={value}"]
    ok = any(applies(p, field, mpc) for p in planners) if group == "planner" else mpc_applies(field, mpc, "fixed")
    if ok:
        assert_accepted(workdir, line)
    else:
        assert_refused(workdir, line, setting)


PUSH_TASKS, MOVE_TASKS = ("rope", "granular"), ("wall", "pointmaze", "pusht")
REFERENCE_OPTIONS = {  # option -> (its words, the tasks it applies to)
    "--pushes": (["--pushes", "3"], PUSH_TASKS),
    "--candidates": (["--candidates", "7"], PUSH_TASKS),
    "--mpc": (["--mpc"], MOVE_TASKS),
    "--protocol": (["--mpc", "--protocol", "paper"], MOVE_TASKS),
    "--set": (["--mpc", "--set", "mpc.execute=1"], MOVE_TASKS),
}


@settings(max_examples=20, deadline=None)
@given(env=st.sampled_from([*MOVE_TASKS, *PUSH_TASKS]), option=st.sampled_from(sorted(REFERENCE_OPTIONS)))
def test_reference_options_apply_to_the_task(workdir, env, option):
    words, tasks = REFERENCE_OPTIONS[option]
    line = ["reference", "--env", env, "--out", "new", *words]
    if env in tasks:
        assert_accepted(workdir, line)
    else:
        assert_refused(workdir, line, option, env)


@settings(max_examples=10, deadline=None)
@given(extra=st.sampled_from([["--preset", "tiny"], ["--env", "pusht"], ["--preset", "paper", "--env", "rope"]]))
def test_config_show_of_a_run_takes_no_preset_or_task(workdir, extra):
    assert_refused(workdir, ["config", "show", "--run", "run", *extra], extra[0])


# ----- collector settings that cannot produce an episode -------------------------------------------------
def _pair(env: str, low: str, high: str, scale: float, gap: float) -> st.SearchStrategy:
    """(env, settings, words): `low` set above `high` (at least `gap` x scale above), both named in the error."""
    return st.tuples(st.floats(0.01, scale), st.floats(gap, 1.0)).map(
        lambda t: (env, [f"{low}={t[0] + t[1] * scale}", f"{high}={t[0]}"], (low, high))
    )


def _range(env: str, key: str) -> st.SearchStrategy:
    """A (low, high) setting given high-first."""
    return st.tuples(st.floats(0.0, 0.5), st.floats(0.01, 0.5)).map(
        lambda t: (env, [f"{key}=[{t[0] + t[1]}, {t[0]}]"], (key,))
    )


IMPOSSIBLE_COLLECTORS = st.one_of(
    _pair("wall", "step_min", "step_max", 5.0, 0.0),  # a truncated normal needs room: equal is refused too
    _pair("pusht", "gap_min", "gap_max", 20.0, 0.01),  # a uniform range may be one value
    _pair("pusht", "push_min", "push_max", 100.0, 0.01),
    _range("rope", "length"),
    _range("granular", "lead"),
    st.sampled_from(
        [
            ("wall", ["step_std=0"], ("step_std",)),
            ("wall", ["step_min=30", "step_max=40"], ("step_min", "step_max")),  # no mass between them
            ("pointmaze", ["correlation=1"], ("correlation",)),
            ("rope", ["random_fraction=1.5"], ("random_fraction",)),
            ("pusht", ["candidates=0"], ("candidates",)),
            ("wall", ["steps=0"], ("steps",)),
        ]
    ),
)


@EXAMPLES
@given(case=IMPOSSIBLE_COLLECTORS)
def test_collector_settings_that_cannot_make_an_episode_are_refused_before_collecting(workdir, case):
    env, sets, words = case
    line = ["collect", "--env", env, "--episodes", "1", "--out", "new"]
    for s in sets:
        line += ["--collector-set", s]
    assert_refused(workdir, line, *words)
