"""``turret pipeline run``: run the hourly DAG through Airflow once, now.

What "now" covers: before the run starts, every live ingest process is asked to seal its open landing
segment and the segments of dead processes are sealed, so everything acknowledged before the command
started is loaded. A writer that does not answer within ``--seal-timeout`` keeps its segment open: the
command says so on stderr, and those events load in the next run. Events acknowledged while the run is
under way land in new segments and wait for the next run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from turret.cli.progress import TaskProgress
from turret.settings import Settings

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_RETURNED = re.compile(r"Returned value was: (\{.*\})")
_FAILED = re.compile(r"(Task failed with exception|ERROR - |\[error\s*\])")
# The last line of a task's traceback: the exception and its message (which may go on over more lines).
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Exception|Error)): (.*)$")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT")
# The tasks that set rows aside, with ``rows_quarantined`` in what they return.
QUARANTINING_TASKS = ("load_landed", "check_raw")
# What the has_new_events short circuit logs when it skips the rest of the run.
_SKIPPED = re.compile(r"Skipping downstream tasks")


@click.group()
def pipeline() -> None:
    """Run and inspect the pipeline (the Airflow DAGs)."""


@pipeline.command("run")
@click.option("--refit", is_flag=True,
              help="Re-cluster all texts (the daily re-fit DAG) instead of an hourly run.")
@click.option("--seal-timeout", default=5.0, show_default=True,
              help="Seconds to wait for live writers to seal.")
@click.option("--quiet", is_flag=True, help="Print only the summary.")
@click.option("--logical-date", default=None, help="ISO 8601 logical date of the run (default: now).")
@click.option("--retries", default=0, show_default=True, help="Retries per task (a run by hand fails fast).")
@click.option("--all-steps", is_flag=True,
              help="Run every step even when nothing was loaded since the published snapshot (an hourly run "
                   "then stops after loading).")
@click.option("--in-process/--through-scheduler", "in_process", default=None,
              help="Run the tasks one after another in this process (`airflow dags test`), or trigger the "
                   "run in the Airflow of `turret up` and wait for its executor (--retries does not apply: "
                   "the services' TURRET_TASK_RETRIES does). Default: in process; through the scheduler with "
                   "TURRET_EXECUTOR=celery, the only way tasks reach the Celery workers.")
def run(refit: bool, seal_timeout: float, quiet: bool, logical_date: str | None, retries: int,
        all_steps: bool, in_process: bool | None) -> None:
    """Run the pipeline once, now, over every event acknowledged before it started."""
    from turret import airflow_env, landing

    settings = Settings.from_env()
    if in_process is None:
        in_process = settings.executor != "celery"
    echo = (lambda *_a, **_k: None) if quiet else click.echo
    dag_id = "turret_refit" if refit else "turret_hourly"

    root = settings.landing_root
    root.mkdir(parents=True, exist_ok=True)
    asked_at = landing.utc_now()
    sealed = landing.request_seal(root, timeout=seal_timeout, at=asked_at)
    echo(f"Landing store {root}: {len(sealed)} segment(s) sealed for this run")
    still_open = landing.wait_for_seal(root, asked_at, timeout=0)
    if still_open:
        click.echo(
            f"Warning: {len(still_open)} landing segment(s) opened before this run are still open: their "
            f"writers did not seal within --seal-timeout {seal_timeout:g}s. Their events are not in this "
            "run; they load in the next one.",
            err=True,
        )

    if not in_process:
        _run_through_scheduler(settings, dag_id, logical_date=logical_date, all_steps=all_steps, echo=echo)
        return
    env = airflow_env.ensure_airflow_ready(settings, echo=echo)
    logs = Path(settings.home) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = logs / f"pipeline-{dag_id}-{stamp}.log"
    echo(f"Running DAG {dag_id} with Airflow (full log: {log_path})")

    started = time.monotonic()
    skipped = False
    task_started: dict[str, float] = {}
    figures: dict[str, dict] = {}
    current = None
    env = {**env, "TURRET_TASK_RETRIES": str(retries)}
    cmd = [airflow_env.airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        cmd.append(_validated_date(logical_date))  # positional: before any option
    if all_steps:
        cmd += ["--conf", json.dumps({"skip_when_idle": False})]
    # On a terminal, a live line names the running task and its time (the embedding step takes minutes).
    progress = TaskProgress("pipeline", enabled=False if quiet else None)
    with open(log_path, "w") as log, progress, subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if m := _START.search(line):
                current = m.group(1)
                task_started[current] = time.monotonic()
                progress.started(current)
            elif (m := _RETURNED.search(line)) and current:
                figures[current] = _parse_figures(m.group(1))
            elif _SKIPPED.search(line):
                skipped = True
            elif m := _END.search(line):
                task = m.group(1)
                took = time.monotonic() - task_started.get(task, time.monotonic())
                progress.finished(task)
                detail = _describe(figures.get(task, {}))
                echo(f"  ✓ {task:<40} {took:6.1f}s  {detail}".rstrip())
        code = proc.wait()

    total = time.monotonic() - started
    if code != 0 or _run_failed(log_path):
        errors = task_errors(log_path.read_text(errors="replace").splitlines())
        if errors:
            click.echo(f"Pipeline run FAILED after {total:.0f}s.", err=True)
            for task, message in errors:
                click.echo(f"  x {task or 'a task'} failed: {message}", err=True)
            click.echo(f"Full log: {log_path}", err=True)
        else:
            click.echo(f"Pipeline run FAILED after {total:.0f}s. Last lines of {log_path}:", err=True)
            click.echo(_failure_excerpt(log_path), err=True)
        sys.exit(1)
    click.echo(_quarantine_line(figures))
    if skipped:
        click.echo(f"Pipeline run finished in {total:.0f}s: nothing was loaded since the published snapshot, "
                   "so the later steps were skipped (--all-steps runs them anyway)")
        return
    click.echo(f"Pipeline run finished in {total:.0f}s; marts published under {settings.published}")


def _run_through_scheduler(settings: Settings, dag_id: str, *, logical_date: str | None, all_steps: bool,
                           echo) -> None:
    """Trigger ``dag_id`` in the Airflow `turret up` runs (REST API) and follow it until it ends: its tasks
    run on that Airflow's executor (the Celery workers with TURRET_EXECUTOR=celery), with its retries."""
    from turret import services

    layout = services.Layout(Path(settings.home).resolve())
    states = {s.name: s for s in services.read_states(layout)}
    airflow_url = services.read_endpoints(layout).get("airflow_url")
    if not airflow_url or not all(
        states[n].running for n in ("airflow-api-server", "airflow-scheduler") if n in states
    ):
        click.echo(f"Turret is not running in {layout.home}: --through-scheduler (the default with "
                   "TURRET_EXECUTOR=celery) triggers the run in the Airflow of `make up`. Start it, or pass "
                   "--in-process.", err=True)
        sys.exit(1)
    date = _validated_date(logical_date) if logical_date else datetime.now(UTC).isoformat()
    conf = {"skip_when_idle": False} if all_steps else {}
    started = time.monotonic()
    try:
        services.wait_for_dag(settings, airflow_url, dag_id)
        services.ensure_unpaused(settings, airflow_url, dag_id)
        run_id = services.trigger_dag_run(settings, airflow_url, dag_id, logical_date=date, conf=conf)
        executor = services.read_endpoints(layout).get("executor", "local")
        echo(f"Triggered run {run_id} of {dag_id} in {airflow_url} ({executor} executor); waiting for it")
        reported: set[tuple[str, int]] = set()
        state, said_queued = "queued", False
        while True:
            state = services.dag_run_state(settings, airflow_url, dag_id, run_id)
            if state == "queued" and not said_queued and time.monotonic() - started > 30:
                # One run of a DAG at a time (max_active_runs=1): a scheduled run goes first.
                echo(f"  (queued: another run of {dag_id} is still running; this one starts after it)")
                said_queued = True
            tis = services.task_instances(settings, airflow_url, dag_id, run_id)
            for ti in sorted(tis, key=lambda t: t.get("end_date") or ""):
                key = (ti["task_id"], ti.get("map_index", -1))
                if key in reported or ti["state"] not in ("success", "skipped", "failed", "upstream_failed"):
                    continue
                reported.add(key)
                name = ti["task_id"] + (f"[{key[1]}]" if key[1] not in (-1, None) else "")
                took = float(ti.get("duration") or 0.0)
                mark = {"success": "✓", "skipped": "-", "failed": "x", "upstream_failed": "x"}[ti["state"]]
                where = f"  on {ti['hostname']}" if ti.get("hostname") else ""
                echo(f"  {mark} {name:<40} {took:6.1f}s  {ti['state']}{where}".rstrip())
            if state in ("success", "failed"):
                break
            time.sleep(3)
    except services.ServiceError as exc:
        click.echo(f"Pipeline run through the scheduler failed: {exc}", err=True)
        sys.exit(1)
    total = time.monotonic() - started
    if state != "success":
        failed = sorted(t["task_id"] for t in tis if t["state"] == "failed")
        click.echo(f"Pipeline run {run_id} FAILED after {total:.0f}s: {', '.join(failed) or 'see Airflow'} "
                   f"(task logs in {airflow_url}, run {run_id})", err=True)
        sys.exit(1)
    try:
        figures = {task: services.task_return_value(settings, airflow_url, dag_id, run_id, task)
                   for task in QUARANTINING_TASKS
                   if any(t["task_id"] == task and t["state"] == "success" for t in tis)}
    except services.ServiceError as exc:  # the run succeeded; only its figures are out of reach
        click.echo(f"Warning: {exc}", err=True)
    else:
        click.echo(_quarantine_line({k: v for k, v in figures.items() if isinstance(v, dict)}))
    if any(t["task_id"] == "check_raw" and t["state"] == "skipped" for t in tis):
        click.echo(f"Pipeline run {run_id} finished in {total:.0f}s: nothing was loaded since the published "
                   "snapshot, so the later steps were skipped (--all-steps runs them anyway)")
        return
    click.echo(f"Pipeline run {run_id} finished in {total:.0f}s; marts published under {settings.published}")


def _quarantine_line(figures: dict[str, dict]) -> str:
    """Rows set aside by the loader (malformed, out of bounds) and by the raw data checks: never a failure,
    always said. ``figures``: what each task returned."""
    quarantined = sum(int(figures.get(task, {}).get("rows_quarantined") or 0) for task in QUARANTINING_TASKS)
    return (f"Rows quarantined this run: {quarantined} (reasons in raw.quarantine, "
            "counts in marts.fct_quarantined_rows)")


def _validated_date(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date", param_hint="--logical-date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _parse_figures(text: str) -> dict:
    try:
        return json.loads(text.replace("'", '"').replace("True", "true").replace("False", "false"))
    except ValueError:
        return {}


def _describe(figures: dict) -> str:
    keys = [k for k in figures if k != "seconds" and isinstance(figures[k], (int, float, str))]
    return ", ".join(f"{k}={figures[k]}" for k in keys[:5])


def _run_failed(log_path: Path) -> bool:
    text = log_path.read_text(errors="replace")
    return "state:failed" in text or "DagRun Finished" in text and "state=failed" in text


def task_errors(lines: list[str]) -> list[tuple[str | None, str]]:
    """(task, message) for each task that failed with an exception in an ``airflow dags test`` log: the
    traceback's last line and the lines that continue it (a data-check report spans several)."""
    out: list[tuple[str | None, str]] = []
    task = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _START.search(line):
            task = m.group(1)
        elif (m := _EXCEPTION.match(line)) and i > 0 and lines[i - 1].startswith(" "):
            message = [f"{m.group(1)}: {m.group(2)}" if m.group(1) != "AirflowFailException" else m.group(2)]
            while i + 1 < len(lines) and lines[i + 1].strip() and not _LOG_LINE.match(lines[i + 1]):
                i += 1
                message.append(lines[i])
            out.append((task, "\n".join(message)))
        i += 1
    return out


def _failure_excerpt(log_path: Path, lines: int = 40) -> str:
    text = log_path.read_text(errors="replace").splitlines()
    hits = [i for i, line in enumerate(text) if _FAILED.search(line)]
    start = max(0, (hits[0] - 5) if hits else len(text) - lines)
    return "\n".join(text[start : start + lines])
