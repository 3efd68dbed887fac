"""The "after" snippets of the migration pages run with today's names.

Each migration page shows the original toolkit's code and the skneuro equivalent; the
skneuro blocks (``.. code-block:: python`` starting with ``# skneuro``) are executed here,
so a rename that the pages missed fails the suite.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

PAGES = sorted((Path(__file__).resolve().parents[1] / "doc" / "migration").glob("*.rst"))


def skneuro_blocks(text: str) -> list[str]:
    """Bodies of the ``code-block:: python`` directives whose first line is ``# skneuro``."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text, flags=re.M):
        body = textwrap.dedent(match.group(1))
        if body.lstrip().startswith("# skneuro"):
            blocks.append(body)
    return blocks


def test_block_extraction():
    text = ".. code-block:: python\n\n    # skneuro\n    x = 1\n\n    y = x + 1\n\nText.\n"
    assert skneuro_blocks(text) == ["# skneuro\nx = 1\n\ny = x + 1\n\n"]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_migration_snippets_run(page, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    blocks = skneuro_blocks(page.read_text())
    if page.stem == "index":
        pytest.skip("the index page has no snippet")
    assert blocks, f"{page.name} has no '# skneuro' code block"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(page), "exec"), {"__name__": "__main__"})
        plt.close("all")
