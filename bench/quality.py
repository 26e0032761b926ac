"""Benchmark: topic quality on the whole dev suite, through the product, beside two references.

Run ``python -m bench quality`` from the repository root. Reads the dev suite from ``$TURRET_SHARED_DATA`` or
``../shared/data`` (exits 0 with a message when it is absent: a user's machine does not have it) and scores
what the product writes with the shared scoring scripts (``../shared/eval`` or ``$TURRET_SHARED_EVAL``).

Intent sets (banking77 train+test, banking77 test alone, hwu64), each at 1k, 3k and all texts (a seeded random
sample), and ``small_intents`` (30 texts of each of the two sets' 141 intents, at its own size only): the
texts are written as JSON Lines and clustered by ``turret cluster`` (a subprocess on product defaults); its
output is scored with ``eval_clusters.py`` (ARI, NMI, unclustered share, topics) and ``eval_labels.py``
(label match@1). Beside it, in the same run on the same embeddings (the product's
embedder, cached in bench/results/): BERTopic's defaults (precomputed embeddings) and KMeans told the true
number of intents. hwu64 also gets the NMI of the product's themes against its 18 scenarios.

Dialogue sets (sgd_dev, multiwoz): every user turn is posted through ``/track/batch`` of a real
``turret serve`` (only the API fields), ``turret pipeline run`` runs the hourly DAG, and the
conversation-aware journey topic of each turn (``marts.fct_events.journey_topic_id``) is scored with
``eval_journeys.py``: JS divergence of switch transitions, switch F1, switch rate against gold, and which gold
domains (>= 2% of turns) are the majority of at least one journey topic.

Options (``python -m bench quality ...``): ``--sets a,b`` (default: all six), ``--sizes 1000,3000,all``,
``--skip-bertopic``, ``--skip-dialogues``. Output: one table on stdout and bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import one_of, options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BENCH_MODEL = "all-MiniLM-L6-v2"
SEED = 0
INTENT_SETS = ("banking77", "banking77_test", "hwu64", "small_intents")
# "small_intents": banking77 and hwu64 together, a seeded 30 texts of each of their 141 intents (4,230 texts):
# many small intents, as in a 150-intent assistant set of 4,500 queries, where the suite's own sets have
# about 170 texts per intent. Measured at its own size only.
SMALL_INTENTS_PER_INTENT = 30
FIXED_SIZE_SETS = {"small_intents": ("all",)}
DIALOGUE_SETS = ("sgd_dev", "multiwoz")
DIALOGUE_FILES = {"sgd_dev": "sgd_dev/events_dev.jsonl", "multiwoz": "multiwoz/events.jsonl"}
DEFAULT_SIZES = ("1000", "3000", "all")
DOMAIN_MIN_SHARE = 0.02


def data_dir() -> Path:
    env = os.environ.get("TURRET_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def eval_dir() -> Path:
    env = os.environ.get("TURRET_SHARED_EVAL")
    return Path(env) if env else (REPO.parent / "shared" / "eval")


# -- data ---------------------------------------------------------------------------------------------------


def load_intents(name: str) -> list[dict]:
    """Rows ``{id, text, label[, scenario]}`` of an intent set."""
    if name == "small_intents":
        return small_intents()
    root = data_dir()
    files = {
        "banking77": [root / "banking77" / "train.jsonl", root / "banking77" / "test.jsonl"],
        "banking77_test": [root / "banking77" / "test.jsonl"],
        "hwu64": [root / "hwu64" / "all.jsonl"],
    }[name]
    rows = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def small_intents(per_intent: int = SMALL_INTENTS_PER_INTENT) -> list[dict]:
    """A seeded ``per_intent`` texts of every intent of banking77 (train+test) and hwu64. The two sets share
    no intent name, so labels stay as they are (``eval_labels.py`` reads them as names); ids get their set's
    prefix ("hwu64:12")."""
    rng = np.random.default_rng(SEED)
    out = []
    for name in ("banking77", "hwu64"):
        by_intent: dict[str, list[dict]] = {}
        for r in load_intents(name):
            by_intent.setdefault(r["label"], []).append(r)
        for label, members in sorted(by_intent.items()):
            for i in sorted(rng.choice(len(members), min(per_intent, len(members)), replace=False)):
                r = members[i]
                out.append({"id": f"{name}:{r['id']}", "text": r["text"], "label": label})
    return out


def sample(rows: list[dict], size: str) -> list[dict]:
    """All rows, or a seeded random sample of ``size`` rows in their original order."""
    if size == "all" or int(size) >= len(rows):
        return rows
    rng = np.random.default_rng(SEED)
    keep = np.sort(rng.choice(len(rows), int(size), replace=False))
    return [rows[i] for i in keep]


def embed(texts: list[str], cache: Path) -> np.ndarray:
    """Unit vectors of the product's embedder for ``texts`` (a cache keyed by the distinct texts)."""
    unique = sorted(set(texts))
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        keys = json.loads(cache.with_suffix(".json").read_text())
        if keys == unique:
            position = {t: i for i, t in enumerate(unique)}
            return stored[[position[t] for t in texts]]
    from turret.embed import SentenceTransformerEmbedder

    X = SentenceTransformerEmbedder(BENCH_MODEL).encode(unique, progress=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, X)
    cache.with_suffix(".json").write_text(json.dumps(unique))
    position = {t: i for i, t in enumerate(unique)}
    return X[[position[t] for t in texts]]


# -- scoring with the shared scripts ------------------------------------------------------------------------


def _run_eval(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(eval_dir() / script), *args, "--json"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def score_clusters(gold_path: Path, pred_path: Path) -> dict:
    r = _run_eval("eval_clusters.py", str(gold_path), str(pred_path))
    return {"ari": round(r["ARI"], 4), "nmi": round(r["NMI"], 4),
            "unclustered": round(r["noise_fraction"], 4), "topics": r["n_pred_clusters"]}


def score_labels(gold_path: Path, pred_path: Path) -> float:
    return round(_run_eval("eval_labels.py", str(gold_path), str(pred_path))["match@1"], 4)


def write_pred(path: Path, ids: list[str], topics, labels: list[str] | None = None) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "topic_id"] + (["topic_label"] if labels is not None else []))
        for i, row_id in enumerate(ids):
            w.writerow([row_id, int(topics[i])] + ([labels[i]] if labels is not None else []))


def nmi(a, b) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return round(float(normalized_mutual_info_score(a, b)), 4)


# -- intent sets --------------------------------------------------------------------------------------------


def run_turret_cluster(rows: list[dict], work: Path) -> tuple[Path, dict, float]:
    """``turret cluster`` over the rows' texts; returns (its output CSV, the rows by id, seconds)."""
    from turret.demo.runner import turret_command

    source = work / "input.jsonl"
    with open(source, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
    out = work / "turret.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
    env.update(TURRET_HOME=str(work / "home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run([*turret_command(), "cluster", str(source), "--field", "text", "-o", str(out)],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"turret cluster failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    with open(out, encoding="utf-8") as f:
        by_id = {r["id"]: r for r in csv.DictReader(f)}
    return out, by_id, seconds


def run_bertopic(texts: list[str], X: np.ndarray) -> np.ndarray:
    from bertopic import BERTopic

    topics, _ = BERTopic().fit_transform(texts, embeddings=X)
    return np.asarray(topics)


def run_kmeans(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(X)


def intent_targets(turret: dict, bertopic: dict | None, kmeans: dict, n_gold: int, size: int,
                   name: str) -> dict:
    """The issue's bars for one sample (sizes of 3k or more; banking77 test has its own absolute bar)."""
    out = {
        "unclustered<=5%": turret["unclustered"] <= 0.05,
        "topics in 0.7-1.6x gold": 0.7 * n_gold <= turret["topics"] <= 1.6 * n_gold,
        "ARI>=KMeans(true k)": turret["ari"] >= kmeans["ari"],
    }
    if bertopic is not None:
        out["ARI>=BERTopic+0.10"] = turret["ari"] >= bertopic["ari"] + 0.10
        out["NMI>=BERTopic+0.03"] = turret["nmi"] >= bertopic["nmi"] + 0.03
    if name == "banking77_test" and size >= 3000:
        out["ARI>=0.60"] = turret["ari"] >= 0.60
        out["NMI>=0.85"] = turret["nmi"] >= 0.85
    return out


def intent_set(name: str, sizes: tuple[str, ...], *, skip_bertopic: bool) -> list[dict]:
    rows_all = load_intents(name)
    X_all = embed([r["text"] for r in rows_all], RESULTS / f"quality_{name}_minilm.npy")
    index = {r["id"]: i for i, r in enumerate(rows_all)}
    results = []
    for size in FIXED_SIZE_SETS.get(name, sizes):
        rows = sample(rows_all, size)
        if size != "all" and int(size) >= 0.9 * len(rows_all):
            continue  # (nearly) the whole set: "all" covers it
        ids = [r["id"] for r in rows]
        gold = [r["label"] for r in rows]
        X = X_all[[index[i] for i in ids]]
        n_gold = len(set(gold))
        print(f"-- {name} n={len(rows)} ({n_gold} gold intents)", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"turret-quality-{name}-") as tmp:
            work = Path(tmp)
            gold_path = work / "gold.jsonl"
            with open(gold_path, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps({"id": r["id"], "text": r["text"], "label": r["label"]}) + "\n")
            out_path, by_id, seconds = run_turret_cluster(rows, work)
            turret = {**score_clusters(gold_path, out_path),
                      "label_match@1": score_labels(gold_path, out_path),
                      "seconds": round(seconds, 1)}
            conversational = sum(1 for r in by_id.values() if r.get("topic_kind") == "conversational")
            turret["conversational"] = round(conversational / len(rows), 4)
            themed = [r for r in rows if by_id[r["id"]].get("theme_id") not in (None, "")]
            if "scenario" in rows[0] and themed:
                # Over the texts that have a theme (unclustered ones have none).
                turret["theme_nmi_vs_scenarios"] = nmi([r["scenario"] for r in themed],
                                                       [by_id[r["id"]]["theme_id"] for r in themed])
                turret["themes"] = len({by_id[r["id"]]["theme_id"] for r in themed})
                turret["scenarios"] = len({r["scenario"] for r in rows})
            methods = {"turret": turret}
            t0 = time.perf_counter()
            km = run_kmeans(X, n_gold)
            path = work / "kmeans.csv"
            write_pred(path, ids, km)
            methods["kmeans_true_k"] = {**score_clusters(gold_path, path),
                                        "seconds": round(time.perf_counter() - t0, 1)}
            if not skip_bertopic:
                t0 = time.perf_counter()
                bt = run_bertopic([r["text"] for r in rows], X)
                path = work / "bertopic.csv"
                write_pred(path, ids, bt)
                methods["bertopic_defaults"] = {**score_clusters(gold_path, path),
                                                "seconds": round(time.perf_counter() - t0, 1)}
        entry = {"set": name, "size": len(rows), "gold_intents": n_gold, "methods": methods}
        if len(rows) >= 3000:
            entry["targets"] = intent_targets(turret, methods.get("bertopic_defaults"),
                                              methods["kmeans_true_k"],
                                              n_gold, len(rows), name)
        results.append(entry)
        _print_intent(entry)
    return results


# -- dialogue sets ------------------------------------------------------------------------------------------


def dialogue_set(name: str) -> dict:
    from bench.journeys_sgd_pipeline import ingest_and_run

    path = data_dir() / DIALOGUE_FILES[name]
    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    print(f"-- {name}: {len(records)} turns, {len({r['session_id'] for r in records})} sessions", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"turret-quality-{name}-") as tmp:
        home = Path(tmp)
        run = ingest_and_run(home, records, 500)
        events = read_journeys(home / "warehouse.duckdb")
        to_gold = run["id_map"]
        pred_path = home / "journeys.csv"
        by_gold = {}
        with open(pred_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["event_id", "topic_id", "journey_topic_id", "message_kind"])
            for e in events:
                gold_id = to_gold.get(e["event_id"])
                if gold_id is None:
                    continue
                by_gold[gold_id] = e
                w.writerow([gold_id, e["topic_id"], e["journey_topic_id"], e["message_kind"]])
        scores = _run_eval("eval_journeys.py", str(path), str(pred_path), "--pred-col", "journey_topic_id")
    result = journey_summary(records, by_gold, scores)
    result["seconds"] = run["seconds"]
    _print_dialogue(name, result)
    return {"set": name, **result}


def read_journeys(warehouse: Path) -> list[dict]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select event_id, topic_id, journey_topic_id, message_kind from marts.fct_events "
            "where field = 'prompt'"
        ).fetchall()
        topics = con.execute(
            "select count(*) from marts.dim_topics where field = 'prompt' and topic_id >= 0"
        ).fetchone()[0]
    finally:
        con.close()
    out = [dict(zip(("event_id", "topic_id", "journey_topic_id", "message_kind"), r, strict=True))
           for r in rows]
    for e in out:
        e["topics"] = topics
    return out


def journey_summary(records: list[dict], by_gold: dict, scores: dict) -> dict:
    """The eval script's figures plus domain coverage: each gold domain with >= 2% of the turns must be the
    majority domain of at least one journey topic."""
    turns = Counter(r["gold_domain"] for r in records)
    per_topic: dict[int, Counter] = {}
    for r in records:
        e = by_gold.get(r["event_id"])
        if e is None or e["journey_topic_id"] is None or int(e["journey_topic_id"]) < 0:
            continue
        per_topic.setdefault(int(e["journey_topic_id"]), Counter())[r["gold_domain"]] += 1
    majority = {t: c.most_common(1)[0][0] for t, c in per_topic.items()}
    big = sorted(d for d, n in turns.items() if n / len(records) >= DOMAIN_MIN_SHARE)
    missing = [d for d in big if d not in set(majority.values())]
    rate_ratio = (scores["pred_switch_rate_mapped"] / scores["gold_switch_rate"]
                  if scores["gold_switch_rate"] else None)
    summary = {
        "turns": len(records),
        "turns_in_warehouse": len(by_gold),
        "journey_topics": len(per_topic),
        "js": round(scores["JSD_switch"], 4),
        "tvd": round(scores["TVD_switch"], 4),
        "switch_f1": round(scores["switchpoint_mapped_F1"], 4),
        "switch_edge_f1": round(scores["edge_micro_F1"], 4),
        "switch_rate_ratio": round(rate_ratio, 3) if rate_ratio is not None else None,
        "domains_2pct": len(big),
        "domains_missing": missing,
    }
    summary["targets"] = {
        "JS<=0.20": summary["js"] <= 0.20,
        "switch F1>=0.65": summary["switch_f1"] >= 0.65,
        "rate within 25%": rate_ratio is not None and abs(rate_ratio - 1) <= 0.25,
        "every domain >=2% has a topic": not missing,
    }
    return summary


# -- output -------------------------------------------------------------------------------------------------


def _print_intent(entry: dict) -> None:
    print(f"{'method':20} {'ARI':>6} {'NMI':>6} {'uncl':>6} {'topics':>6} {'match@1':>8} {'s':>6}")
    for m, s in entry["methods"].items():
        print(f"{m:20} {s['ari']:>6.3f} {s['nmi']:>6.3f} {s['unclustered']:>6.1%} {s['topics']:>6} "
              f"{s.get('label_match@1', ''):>8} {s['seconds']:>6}")
    extra = {k: entry["methods"]["turret"][k] for k in ("theme_nmi_vs_scenarios", "themes", "scenarios",
                                                        "conversational")
             if k in entry["methods"]["turret"]}
    if extra:
        print("   turret " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    if "targets" in entry:
        print("   targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in entry["targets"].items()))
    print(flush=True)


def _print_dialogue(name: str, r: dict) -> None:
    print(f"{name}: JS {r['js']}, TVD {r['tvd']}, switch F1 {r['switch_f1']} (edges {r['switch_edge_f1']}), "
          f"rate x{r['switch_rate_ratio']}, {r['journey_topics']} journey topics, domains >=2% missing: "
          f"{r['domains_missing'] or 'none'}")
    print("   targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["targets"].items()),
          flush=True)


def _sizes(value: str) -> tuple[str, ...]:
    """``--sizes``: comma-separated sample sizes (whole numbers of texts), or ``all``."""
    sizes = tuple(v.strip() for v in value.split(",") if v.strip())
    if not sizes or not all(v == "all" or (v.isdigit() and int(v) > 0) for v in sizes):
        raise argparse.ArgumentTypeError(f"{value!r}: sizes are numbers of texts or all, e.g. 1000,3000,all")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = options("quality", __doc__)
    parser.add_argument("--sets", type=one_of(INTENT_SETS + DIALOGUE_SETS),
                        default=INTENT_SETS + DIALOGUE_SETS, help="comma-separated (default: all six)")
    parser.add_argument("--sizes", type=_sizes, default=DEFAULT_SIZES,
                        help="comma-separated sample sizes, or all (default: 1000,3000,all)")
    parser.add_argument("--skip-bertopic", action="store_true")
    parser.add_argument("--skip-dialogues", action="store_true")
    args = parser.parse_args(argv)
    if not data_dir().exists() or not eval_dir().exists():
        print(f"quality: {data_dir()} or {eval_dir()} not found "
              "(set TURRET_SHARED_DATA / TURRET_SHARED_EVAL); "
              "nothing to benchmark.")
        return 0
    wanted, sizes, skip_bertopic = args.sets, args.sizes, args.skip_bertopic
    if not skip_bertopic:
        try:
            import bertopic  # noqa: F401
        except ImportError:
            print("bertopic not installed (make bench installs it): BERTopic column skipped")
            skip_bertopic = True
    out: dict = {"date": datetime.now(UTC).date().isoformat(), "intent": [], "dialogue": []}
    for name in wanted:
        if name in INTENT_SETS:
            out["intent"].extend(intent_set(name, sizes, skip_bertopic=skip_bertopic))
        elif name in DIALOGUE_SETS and not args.skip_dialogues:
            out["dialogue"].append(dialogue_set(name))
    print_summary(out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "quality.json"
    target.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {target}")
    return 0


def print_summary(out: dict) -> None:
    print("\n== summary")
    print(f"{'set':15} {'n':>6} {'turret ARI/NMI/uncl/topics':>28} {'BERTopic':>22} {'KMeans k':>14} "
          f"{'match@1':>8}")
    for e in out["intent"]:
        t, b, k = e["methods"]["turret"], e["methods"].get("bertopic_defaults"), e["methods"]["kmeans_true_k"]
        bt = f"{b['ari']:.2f}/{b['nmi']:.2f}/{b['unclustered']:.0%}/{b['topics']}" if b else "-"
        print(f"{e['set']:15} {e['size']:>6} "
              f"{t['ari']:.3f}/{t['nmi']:.3f}/{t['unclustered']:.1%}/{t['topics']:>4}"
              f" {bt:>22} {k['ari']:.2f}/{k['nmi']:.2f} {t['label_match@1']:>8}")
    for d in out["dialogue"]:
        print(f"{d['set']:15} {d['turns']:>6} JS {d['js']} F1 {d['switch_f1']} "
              f"rate x{d['switch_rate_ratio']} "
              f"missing domains {d['domains_missing'] or 'none'}")


if __name__ == "__main__":
    raise SystemExit(main())
