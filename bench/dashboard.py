"""Benchmark: dashboard page latency with marts from 1M events.

Run ``python -m bench dashboard`` from the repository root after ``make demo`` (options:
``python -m bench.dashboard --events N --repeat N --source DIR``). It scales the demo's published
marts (``$TURRET_HOME/published``, default ``./.turret``; or ``--source DIR``) up to ``--events`` (default
1,000,000) events: the event-grain marts (fct_events, fct_event_enums, fct_event_numbers,
fct_session_transitions, fct_session_segments, fct_user_journeys) are copied with new event, session and user
ids and spread over 28 days; the aggregates the pages read that dbt derives from those marts alone
(``agg_topic_segments``, ``agg_topic_numbers``, ``agg_activity_daily``) are rebuilt from the scaled ones with
their own model SQL; the other topic-grain marts are kept (their size follows the topics, not the events).
That is the shape a month of a busy project gives, without embedding a million texts. The snapshot is written
under ``bench/results/dashboard/`` the way the pipeline publishes (``published/turret.duckdb``, DuckDB 1.0
storage).

Three measurements, all through the Flask app in-process, signed in:

- **cold**: each page as the first request after a publish (``--cold`` times per page): the snapshot is
  published again under a new name (a hard link) and ``turret.duckdb`` switched to it, so the app opens a
  new connection and has nothing cached for it, as after a pipeline run (the process itself is warm: every
  page was requested once on the demo-sized snapshot first, so imports and templates are loaded);
- **watched**: the same first request once ``turret ui``'s snapshot watcher (turret.ui.warm) has warmed the
  new snapshot, as a person opening the dashboard a few seconds after a publish gets it; the watcher's
  warm-up time (background work after each publish) is printed too;
- **warm**: each page ``--repeat`` times after a warm-up, p50 and p95, in the same run as two baselines: the
  same pages on the demo-sized snapshot and ``/healthz`` (the framework's floor);
- **mix**: ``--mix`` requests right after a publish, pages and filters drawn at random (seeded): no filter,
  date ranges, an event name, one or two enum values, a topic, in combinations; no two requests alike, so
  only what depends on the snapshot alone is ever cached; its first requests are cold ones.

Target: p95 <= 300 ms, warm per page and over the mix. Output: tables on stdout and
``bench/results/dashboard.json``.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from bench import options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TARGET_P95_MS = 300.0
SPREAD_DAYS = 28
PASSWORD = "bench"
# Marts dbt derives from the scaled marts alone: rebuilt from them with the model's own SQL.
DERIVED = ("agg_topic_segments", "agg_topic_numbers", "agg_activity_daily")
MODELS = REPO / "dbt_project" / "models" / "marts"
PAGE_KINDS = ("overview", "topics", "topic", "journeys (session)", "journeys (user)", "topic map")

# Event-grain marts and how a copy k of each row gets its own ids (``{k}`` is the copy number).
SCALED = {
    "fct_events": {"event_id": "event_id || '-' || k", "session_id": "session_id || '-' || k",
                   "user_id": "user_id || '-' || (k % 50)",
                   "occurred_at": "occurred_at + to_days(k % 28)",
                   "received_at": "received_at + to_days(k % 28)"},
    "fct_event_enums": {"event_id": "event_id || '-' || k", "occurred_at": "occurred_at + to_days(k % 28)"},
    "fct_event_numbers": {"event_id": "event_id || '-' || k", "occurred_at": "occurred_at + to_days(k % 28)"},
    "fct_session_transitions": {"session_id": "session_id || '-' || k",
                                "user_id": "user_id || '-' || (k % 50)",
                                "from_event_id": "from_event_id || '-' || k",
                                "to_event_id": "to_event_id || '-' || k",
                                "from_occurred_at": "from_occurred_at + to_days(k % 28)",
                                "to_occurred_at": "to_occurred_at + to_days(k % 28)"},
    "fct_session_segments": {"session_id": "session_id || '-' || k", "user_id": "user_id || '-' || (k % 50)",
                             "first_event_id": "first_event_id || '-' || k",
                             "last_event_id": "last_event_id || '-' || k",
                             "started_at": "started_at + to_days(k % 28)",
                             "ended_at": "ended_at + to_days(k % 28)"},
    "fct_user_journeys": {"session_id": "session_id || '-' || k", "user_id": "user_id || '-' || (k % 50)",
                          "previous_session_id": "previous_session_id || '-' || k",
                          "session_started_at": "session_started_at + to_days(k % 28)",
                          "session_ended_at": "session_ended_at + to_days(k % 28)"},
}


def pages(filters: dict[str, str], topic_id: int, enum: tuple[str, str] | None,
          day: str) -> list[tuple[str, str]]:
    """(name, URL) of every page, plain and filtered."""
    base = urlencode(filters)
    narrowed = dict(filters, start=day)
    if enum:
        narrowed[f"enum.{enum[0]}"] = enum[1]
    narrow = urlencode(narrowed)
    return [
        ("overview", f"/?{base}"),
        ("overview, filtered", f"/?{narrow}"),
        ("topics", f"/topics?{base}"),
        ("topics, filtered", f"/topics?{narrow}"),
        ("topic", f"/topics/{topic_id}?{base}"),
        ("topic, filtered", f"/topics/{topic_id}?{narrow}"),
        ("journeys (session)", f"/journeys?{base}"),
        ("journeys (user)", f"/journeys?{base}&scope=user"),
        ("journeys, filtered", f"/journeys?{narrow}&from={topic_id}"),
        ("topic map", f"/map?{base}"),
        ("metadata", f"/settings/metadata?{base}"),
        ("projects & keys", "/projects/"),
    ]


def scale(source: Path, target_dir: Path, events: int) -> tuple[Path, int]:
    """Publish a snapshot of ``source`` scaled to about ``events`` events; returns (stable path, events)."""
    import duckdb

    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    snapshot = target_dir / "turret-bench.duckdb"
    # Written as turret.publish writes a snapshot (DuckDB 1.0 storage), then used as the default catalog.
    con = duckdb.connect()
    con.execute(f"attach '{snapshot}' as bench (storage_version 'v1.0.0')")
    con.execute("use bench")
    try:
        con.execute(f"attach '{source}' as src (read_only)")
        (n,) = con.execute("select count(*) from src.marts.fct_events").fetchone()
        copies = max(1, math.ceil(events / max(n, 1)))
        con.execute("create schema marts")
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'src' "
            "and table_schema = 'marts' and table_type = 'BASE TABLE' order by 1").fetchall()]
        for table in tables:
            if table not in SCALED:
                con.execute(f'create table marts."{table}" as select * from src.marts."{table}"')
                continue
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'src' "
                "and table_schema = 'marts' and table_name = ? order by ordinal_position",
                [table]).fetchall()]
            select = ", ".join(f'{SCALED[table].get(c, c)} as "{c}"' for c in columns)
            con.execute(f'create table marts."{table}" as select {select} '
                        f'from src.marts."{table}", range({copies}) as r(k)')
        for table in DERIVED:
            if table in tables:
                con.execute(f'create or replace table marts."{table}" as {model_sql(table)}')
        (total,) = con.execute("select count(*) from marts.fct_events").fetchone()
        con.execute("detach src")
    finally:
        con.close()
    (target_dir / "turret.duckdb").symlink_to(snapshot.name)
    return target_dir / "turret.duckdb", total


def model_sql(name: str) -> str:
    """A dbt model's SQL over the marts schema: ``{{ ref('x') }}`` becomes ``marts."x"`` (the models in
    DERIVED use no other Jinja)."""
    sql = re.sub(r"\{\{\s*ref\('(\w+)'\)\s*\}\}", r'marts."\1"', (MODELS / f"{name}.sql").read_text())
    if "{{" in sql or "{%" in sql:
        raise SystemExit(f"{name}.sql uses Jinja beyond ref(): the bench cannot rebuild it")
    return sql


def timed_get(client, url: str) -> float:
    start = time.perf_counter()
    answer = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"{url}: HTTP {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    return elapsed


def republish(published: Path) -> None:
    """Switch ``turret.duckdb`` to a new name for the same snapshot (a hard link), as a publish would."""
    link = published / "turret.duckdb"
    current = link.resolve()
    fresh = published / f"turret-bench-{time.monotonic_ns()}.duckdb"
    os.link(current, fresh)
    tmp = published / ".turret.duckdb.switch"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(fresh.name)
    os.replace(tmp, link)


def cold(client, published: Path, url: str, times: int) -> list[float]:
    """The page as the first request after each of ``times`` publishes (new connection, nothing cached)."""
    out = []
    for _ in range(times):
        republish(published)
        out.append(timed_get(client, url))
    return out


def watched(app, client, published: Path, url: str, times: int) -> tuple[list[float], list[float]]:
    """The page as the first request after each of ``times`` publishes once the snapshot watcher of
    ``turret ui`` (turret.ui.warm) has warmed the new snapshot: (request ms, warm-up seconds) per publish."""
    from turret.ui.warm import warm

    out, warm_ups = [], []
    for _ in range(times):
        republish(published)
        started = time.perf_counter()
        warm(app.extensions["turret_marts"])
        warm_ups.append(time.perf_counter() - started)
        out.append(timed_get(client, url))
    return out, warm_ups


def mix_urls(published: Path, n: int, seed: int = 11) -> list[tuple[str, str]]:
    """``n`` (page kind, URL) pairs, pages and filters drawn at random from what the snapshot offers."""
    import duckdb

    rng = random.Random(seed)
    con = duckdb.connect(str(published), read_only=True)
    try:
        project, field = con.execute(
            "select project_id, field from marts.dim_topics group by all order by sum(events) desc limit 1"
        ).fetchone()
        topics = [t for (t,) in con.execute(
            "select topic_id from marts.dim_topics where project_id = ? and field = ? and topic_id <> -1 "
            "order by topic_id", [project, field]).fetchall()]
        enums = con.execute("select field, value::varchar from marts.fct_event_enums where project_id = ? "
                            "group by all", [project]).fetchall()
        names = [e for (e,) in con.execute("select distinct event_name from marts.fct_events "
                                           "where project_id = ?", [project]).fetchall()]
        first, last = con.execute("select min(occurred_at)::date, max(occurred_at)::date "
                                  "from marts.fct_events where project_id = ?", [project]).fetchone()
    finally:
        con.close()
    span = (last - first).days
    out, seen = [], set()
    while len(out) < n:
        kind = rng.choice(PAGE_KINDS)
        args = {"project": project, "field": field}
        if rng.random() < 0.6:  # dates: the last N days, or a window inside the data
            start = first + timedelta(days=rng.randint(0, span))
            args["start"] = start.isoformat()
            if rng.random() < 0.5:
                args["end"] = (start + timedelta(days=rng.randint(0, 10))).isoformat()
        if enums and rng.random() < 0.5:
            for name, value in rng.sample(enums, k=min(len(enums), rng.choice((1, 1, 2)))):
                args[f"enum.{name}"] = value
        if names and rng.random() < 0.15:
            args["event"] = rng.choice(names)
        path = {"overview": "/", "topics": "/topics", "topic": f"/topics/{rng.choice(topics)}",
                "journeys (session)": "/journeys", "journeys (user)": "/journeys", "topic map": "/map"}[kind]
        if kind == "journeys (user)":
            args["scope"] = "user"
        if kind.startswith("journeys") and rng.random() < 0.3:
            args["from"] = str(rng.choice(topics))
        url = f"{path}?{urlencode(args)}"
        if url not in seen:
            seen.add(url)
            out.append((kind, url))
    return out


def close(app) -> None:
    app.extensions["turret_marts"].close()
    app.extensions["turret_control_plane"].dispose()


def measure(client, url: str, repeat: int) -> list[float]:
    for _ in range(2):
        answer = client.get(url)
        if answer.status_code != 200:
            raise SystemExit(f"{url}: HTTP {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def signed_in_client(home: Path):
    from turret.settings import Settings
    from turret.ui import create_app

    # No snapshot watcher (turret.ui.warm): the cold figures are what a page costs when nothing warmed it.
    app = create_app(Settings(home=home, ui_password=PASSWORD), {"WTF_CSRF_ENABLED": False,
                                                                  "TURRET_UI_WARM": False})
    client = app.test_client()
    assert client.post("/login", data={"password": PASSWORD}).status_code == 302
    return app, client


def scope_of(published: Path) -> tuple[dict[str, str], int, tuple[str, str] | None, str]:
    import duckdb

    con = duckdb.connect(str(published), read_only=True)
    try:
        project, field, topic = con.execute(
            "select project_id, field, topic_id from marts.dim_topics where topic_id <> -1 "
            "order by events desc nulls last limit 1").fetchone()
        enum = con.execute("select field, value::varchar from marts.fct_event_enums where project_id = ? "
                           "group by all order by count(*) desc limit 1", [project]).fetchone()
        (last,) = con.execute("select max(occurred_at) from marts.fct_events where project_id = ?",
                              [project]).fetchone()
    finally:
        con.close()
    day = (last.date() - timedelta(days=7)).isoformat()
    return {"project": project, "field": field}, topic, tuple(enum) if enum else None, day


def main(argv: list[str] | None = None) -> int:
    parser = options("dashboard", __doc__)
    parser.add_argument("--source", type=Path, default=None,
                        help="published folder to scale (default: $TURRET_HOME/published, ./.turret)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--cold", type=int, default=3, help="new apps per page for the cold figures")
    parser.add_argument("--mix", type=int, default=200, help="requests of the random mix (0: none)")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("TURRET_HOME") or REPO / ".turret")
    source = (args.source or home / "published") / "turret.duckdb"
    if not source.exists():
        print(f"no published marts at {source}: run `make demo` first (or pass --source)")
        return 0
    work = RESULTS / "dashboard"
    started = time.perf_counter()
    small_home, big_home = work / "small", work / "big"
    for h in (small_home, big_home):
        shutil.rmtree(h, ignore_errors=True)
    (small_home / "published").mkdir(parents=True)
    shutil.copy(source.resolve(), small_home / "published" / "turret-small.duckdb")
    (small_home / "published" / "turret.duckdb").symlink_to("turret-small.duckdb")
    big, total = scale(source.resolve(), big_home / "published", args.events)
    print(f"scaled {source.resolve().name} to {total:,} events in {time.perf_counter() - started:.1f}s")

    results = {"events": total, "repeat": args.repeat, "target_p95_ms": TARGET_P95_MS, "pages": [],
               "load_average_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    filters, topic, enum, day = scope_of(big)
    clients = {}
    for label, h in (("small", small_home), ("1M", big_home)):
        clients[label] = signed_in_client(h)
    floor = measure(clients["1M"][1], "/healthz", args.repeat)
    for _name, url in pages(*scope_of(small_home / "published" / "turret.duckdb")):
        timed_get(clients["small"][1], url)  # imports and templates: the process is warm from here on
    results["healthz_p95_ms"] = round(p95(floor), 2)
    small_filters, small_topic, small_enum, small_day = scope_of(small_home / "published" / "turret.duckdb")
    small_pages = dict(pages(small_filters, small_topic, small_enum, small_day))
    print(f"{'page':<22}{'small p95':>11}{'cold med':>10}{'cold max':>10}{'watched':>9}{'1M p50':>9}"
          f"{'1M p95':>9}{'x small':>9}{'x floor':>9}")
    worst = 0.0
    warm_ups: list[float] = []
    for name, url in pages(filters, topic, enum, day):
        first = cold(clients["1M"][1], big.parent, url, args.cold) if args.cold else [float("nan")]
        after_watch, warm_up = (watched(*clients["1M"], big.parent, url, args.cold) if args.cold
                                else ([float("nan")], []))
        warm_ups.extend(warm_up)
        small = measure(clients["small"][1], small_pages[name], args.repeat)
        big_times = measure(clients["1M"][1], url, args.repeat)
        row = {"page": name, "url": re.sub(r"project=[^&]+", "project=…", url),
               "small_p95_ms": round(p95(small), 1), "cold_median_ms": round(statistics.median(first), 1),
               "cold_max_ms": round(max(first), 1),
               "watched_median_ms": round(statistics.median(after_watch), 1),
               "p50_ms": round(statistics.median(big_times), 1),
               "p95_ms": round(p95(big_times), 1)}
        worst = max(worst, row["p95_ms"])
        results["pages"].append(row)
        print(f"{name:<22}{row['small_p95_ms']:>11.1f}{row['cold_median_ms']:>10.1f}{row['cold_max_ms']:>10.1f}"
              f"{row['watched_median_ms']:>9.1f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
              f"{row['p95_ms'] / max(row['small_p95_ms'], 0.01):>9.1f}"
              f"{row['p95_ms'] / max(results['healthz_p95_ms'], 0.01):>9.0f}")
    results["worst_p95_ms"] = worst
    if warm_ups:
        results["watcher_warm_up_s"] = round(statistics.median(warm_ups), 2)
        print(f"turret ui's snapshot watcher warms a new snapshot in {results['watcher_warm_up_s']} s")
    results["meets_target"] = worst <= TARGET_P95_MS
    print(f"/healthz p95 {results['healthz_p95_ms']} ms; worst page p95 (warm) {worst} ms "
          f"({'meets' if results['meets_target'] else 'MISSES'} the {TARGET_P95_MS:.0f} ms target)")
    if args.mix:
        results["mix"] = run_mix(clients["1M"][1], big, args.mix)
        results["meets_target"] = results["meets_target"] and results["mix"]["p95_ms"] <= TARGET_P95_MS
    for app, _client in clients.values():
        close(app)
    results["load_average_at_end"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["meets_target"] else 1


def run_mix(client, published: Path, n: int) -> dict:
    """The random mix right after a publish (its first requests are cold): p50/p95/max overall and per
    page kind."""
    urls = mix_urls(published, n)
    republish(published.parent)
    times: dict[str, list[float]] = {}
    every = []
    for kind, url in urls:
        elapsed = timed_get(client, url)
        times.setdefault(kind, []).append(elapsed)
        every.append(elapsed)
    out = {"requests": n, "p50_ms": round(statistics.median(every), 1), "p95_ms": round(p95(every), 1),
           "max_ms": round(max(every), 1), "first_ms": round(every[0], 1), "kinds": {}}
    print(f"mix of {n} requests (after a publish, random pages and filters): p50 {out['p50_ms']} ms, "
          f"p95 {out['p95_ms']} ms, max {out['max_ms']} ms (first request {out['first_ms']} ms)")
    for kind, values in times.items():
        out["kinds"][kind] = {"requests": len(values), "p50_ms": round(statistics.median(values), 1),
                              "p95_ms": round(p95(values), 1), "max_ms": round(max(values), 1)}
        print(f"  {kind:<20}{len(values):>4} requests  p50 {out['kinds'][kind]['p50_ms']:>7.1f}  "
              f"p95 {out['kinds'][kind]['p95_ms']:>7.1f}  max {out['kinds'][kind]['max_ms']:>7.1f}")
    return out


if __name__ == "__main__":
    sys.exit(main())
