"""Gallery examples run block by block as sphinx-gallery runs them, with no empty panel.

sphinx-gallery executes an example's code blocks (``# %%`` cells) one after another in one
namespace and, after each block, saves every open matplotlib figure and closes it. A panel
drawn in a later block than its figure was created in is therefore saved blank: the build
passes and the reader sees empty axes. This test replays that capture and fails on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

py_source_parser = pytest.importorskip("sphinx_gallery.py_source_parser")

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "doc" / "examples").glob("plot_*.py"))


def empty_panels(fig) -> list[str]:
    """Titles (or positions) of the visible axes of ``fig`` that show nothing drawn."""
    empty = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue  # a hidden spare panel is not shown to the reader
        drawn = ax.lines or ax.collections or ax.images or ax.patches or ax.tables or ax.containers or ax.artists
        if not drawn:
            empty.append(ax.get_title() or f"axes {i}")
    return empty


def run_blocks(path: Path):
    """Execute the example's code blocks in order; yield (block line, open figures) after each."""
    _, blocks = py_source_parser.split_code_and_text_blocks(str(path))
    namespace = {"__name__": "__main__", "__file__": str(path)}
    for block in blocks:
        if block.type != "code":
            continue
        code = compile("\n" * (block.lineno - 1) + block.content, str(path), "exec")
        exec(code, namespace)
        figures = [plt.figure(n) for n in plt.get_fignums()]
        yield block.lineno, figures
        plt.close("all")  # as sphinx-gallery's matplotlib scraper does after saving them


def test_empty_panel_detection():
    fig, axes = plt.subplots(1, 2)
    axes[0].plot([0, 1], [1, 0])
    axes[1].set_title("drawn later")
    assert empty_panels(fig) == ["drawn later"]
    axes[1].set_visible(False)
    assert empty_panels(fig) == []
    plt.close(fig)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_figures_are_complete_when_captured(path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # files an example writes land here, not in the source tree
    monkeypatch.setenv("MPLBACKEND", "Agg")
    plt.close("all")
    n_figures, problems = 0, []
    for lineno, figures in run_blocks(path):
        n_figures += len(figures)
        for fig in figures:
            for title in empty_panels(fig):
                problems.append(f"block at line {lineno}: panel {title!r} is empty when the block ends")
    assert not problems, "\n".join(problems)
    assert n_figures > 0, f"{path.name} draws no figure"
    assert os.environ["MPLBACKEND"] == "Agg"
