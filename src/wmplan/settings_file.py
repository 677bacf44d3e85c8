"""Settings files: a YAML (.yaml, .yml) or JSON mapping of settings, read for `wmplan train --config` (a run's
config keys) and `wmplan sweep --config` (a sweep's spec), and its nested mappings flattened to the dotted keys
that `--set key=value` takes.

It sits apart from both commands because they read their files by one rule: one reader, one set of errors
(a missing, unreadable or ill-formed file is a ValueError naming the file and the problem).

Example:
    >>> dotted_settings({"train": {"epochs": 2, "lr_predictor": 1e-3}, "model.encoder.name": "state"})
    {'train.epochs': 2, 'train.lr_predictor': 0.001, 'model.encoder.name': 'state'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

YAML_SUFFIXES = (".yaml", ".yml")


def read_settings_file(path: str | Path, what: str = "settings", instead: str = "") -> dict[str, Any]:
    """The mapping a settings file holds: YAML for a .yaml or .yml file, JSON for any other. `what` names the
    settings in the errors ("sweep settings", "run settings"), `instead` another way to give them (", or ...")
    where a file is missing. A ValueError (FileNotFoundError for a missing
    file) names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"settings file {path} {problem}; give a YAML or JSON file of {what}{instead}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a binary file given by mistake
        raise ValueError(f"{path} is not a text file ({exc.reason} at byte {exc.start}); give YAML or JSON") from None
    except OSError as exc:  # no permission, an I/O error: the parser's callers expect a ValueError
        raise ValueError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write it as JSON") from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML ({_yaml_problem(exc)})") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); a .yaml or .yml file is read as YAML") from None
    if not isinstance(values, dict):
        got = "nothing" if values is None else f"a {type(values).__name__}"
        raise ValueError(f"{path} must hold a mapping of {what} (key: value lines), got {got}")
    return values


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's error in one line: the problem and where it is ("mapping values are not allowed here at line 1,
    column 5"); its own text spans lines and names the string it parsed, not the file."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem is None or mark is None:
        return " ".join(str(exc).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def dotted_settings(values: Mapping[str, Any], source: str | Path = "the settings") -> dict[str, Any]:
    """`values` with every nested mapping flattened to dotted keys ({"train": {"epochs": 2}} -> {"train.epochs": 2}),
    the keys `--set` takes; a key given twice (once nested, once dotted) is a ValueError naming it and `source`."""
    flat: dict[str, Any] = {}

    def add(prefix: str, mapping: Mapping[Any, Any]) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):  # an empty one sets nothing
                add(f"{name}.", value)
            elif name in flat:
                raise ValueError(f"{source} gives {name} twice (nested and dotted); give it once")
            else:
                flat[name] = value

    add("", values)
    return flat
