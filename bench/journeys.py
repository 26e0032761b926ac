"""Benchmark: the conversation model's defaults on both dialogue sets (sgd_dev, multiwoz), offline.

Run ``python -m bench journeys`` from the repository root. Reads the dialogue sets from
``$TURRET_SHARED_DATA`` or ``../shared/data`` and the scoring script ``eval_journeys.py`` from
``$TURRET_SHARED_EVAL`` or ``../shared/eval``; exits 0 with a message when either is absent.

What the product gives each turn does not depend on the conversation model: the embedding, the per-message
topic, its similarity and the topic centroids. They are captured once per set from a real run of the product
(``bench.journeys_sgd_pipeline.ingest_and_run``: every turn posted through ``/track/batch`` of ``turret
serve``, then ``turret pipeline run`` on product defaults) and cached in ``bench/results/journeys_<set>.npz``
(gitignored): the rows the pipeline's ``assign_journeys`` task reads (``turret.journey_topics``' query, the
same columns and order), the centroids, and the pipeline's own journey topics. The harness then runs
``turret.conversation.assign_sessions_frame`` on those rows with candidate ``ConversationParams`` (seconds
per set) and scores each with ``eval_journeys.evaluate_journeys`` (imported from the shared script, the same
figures ``python -m bench quality`` reports) plus the domain-coverage bar (``bench.quality.journey_summary``).

1. Check: the defaults, decoded here, must give exactly the pipeline's journey topics (same rows, same
   model), hence its figures.
2. Grid over a few knobs, a point chosen on BOTH sets together: among points whose switch rate is within
   25% of gold on every set, the highest mean switch F1 (ties: mean JS). Reported per set, and
   leave-one-set-out: the point chosen on one set alone, applied to the other. Nothing is adopted
   automatically: the defaults live in ``turret.conversation.ConversationParams`` (docs/journeys.md says why
   they stayed on 2026-12-07).

Options: ``--sets a,b`` (default both), ``--recapture`` (run the product again even when cached),
``--no-grid`` (only the check and the current defaults), ``--generic-percentiles`` (an experiment: the
generic-topic rule on within-set percentiles of specificity and persistence). Output: tables on stdout and
bench/results/journeys.json.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import one_of, options
from bench.quality import DIALOGUE_FILES, DIALOGUE_SETS, data_dir, eval_dir, journey_summary

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
RATE_TOLERANCE = 0.25

# Few knobs, few values: the transition prior and the evidence a message needs to move the conversation.
GRID = {
    "stay_probability": [0.85, 0.9, 0.95, 0.97],
    "temperature": [0.04, 0.05, 0.07],
    "min_topical_similarity": [0.5, 0.55, 0.6],
    "engine_bonus": [0.0, 0.02, 0.05],
}

RELATIVE_GRID = [0.3, 0.4, 0.5, 0.6]

# -- capture: the product's per-turn rows, once per set ------------------------------------------------------


def load_records(name: str) -> list[dict]:
    path = data_dir() / DIALOGUE_FILES[name]
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cache_path(name: str) -> Path:
    return RESULTS / f"journeys_{name}.npz"


def capture(name: str, records: list[dict]) -> dict:
    """Post the set through the API, run the pipeline, and keep what ``assign_journeys`` reads."""
    import duckdb
    from turret.journey_topics import _MESSAGES_SQL

    from bench.journeys_sgd_pipeline import ingest_and_run

    home = Path(tempfile.mkdtemp(prefix=f"turret-bench-journeys-{name}-"))
    try:
        run = ingest_and_run(home, records, 500)
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:
            (model,) = con.execute(
                "select model from pipeline.topic_models where field = 'prompt'"
            ).fetchone()
            (project,) = con.execute(
                "select distinct project_id from pipeline.event_topics where field = 'prompt'"
            ).fetchone()
            frame = con.execute(_MESSAGES_SQL, [model, project, "prompt"]).df()
            cents = con.execute(
                "select topic_id, centroid from pipeline.topic_centroids "
                "where project_id = ? and field = 'prompt' order by topic_id", [project]
            ).fetchall()
            journeys = con.execute(
                "select event_id, journey_topic_id, kind from pipeline.journey_topics "
                "where project_id = ? and field = 'prompt'", [project]
            ).df()
        finally:
            con.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    to_gold = run["id_map"]
    frame = frame.merge(journeys, on="event_id", how="left")
    data = {
        "X": np.stack(frame["vector"].to_numpy()).astype(np.float32),
        "session_id": np.asarray(frame["session_id"].astype(str).tolist(), dtype=str),
        "event_id": np.asarray(frame["event_id"].astype(str).tolist(), dtype=str),
        "gold_event_id": np.asarray(frame["event_id"].map(to_gold).astype(str).tolist(), dtype=str),
        "step_index": frame["step_index"].to_numpy(np.int64),
        "topic_id": frame["topic_id"].fillna(-1).to_numpy(np.int64),
        "similarity": frame["similarity"].to_numpy(np.float64),
        "n_words": frame["n_words"].fillna(-1).to_numpy(np.int64),
        "pipeline_journey_topic_id": frame["journey_topic_id"].fillna(-1).to_numpy(np.int64),
        "pipeline_kind": np.asarray(frame["kind"].fillna("").astype(str).tolist(), dtype=str),
        "centroid_ids": np.array([int(t) for t, _ in cents], dtype=np.int64),
        "centroids": np.stack([np.asarray(c, dtype=np.float32) for _, c in cents]),
        "embedding_model": np.array(model),
        "captured_at": np.array(datetime.now(UTC).isoformat(timespec="seconds")),
        "pipeline_seconds": np.array(run["seconds"]["pipeline"]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache_path(name), **data)
    return data


def load_capture(name: str, records: list[dict], *, recapture: bool = False) -> dict:
    path = cache_path(name)
    if path.exists() and not recapture:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    print(f"-- {name}: capturing the product's topics (API + pipeline; minutes)", flush=True)
    return capture(name, records)


# -- evaluation ----------------------------------------------------------------------------------------------


def _eval_module():
    sys.path.insert(0, str(eval_dir()))
    try:
        import eval_journeys
    finally:
        sys.path.pop(0)
    return eval_journeys


class DialogueSet:
    """One set's captured rows, gold records and scorer; ``score(params)`` runs the conversation model."""

    def __init__(self, name: str, records: list[dict], cap: dict) -> None:
        import pandas as pd

        self.name, self.records, self.cap = name, records, cap
        self.frame = pd.DataFrame({
            "project_id": "sgd", "field": "prompt",
            "session_id": cap["session_id"], "event_id": cap["event_id"],
            "occurred_at": cap["step_index"], "topic_id": cap["topic_id"],
            "similarity": cap["similarity"], "n_words": cap["n_words"],
        })
        self.centroids = {int(t): c for t, c in zip(cap["centroid_ids"], cap["centroids"], strict=True)}
        self.to_gold = dict(zip(cap["event_id"], cap["gold_event_id"], strict=True))
        self.evaluate = _eval_module().evaluate_journeys

    def decode(self, params) -> dict[str, int]:
        """Gold event id -> journey topic id under ``params``."""
        from turret.conversation import assign_sessions_frame

        out = assign_sessions_frame(self.frame, self.cap["X"], self.centroids, params)
        pairs = zip(out["event_id"], out["journey_topic_id"], strict=True)
        return {self.to_gold[e]: int(t) for e, t in pairs}

    def score_journeys(self, journey: dict[str, int]) -> dict:
        """``eval_journeys`` figures and the domain bar for a journey topic per gold event id."""
        pred = [journey.get(r["event_id"]) for r in self.records]
        res, _, _, _ = self.evaluate(self.records, [None if p is None else str(p) for p in pred])
        by_gold = {e: {"journey_topic_id": t} for e, t in journey.items()}
        s = journey_summary(self.records, by_gold, res)
        s["switch_precision"] = round(res["switchpoint_mapped_P"], 4)
        s["switch_recall"] = round(res["switchpoint_mapped_R"], 4)
        return s

    def score(self, params) -> dict:
        return self.score_journeys(self.decode(params))

    def pipeline_journeys(self) -> dict[str, int]:
        return {self.to_gold[e]: int(t) for e, t in
                zip(self.cap["event_id"], self.cap["pipeline_journey_topic_id"], strict=True)}


def percentiles(values: dict[int, float]) -> dict[int, float]:
    """Each topic's rank among the dimension's topics, scaled to [0, 1] (0 = lowest)."""
    keys = list(values)
    if len(keys) < 2:
        return {k: 0.0 for k in keys}
    ranks = np.array([values[k] for k in keys]).argsort().argsort() / (len(keys) - 1)
    return {k: float(r) for k, r in zip(keys, ranks, strict=True)}


def relative_generic_params(ds: DialogueSet, base, spec_share: float, pers_share: float):
    """An experiment, not the product's rule: a topic is generic when its co-session specificity AND its
    persistence rank in the lowest ``spec_share`` / ``pers_share`` of the set's topics (no gold labels; the
    product's rule uses absolute thresholds, 0.2 nats and 0.15, which judge nearly every multiwoz topic
    unspecific and so switch the rule off there)."""
    from turret.conversation import topic_persistence, topic_specificity

    order = np.lexsort((ds.cap["step_index"], ds.cap["session_id"]))
    sessions, topics = ds.cap["session_id"][order], ds.cap["topic_id"][order]
    return replace(base, topic_specificity=percentiles(topic_specificity(sessions, topics)),
                   topic_persistence=percentiles(topic_persistence(sessions, topics)),
                   min_topic_specificity=spec_share, min_topic_persistence=pers_share)


def rate_ok(s: dict) -> bool:
    return s["switch_rate_ratio"] is not None and abs(s["switch_rate_ratio"] - 1) <= RATE_TOLERANCE


def choose(trials: list[dict], sets: list[str]) -> dict:
    """The chosen point for ``sets``: switch rate within 25% on each, then the highest mean switch F1 (ties:
    lower mean JS). With no point inside the rate band, the smallest worst rate error wins."""
    def mean(t, key):
        return float(np.mean([t["scores"][s][key] for s in sets]))

    feasible = [t for t in trials if all(rate_ok(t["scores"][s]) for s in sets)]
    if feasible:
        return max(feasible, key=lambda t: (round(mean(t, "switch_f1"), 4), -mean(t, "js")))
    return min(trials, key=lambda t: max(abs(t["scores"][s]["switch_rate_ratio"] - 1) for s in sets))


def _line(name: str, s: dict) -> str:
    return (f"{name:9} JS {s['js']:.3f}  F1 {s['switch_f1']:.3f} (P {s['switch_precision']:.3f} "
            f"R {s['switch_recall']:.3f})  rate x{s['switch_rate_ratio']:.2f}  "
            f"journey topics {s['journey_topics']}  missing domains {s['domains_missing'] or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = options("journeys", __doc__)
    parser.add_argument("--sets", type=one_of(DIALOGUE_SETS), default=DIALOGUE_SETS,
                        help="comma-separated (default: both)")
    parser.add_argument("--recapture", action="store_true", help="run the product again even when cached")
    parser.add_argument("--no-grid", action="store_true", help="only the check and the current defaults")
    parser.add_argument("--generic-percentiles", action="store_true",
                        help="experiment: the generic-topic rule on within-set percentiles")
    args = parser.parse_args(argv)
    if not data_dir().exists() or not (eval_dir() / "eval_journeys.py").exists():
        print(f"journeys: {data_dir()} or {eval_dir()} not found (set TURRET_SHARED_DATA / "
              "TURRET_SHARED_EVAL); nothing to benchmark.")
        return 0
    from turret.conversation import ConversationParams, default_prototypes

    names = list(args.sets)
    sets: dict[str, DialogueSet] = {}
    for name in names:
        records = load_records(name)
        sets[name] = DialogueSet(name, records, load_capture(name, records, recapture=args.recapture))
    base = ConversationParams(prototypes=default_prototypes())
    defaults = {f.name: getattr(base, f.name) for f in fields(base) if f.name in GRID}

    out: dict = {"date": datetime.now(UTC).date().isoformat(), "defaults": defaults, "sets": {}}
    print("== check: the defaults decoded here vs the pipeline's own journey topics")
    for name, ds in sets.items():
        t0 = time.perf_counter()
        mine = ds.decode(base)
        seconds = time.perf_counter() - t0
        theirs = ds.pipeline_journeys()
        differ = sum(mine.get(e) != t for e, t in theirs.items())
        here, pipe = ds.score_journeys(mine), ds.score_journeys(theirs)
        print(_line(name, here) + f"  [{seconds:.1f} s]")
        print(_line("pipeline", pipe) + f"  ({differ} of {len(theirs)} turns differ)", flush=True)
        out["sets"][name] = {"turns": len(ds.records), "topics": len(ds.centroids),
                             "captured_at": str(ds.cap["captured_at"]),
                             "pipeline": pipe, "defaults_here": here, "turns_differing": differ}
    if args.generic_percentiles:
        rows = []
        print("\n== experiment: the generic-topic rule on within-set percentiles")
        for spec_share, pers_share in itertools.product(RELATIVE_GRID, RELATIVE_GRID):
            point = {"spec_share": spec_share, "pers_share": pers_share}
            scores = {n: ds.score(relative_generic_params(ds, base, spec_share, pers_share))
                      for n, ds in sets.items()}
            rows.append({"params": point, "scores": scores})
            print(f"{point}")
            for name in names:
                print("   " + _line(name, scores[name]), flush=True)
        out["generic_percentiles"] = {"chosen": choose(rows, names), "trials": rows}
        print(f"chosen on {names}: {out['generic_percentiles']['chosen']['params']}")
        if len(names) > 1:
            out["generic_percentiles"]["leave_one_set_out"] = {
                held: choose(rows, [n for n in names if n != held]) for held in names}
    if args.no_grid:
        _write(out)
        return 0

    keys = list(GRID)
    trials = []
    t0 = time.perf_counter()
    for values in itertools.product(*(GRID[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        params = replace(base, **point)
        trials.append({"params": point, "scores": {n: ds.score(params) for n, ds in sets.items()}})
    print(f"\n== grid: {len(trials)} points x {len(sets)} sets in {time.perf_counter() - t0:.0f} s")
    chosen = {"all": choose(trials, names)}
    if len(names) > 1:
        for name in names:
            chosen[f"only {name}"] = choose(trials, [name])
    for label, t in chosen.items():
        print(f"chosen on {label}: {t['params']}")
        for name in names:
            print("   " + _line(name, t["scores"][name]))
    out.update(grid=GRID, chosen=chosen, trials=trials)
    if len(names) > 1:
        out["leave_one_set_out"] = {
            held: {"chosen_on": [n for n in names if n != held],
                   "params": chosen[f"only {names[1 - i]}"]["params"] if len(names) == 2 else None,
                   "scores": chosen[f"only {names[1 - i]}"]["scores"][held] if len(names) == 2 else None}
            for i, held in enumerate(names)
        }
    _write(out)
    return 0


def _write(out: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "journeys.json"
    target.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {target}")


if __name__ == "__main__":
    raise SystemExit(main())
