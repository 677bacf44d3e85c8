"""docs/api.md's examples run as written, in order, in an empty folder: the page cannot drift from the Python
API. No example may reach the network (the Hub's are marked to skip)."""

from __future__ import annotations

import doctest
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
FENCE = re.compile(r"^\s*```.*$", re.MULTILINE)


def page_examples(text: str) -> doctest.DocTest:
    """The page's `>>>` examples; each code fence becomes a blank line (which ends an example's expected output,
    as in a docstring) so the line numbers of failures stay the page's."""
    return doctest.DocTestParser().get_doctest(FENCE.sub("", text), {}, PAGE.name, str(PAGE), 0)


def test_the_python_api_page_runs_as_written(tmp_path, monkeypatch):
    def no_network():
        raise RuntimeError("an example of docs/api.md reached for the Hugging Face Hub")

    monkeypatch.setattr("wmplan.hub._client", no_network)
    monkeypatch.chdir(tmp_path)
    examples = page_examples(PAGE.read_text())
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(examples, out=report.write)
    assert result.failed == 0, report.getvalue()
    assert result.attempted >= 40  # the page's examples were found (a change of format would hide them)
    assert (tmp_path / "runs" / "wall-adv" / "config.json").exists()  # they ran to the end


def test_a_wrong_example_fails_and_fences_end_expected_output():
    text = "```pycon\n>>> 1 + 1\n3\n```\n\n```pycon\n>>> print('a')\na\n```\n"
    runner = doctest.DocTestRunner()
    result = runner.run(page_examples(text), out=lambda _: None)
    assert (result.attempted, result.failed) == (2, 1)
