"""Benchmark: journeys on the SGD dev dialogues *through the product*: ingest API, pipeline, warehouse.

Run ``python -m bench journeys_sgd_pipeline`` (or ``python -m bench.journeys_sgd_pipeline``) from the
repository root. Reads ``sgd_dev/events_dev.jsonl`` like ``bench.journeys_sgd`` (``$TURRET_SHARED_DATA`` or
``../shared/data``) and exits 0 with a message when it is absent.

1. A fresh temporary TURRET_HOME; ``turret projects create sgd --plan enterprise``; ``turret serve`` on a
   free port (the demo's ``IngestServer``); every dialogue turn posted to ``POST /track/batch`` with only
   ``name, session_id, user_id, timestamp, metadata`` (``metadata`` = ``{"prompt": ...}``: no gold field, no
   client event_id). The API's acknowledgements (one ``event_id`` per event, in batch order) are how each
   stored event is joined back to its gold turn.
2. SIGTERM to the server (its landing segments seal), then ``turret pipeline run`` (the hourly DAG once,
   product defaults: embedding, PII scrubbing, topic engine; every ``TURRET_*`` variable of the caller's
   shell is dropped).
3. From ``<home>/warehouse.duckdb`` (read-only), per event: the per-message topic and the conversation-aware
   journey topic and kind that the pipeline's ``assign_journeys`` task wrote (``marts.fct_events.topic_id``,
   ``journey_topic_id``, ``message_kind``), i.e. exactly what the journey marts use.
4. Both scored with ``bench.journeys_sgd.score`` (one topic -> domain mapping, from the per-message topics),
   on all dialogues and on the same tune/heldout halves as the in-process benchmark.

Output: a side-by-side table, targets, timings, and bench/results/journeys_sgd_pipeline.json.

Options: ``--keep-home`` keeps the temporary TURRET_HOME (its path is printed); ``--home DIR`` skips steps 1-2
and scores an existing home (e.g. one kept before); ``--batch-size N`` (default 500).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TOPIC_DEFAULTS = REPO / "plugins" / "turret" / "topic_defaults.py"
API_FIELDS = ("name", "session_id", "user_id", "timestamp", "metadata")
PROJECT = "sgd"
FIELD = "prompt"
BATCH_SIZE = 500
MONTHLY_LIMIT = 100_000_000
SCORE_COLUMNS = ("pred_switch_rate", "gold_switch_rate", "switch_rate_ratio", "js_divergence", "switch_f1",
                 "exact_session_share")


# -- pure helpers (tests/bench/test_journeys_sgd_pipeline.py) -----------------------------------------------


def api_payload(record: dict[str, Any]) -> dict[str, Any]:
    """What a client app would send: only the API fields; metadata without any ``gold_*`` key."""
    out = {k: record[k] for k in API_FIELDS if k in record}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if not str(k).startswith("gold_")}
    return out


def acknowledged_ids(answer: dict[str, Any], n_sent: int) -> list[str]:
    """The server's ``event_id`` for each event of a batch, in the order sent; raises if any was refused."""
    results = answer.get("results") or []
    failed = [r for r in results if not (isinstance(r, dict) and r.get("success"))]
    if answer.get("accepted") != n_sent or len(results) != n_sent or failed:
        first = failed[0] if failed else answer
        raise RuntimeError(
            f"{answer.get('accepted')} of {n_sent} events accepted; first problem: {json.dumps(first)[:300]}"
        )
    ids = [r.get("event_id") for r in results]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != n_sent:
        raise RuntimeError("the acknowledgements do not carry one distinct event_id per event")
    return ids


def read_outlier_threshold(path: Path = TOPIC_DEFAULTS) -> float | None:
    """``OUTLIER_THRESHOLD`` as written in topic_defaults.py right now (parsed, not imported: the module may
    be cached or edited while the benchmark runs); None when absent or not a number."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "OUTLIER_THRESHOLD" for t in targets) and node.value:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return float(value) if isinstance(value, int | float) else None
    return None


def within_targets(s: dict) -> dict[str, bool]:
    """Each target on its own: JS <= 0.20, switch F1 >= 0.65, switch rate within 25% of gold."""
    ratio = s.get("switch_rate_ratio")
    return {
        "js<=0.20": s["js_divergence"] <= 0.20,
        "f1>=0.65": s["switch_f1"] >= 0.65,
        "rate_within_25%": ratio is not None and abs(ratio - 1) <= 0.25,
    }


# -- steps ---------------------------------------------------------------------------------------------------


def _product_env(home: Path) -> dict[str, str]:
    """The caller's environment without TURRET_*/AIRFLOW* (product defaults), on ``home``, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW"))}
    env.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               DBT_SEND_ANONYMOUS_USAGE_STATS="False")
    return env


def _turret() -> list[str]:
    from turret.demo.runner import turret_command

    return turret_command()


def create_project(env: dict[str, str]) -> str:
    """``turret projects create``; returns the API key (printed alone on the last line)."""
    proc = subprocess.run(
        [*_turret(), "projects", "create", PROJECT, "--plan", "enterprise",
         "--monthly-limit", str(MONTHLY_LIMIT)],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"turret projects create failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1].strip()


def post_all(url: str, api_key: str, records: list[dict], batch_size: int) -> dict[str, str]:
    """Post every record; returns server event_id -> gold event_id."""
    from turret.demo.runner import post_batch

    mapping: dict[str, str] = {}
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        answer = post_batch(url, api_key, [api_payload(r) for r in batch])
        try:
            ids = acknowledged_ids(answer, len(batch))
        except RuntimeError as exc:
            raise RuntimeError(f"batch at event {start}: {exc}") from None
        mapping.update(zip(ids, (r["event_id"] for r in batch), strict=True))
        done = start + len(batch)
        if done == len(records) or (done // batch_size) % 10 == 0:
            print(f"  posted {done:>6}/{len(records)}", flush=True)
    return mapping


def ingest_and_run(home: Path, records: list[dict], batch_size: int) -> dict:
    """Steps 1-2; returns timings and the server -> gold event id mapping."""
    from turret.airflow_env import airflow_environment, ensure_airflow_ready
    from turret.demo.runner import IngestServer, free_port
    from turret.settings import Settings

    env = _product_env(home)
    settings = Settings(home=home)
    t0 = time.perf_counter()
    api_key = create_project(env)
    server = IngestServer(settings, env, "127.0.0.1", free_port(), home / "logs" / "ingest.log")
    try:
        server.start()
        t_start = time.perf_counter() - t0
        print(f"  turret serve on {server.url} ({t_start:.1f} s to /healthz)", flush=True)
        t0 = time.perf_counter()
        id_map = post_all(server.url, api_key, records, batch_size)
        t_post = time.perf_counter() - t0
    except Exception:
        print(f"  server log tail:\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        t0 = time.perf_counter()
        code = server.stop()  # SIGTERM: the landing writer seals its segments
        t_stop = time.perf_counter() - t0
    print(f"  posted {len(records)} events in {t_post:.1f} s ({len(records) / t_post:.0f} events/s); "
          f"server stopped (code {code}) in {t_stop:.1f} s", flush=True)

    # Airflow's one-time setup (metadata DB) is not the pipeline's cost: done before the clock starts.
    t0 = time.perf_counter()
    ensure_airflow_ready(settings, airflow_environment(settings, env), echo=lambda *_: None)
    t_airflow = time.perf_counter() - t0
    log_path = home / "logs" / "pipeline-run.log"
    print(f"  airflow setup {t_airflow:.1f} s; turret pipeline run (log: {log_path}) ...", flush=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run([*_turret(), "pipeline", "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    t_pipeline = time.perf_counter() - t0
    tail = log_path.read_text(errors="replace").splitlines()[-40:]
    if proc.returncode != 0:
        raise RuntimeError(f"turret pipeline run failed ({proc.returncode}):\n" + "\n".join(tail))
    print(f"  pipeline run {t_pipeline:.1f} s", flush=True)
    summary = [line.rstrip() for line in tail if line.strip()][-25:]
    return {
        "id_map": id_map,
        "seconds": {"serve_start": round(t_start, 1), "post": round(t_post, 1),
                    "serve_stop": round(t_stop, 1),
                    "airflow_setup": round(t_airflow, 1), "pipeline": round(t_pipeline, 1)},
        "pipeline_log_tail": summary,
    }


def read_warehouse(warehouse: Path):
    """Per event: topic, similarity, session, time, text (``marts.fct_events``), embedding; and centroids."""
    import duckdb
    import numpy as np

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        events = con.execute(
            """
            select f.project_id, f.field, f.event_id, f.session_id, f.occurred_at, f.topic_id, f.similarity,
                   f.assigned_by, f.text, t.text_hash, f.journey_topic_id, f.message_kind
            from marts.fct_events as f
            join pipeline.event_texts as t using (project_id, event_id, field)
            where f.field = ?
            """,
            [FIELD],
        ).df()
        model_row = con.execute(
            "select model, params from pipeline.topic_models where field = ?", [FIELD]
        ).fetchone()
        if model_row is None:
            raise RuntimeError("pipeline.topic_models has no row for the prompt field: "
                               "no topic model was fitted")
        model, params = model_row[0], json.loads(model_row[1]) if model_row[1] else {}
        vectors = con.execute(
            "select text_hash, vector from pipeline.embeddings where model = ?", [model]
        ).fetchall()
        cents = con.execute(
            "select topic_id, centroid from pipeline.topic_centroids where field = ? and topic_id >= 0",
            [FIELD],
        ).fetchall()
        n_raw = con.execute("select count(*) from raw.events").fetchone()[0]
        n_quarantine = con.execute("select count(*) from raw.quarantine").fetchone()[0]
        n_topics = con.execute(
            "select count(*) from pipeline.topics where field = ? and topic_id >= 0 and status = 'active'",
            [FIELD],
        ).fetchone()[0]
    finally:
        con.close()
    by_hash = {h: np.asarray(v, dtype=np.float32) for h, v in vectors}
    missing = [h for h in events["text_hash"] if h not in by_hash]
    if missing:
        raise RuntimeError(f"{len(missing)} event texts have no embedding for model {model!r}")
    X = np.stack([by_hash[h] for h in events["text_hash"]])
    centroids = {int(t): np.asarray(c, dtype=np.float32) for t, c in cents}
    info = {"embedding_model": model, "engine_params": params, "raw_events": int(n_raw),
            "quarantined": int(n_quarantine), "active_topics": int(n_topics)}
    return events, X, centroids, info


def _print_table(results: dict) -> None:
    print(f"{'split':8} {'method':28} " + " ".join(f"{c:>19}" for c in SCORE_COLUMNS))
    for split, methods in results.items():
        for name, s in methods.items():
            print(f"{split:8} {name:28} " + " ".join(f"{s[c]!s:>19}" for c in SCORE_COLUMNS))


def _in_process_reference() -> dict | None:
    """The in-process benchmark's held-out figures (bench/results/journeys_sgd.json), when present."""
    path = RESULTS / "journeys_sgd.json"
    try:
        data = json.loads(path.read_text())
        return {"n_topics": data.get("n_topics"), "unclustered_share": data.get("unclustered_share"),
                "heldout": {k: data["results"]["heldout"][k] for k in ("per_message", "conversation")}}
    except (OSError, ValueError, KeyError):
        return None


# -- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = options("journeys_sgd_pipeline", __doc__)
    parser.add_argument("--home", type=Path, help="score an existing TURRET_HOME (skips ingest and the run)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary TURRET_HOME")
    args = parser.parse_args(argv)
    from bench.journeys_sgd import data_dir

    events_path = data_dir() / "sgd_dev" / "events_dev.jsonl"
    if not events_path.exists():
        print(f"journeys_sgd_pipeline: {events_path} not found (set TURRET_SHARED_DATA); "
              "nothing to benchmark.")
        return 0
    import pandas as pd

    from bench.journeys_sgd import load_events, per_message, score, topic_domains

    reuse, batch_size = args.home, args.batch_size
    keep = args.keep_home or reuse is not None
    threshold_start = read_outlier_threshold()
    env_threshold = os.environ.get("TURRET_TOPIC_OUTLIER_THRESHOLD")
    print(f"OUTLIER_THRESHOLD in plugins/turret/topic_defaults.py at start: {threshold_start}"
          + (f" (TURRET_TOPIC_OUTLIER_THRESHOLD={env_threshold} in this shell is NOT passed on)"
             if env_threshold else ""), flush=True)

    records = [json.loads(line) for line in events_path.open(encoding="utf-8")]
    gold = load_events(events_path)
    stamps = pd.to_datetime([r["timestamp"] for r in records], utc=True)
    now = datetime.now(UTC)
    print(f"{len(records)} events, {gold['session_id'].nunique()} sessions; timestamps "
          f"{stamps.min().isoformat()} .. {stamps.max().isoformat()} "
          f"(now {now.isoformat(timespec='seconds')})",
          flush=True)
    if stamps.max() > pd.Timestamp(now):
        print("  note: some timestamps are in the future; the API accepts at most 600 s of skew", flush=True)

    home = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="turret-bench-sgd-"))
    run: dict = {"seconds": {}, "pipeline_log_tail": []}
    try:
        if reuse:
            map_path = home / "bench_event_ids.json"
            run["id_map"] = json.loads(map_path.read_text())
            print(f"reusing {home} (no posting, no pipeline run)")
        else:
            print(f"TURRET_HOME={home}", flush=True)
            run = ingest_and_run(home, records, batch_size)
            (home / "bench_event_ids.json").write_text(json.dumps(run["id_map"]))
        threshold_end = read_outlier_threshold()

        t0 = time.perf_counter()
        wh, X, centroids, info = read_warehouse(home / "warehouse.duckdb")
        t_read = time.perf_counter() - t0
        id_map = run["id_map"]
        wh["gold_event_id"] = wh["event_id"].map(id_map)
        unknown = int(wh["gold_event_id"].isna().sum())
        n_missing = len(set(gold["event_id"]) - set(wh["gold_event_id"].dropna()))
        print(f"warehouse: {info['raw_events']} raw events ({info['quarantined']} quarantined), "
              f"{len(wh)} with a topic; {n_missing} posted turns missing, {unknown} unknown events; "
              f"{len(centroids)} centroids, "
              f"{info['active_topics']} active topics; engine outlier_threshold "
              f"{info['engine_params'].get('outlier_threshold')}", flush=True)
        keep_rows = wh["gold_event_id"].notna().to_numpy()
        wh, X = wh[keep_rows].reset_index(drop=True), X[keep_rows]
        wh["n_words"] = [len(str(t).split()) for t in wh["text"]]

        # The pipeline's own conversation-aware assignment (task assign_journeys, pipeline.journey_topics).
        if wh["message_kind"].isna().any():
            raise RuntimeError(f"{int(wh['message_kind'].isna().sum())} events have no journey topic: "
                               "the pipeline's assign_journeys step did not see them")
        conv = wh.assign(kind=wh["message_kind"], journey_topic_id=wh["journey_topic_id"].astype(int))
        to_gold = dict(zip(wh["event_id"], wh["gold_event_id"], strict=True))
        topics = pd.DataFrame({"event_id": wh["gold_event_id"], "topic_id": wh["topic_id"].astype(int)})
        conv = pd.DataFrame({"event_id": conv["event_id"].map(to_gold),
                             "journey_topic_id": conv["journey_topic_id"], "kind": conv["kind"]})
        conv = conv.merge(topics, on="event_id", how="left")
        # Turns without a warehouse topic stay in gold with topic -1 (no domain, no transition).
        g = gold.merge(topics, on="event_id", how="left")
        g["topic_id"] = g["topic_id"].fillna(-1).astype(int)
        mapping = topic_domains(g["topic_id"], g["gold_domain"])

        results: dict = {}
        for split in ("all", "tune", "heldout"):
            d = g if split == "all" else g[g["split"] == split]
            ids = set(d["event_id"])
            results[split] = {
                "per_message (pipeline)": score(per_message(d), d, mapping),
                "conversation (pipeline)": score(conv[conv["event_id"].isin(ids)], d, mapping),
            }
        kinds = conv["kind"].value_counts().to_dict()
        unclustered = float((g["topic_id"] < 0).mean())

        print()
        print(f"topics: {len(centroids)}; unclustered share (per message): {unclustered:.3f}; "
              f"journey topic -1 share: {float((conv['journey_topic_id'] < 0).mean()):.3f}")
        _print_table(results)
        met = {split: {m: within_targets(s) for m, s in methods.items()}
               for split, methods in results.items()}
        for split in ("all", "heldout"):
            for m in results[split]:
                flags = met[split][m]
                print(f"targets {split:7} {m:26}: {'MET' if all(flags.values()) else 'not met'} "
                      + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
        print(f"kinds: {kinds}")
        secs = {**run["seconds"], "read_warehouse": round(t_read, 1)}
        print("seconds: " + ", ".join(f"{k} {v}" for k, v in secs.items()))
        when = "now (no pipeline run)" if reuse else f"at start, {threshold_end} after the pipeline"
        print(f"OUTLIER_THRESHOLD: {threshold_start} {when} (file); "
              f"{info['engine_params'].get('outlier_threshold')} used by the engine (pipeline.topic_models)")
        if threshold_start != threshold_end:
            print("  warning: topic_defaults.OUTLIER_THRESHOLD changed during the run", flush=True)

        out = {
            "date": now.date().isoformat(),
            "n_turns": len(gold),
            "n_sessions": int(gold["session_id"].nunique()),
            "n_with_topic": len(wh),
            "n_missing": n_missing,
            "n_topics": len(centroids),
            "unclustered_share": round(unclustered, 4),
            "outlier_threshold": {"file_at_start": threshold_start, "file_after_pipeline": threshold_end,
                                  "engine": info["engine_params"].get("outlier_threshold")},
            "warehouse": info,
            "conversation_params": "the pipeline's assign_journeys step: ConversationParams() defaults, "
                                   "no tuning",
            "results": results,
            "targets": met,
            "kinds_all": {str(k): int(v) for k, v in kinds.items()},
            "seconds": secs,
            "pipeline_log_tail": run.get("pipeline_log_tail", []),
            "in_process_reference": _in_process_reference(),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        target = RESULTS / "journeys_sgd_pipeline.json"
        target.write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {target}")
        return 0
    finally:
        if keep:
            print(f"kept TURRET_HOME {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
