"""The live status line of long commands: drawn on a terminal only, naming the running task."""

from __future__ import annotations

import io

from rich.console import Console
from turret.cli.progress import TaskProgress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None), out


def test_a_terminal_shows_the_running_task_and_how_many_are_done():
    console, out = _console(True)
    with TaskProgress("pipeline", console=console) as progress:
        progress.started("load_landed")
        console.print("  ✓ load_landed")  # what the command prints meanwhile stays
        progress.finished("load_landed")
        progress.started("embed_partition")
        progress._progress.refresh()
    text = out.getvalue()
    assert "pipeline: load_landed (0 done)" in text
    assert "pipeline: embed_partition (1 done)" in text
    assert "✓ load_landed" in text
    assert progress.done == 1


def test_nothing_is_drawn_when_the_output_is_not_a_terminal():
    console, out = _console(False)
    with TaskProgress("pipeline", console=console) as progress:
        progress.started("load_landed")
        progress.finished("load_landed")
    assert out.getvalue() == "" and progress.done == 1
