"""A live status line for long commands on a terminal: which pipeline task runs, for how long, how many
are done. Nothing is drawn when the output is not a terminal (logs, pipes, tests), and the line disappears
when the command ends, leaving only the command's own output."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class TaskProgress:
    """``start()``, then ``started(task)`` / ``finished(task)`` as tasks go, then ``stop()``.

    Lines the command prints meanwhile (``click.echo``) appear above the status line.
    """

    def __init__(self, what: str = "pipeline", *, console: Console | None = None,
                 enabled: bool | None = None) -> None:
        from rich.console import Console

        self.what = what
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.done = 0
        self._progress: Progress | None = None
        self._row: TaskID | None = None

    def start(self) -> TaskProgress:
        if not self.enabled:
            return self
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=self.console, transient=True,
        )
        self._progress.start()
        self._row = self._progress.add_task(f"{self.what}: starting", total=None)
        return self

    def started(self, task: str) -> None:
        """A task began: the line names it and its clock starts from zero."""
        if self._progress is None:
            return
        if self._row is not None:
            self._progress.remove_task(self._row)
        self._row = self._progress.add_task(f"{self.what}: {task} ({self.done} done)", total=None)

    def finished(self, task: str) -> None:
        self.done += 1
        if self._progress is not None and self._row is not None:
            self._progress.update(self._row, description=f"{self.what}: {task} finished ({self.done} done)")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> TaskProgress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
