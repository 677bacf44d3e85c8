"""README.md and docs/ cannot rot silently: every relative link leads to a file (and heading) that exists,
every `wmplan` command they show names a real subcommand and only options it takes, and every script,
benchmark and make target they name exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from wmplan.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def heading_slugs(page: Path) -> set[str]:
    """The anchors a Markdown renderer gives a page's headings: lower case, punctuation dropped, spaces to -."""
    slugs = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_leads_to_an_existing_file_and_heading(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = page if not path else (page.parent / path).resolve()
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in heading_slugs(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    assert not broken, f"{page_id(page)}: {broken}"


def code_lines(text: str) -> list[str]:
    """A page's code: the lines of its code blocks (continuations joined, comments dropped) and its inline code."""
    lines, in_block, pending = [], False, ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if in_block:
            line = pending + raw.split("  #")[0].strip()
            pending = line[:-1] + " " if line.endswith("\\") else ""
            if not pending:
                lines.append(line)
        else:
            lines.extend(INLINE_CODE.findall(raw))
    return lines


def command_lines(text: str) -> list[str]:
    """Every `wmplan ...` command a page shows in its code, with torchrun's `-m wmplan.cli` read as `wmplan`."""
    found = []
    for line in code_lines(text):
        line = re.sub(r"^.*?-m wmplan\.cli ", "wmplan ", line)
        match = re.search(r"(?:^|\s)wmplan ([a-z][a-z|]*)(.*)", line)
        if match and not line.startswith("wmplan trains"):
            found.append(f"{match.group(1)}{match.group(2)}")
    return found


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser, words: list[str]) -> set[str]:
    """The option strings of a subcommand, of its own subcommand where it has them (config show)."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if nested and words and words[0] in nested[0].choices:
        parser = nested[0].choices[words[0]]
    return {s for a in parser._actions for s in a.option_strings}


def wrong_commands(text: str) -> list[str]:
    """The commands in `text` that name no subcommand, or an option their subcommand does not take."""
    commands, wrong = subcommands(), []
    for line in command_lines(text):
        name, _, rest = line.partition(" ")
        for one in name.split("|"):  # `train|finetune|eval ...`: each of them
            if one not in commands:
                wrong.append(f"wmplan {one}: no such command")
                continue
            if "|" in name:
                continue  # the options belong to the alternatives together
            unknown = sorted(set(FLAG.findall(rest)) - options(commands[one], rest.split()))
            if unknown:
                wrong.append(f"wmplan {line}: {', '.join(unknown)} not an option of {one}")
    return wrong


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_command_shown_names_a_subcommand_and_options_it_takes(page):
    wrong = wrong_commands(page.read_text())
    assert not wrong, f"{page_id(page)}: {wrong}"


def test_a_renamed_option_or_command_is_caught():
    page = "Run `wmplan eval --run R --bogus 1`.\n```\nwmplan evaluate --run R\nwmplan demo --preset quick \\\n  --full\n```\n"
    assert wrong_commands(page) == [
        "wmplan eval --run R --bogus 1: --bogus not an option of eval",
        "wmplan evaluate: no such command",
    ]


def test_the_pages_show_commands_at_all():
    """The check above reads the pages' commands; it must find them (a change of format would hide them)."""
    shown = [line for page in PAGES for line in command_lines(page.read_text())]
    assert len(shown) > 40 and any(line.startswith("demo") for line in shown)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_script_benchmark_and_make_target_named_exists(page):
    text = page.read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    made = [m.group(1) for line in code_lines(text) if (m := re.match(r"make ([a-z][\w-]*)", line.strip()))]
    missing = [f"make {t}" for t in made if t not in targets]
    missing += [p for p in re.findall(r"\b((?:benchmarks|scripts)/[\w/]+\.py)", text) if not (ROOT / p).exists()]
    missing += [p for p in re.findall(r"\b(src/wmplan/[\w/]+\.py)", text) if not (ROOT / p).exists()]
    assert not missing, f"{page_id(page)}: {missing}"
