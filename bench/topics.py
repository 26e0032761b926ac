"""Benchmark: the topic engine's quality, stability and incremental cost.

Run ``python -m bench topics`` (or ``python -m bench.topics``) from the repository root. Reads banking77 from
``$TURRET_SHARED_DATA/banking77`` or ``../shared/data/banking77`` and exits 0 with a message when it is
absent (a user's machine does not have it). Everything runs in one process, on the same embeddings
(all-MiniLM-L6-v2, embedded once and cached in bench/results/banking77_minilm.npy):

1. quality: this engine vs BERTopic's defaults (UMAP + HDBSCAN, precomputed embeddings) vs plain hdbscan
   (PCA(10) + hdbscan, noise left as noise): ARI, NMI (unclustered = one extra cluster), unclustered share,
   topics, seconds;
2. stability through the warehouse API (``update_topics``): fit on 80%, an incremental hour with the other
   20%, then a full refit: share of the first 80% keeping their topic id, topic count change;
3. scale: an incremental run adding 10k texts onto a history of 200k vs 20k (synthetic mixture of Gaussians
   on the sphere), both times and their ratio.

Options: ``--skip-bertopic``, ``--skip-scale``. Output: a table on stdout and bench/results/topics.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BENCH_MODEL = "all-MiniLM-L6-v2"


def data_dir() -> Path:
    env = os.environ.get("TURRET_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def load_banking77(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """(ids, texts, gold labels) of train then test."""
    ids, texts, labels = [], [], []
    for part in ("train", "test"):
        with open(folder / f"{part}.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                ids.append(row["id"])
                texts.append(row["text"])
                labels.append(row["label"])
    return ids, texts, labels


def embed(texts: list[str], cache: Path) -> np.ndarray:
    """Unit embeddings with the product's embedder, cached as .npy (recomputed when the row count differs)."""
    if cache.exists():
        X = np.load(cache)
        if X.shape[0] == len(texts):
            return X
    from turret.embed import SentenceTransformerEmbedder

    X = SentenceTransformerEmbedder(BENCH_MODEL).encode(texts, progress=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, X)
    return X


def score(gold: list[str], labels: np.ndarray) -> dict:
    """ARI, NMI (unclustered counted as one extra cluster), unclustered share, topic count."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    scored = np.where(labels < 0, labels.max() + 1, labels)
    return {
        "ari": round(float(adjusted_rand_score(gold, scored)), 4),
        "nmi": round(float(normalized_mutual_info_score(gold, scored)), 4),
        "unclustered_share": round(float((labels < 0).mean()), 4),
        "topics": int(len(set(labels[labels >= 0].tolist()))),
    }


# -- 1. quality ---------------------------------------------------------------------------------------------


def run_engine(X: np.ndarray) -> np.ndarray:
    from turret.topics.store import DEFAULT_CONFIG

    return DEFAULT_CONFIG.topic_model().fit(X).labels_


def run_plain_hdbscan(X: np.ndarray) -> np.ndarray:
    import hdbscan
    from turret.topics.engine import default_min_cluster_size
    from turret.topics.reduce import PCAReducer

    Z = PCAReducer(10).fit_transform(X)
    return hdbscan.HDBSCAN(min_cluster_size=default_min_cluster_size(len(X))).fit_predict(Z)


def run_bertopic(texts: list[str], X: np.ndarray) -> np.ndarray:
    from bertopic import BERTopic

    topics, _ = BERTopic().fit_transform(texts, embeddings=X)
    return np.asarray(topics)


def quality(texts, gold, X, *, skip_bertopic: bool) -> dict:
    from turret.topics.reduce import warm_up

    # UMAP's numba code compiles on its first call in a process: both UMAP users (the engine, BERTopic) are
    # timed after it, so neither pays it.
    warm_up()
    runs = {"turret": lambda: run_engine(X), "plain_hdbscan": lambda: run_plain_hdbscan(X)}
    if not skip_bertopic:
        try:
            import bertopic  # noqa: F401

            runs["bertopic_defaults"] = lambda: run_bertopic(texts, X)
        except ImportError:
            print("bertopic not installed (pip install -c requirements/constraints.txt bertopic): skipped")
    out = {}
    for name, fn in runs.items():
        t0 = time.perf_counter()
        labels = fn()
        seconds = time.perf_counter() - t0
        out[name] = {**score(gold, labels), "seconds": round(seconds, 1)}
        print(f"  {name:18s} {out[name]}", flush=True)
    return out


# -- warehouse helpers --------------------------------------------------------------------------------------


def open_warehouse(path: Path, dimension: int):
    from turret.embed import ensure_embeddings_table
    from turret.settings import Settings
    from turret.warehouse import connect

    settings = Settings(home=path)
    con = connect(settings)
    ensure_embeddings_table(con, dimension)
    return settings, con


def add_texts(con, project_id: str, field: str, event_ids, texts, X: np.ndarray) -> None:
    """Rows in pipeline.event_texts and their vectors in pipeline.embeddings, as the embed step leaves."""
    import pandas as pd

    hashes = [hashlib.sha256(f"{e}\x1f{t}".encode()).hexdigest()[:32]
              for e, t in zip(event_ids, texts, strict=True)]
    frame = pd.DataFrame({"event_id": list(event_ids), "text_hash": hashes, "text": list(texts),
                          "vector": list(X.astype(np.float32))})
    con.register("_bench_texts", frame)
    dim = X.shape[1]
    con.execute("insert into pipeline.event_texts select ?, event_id, ?, text_hash, text from _bench_texts",
                [project_id, field]).fetchall()
    con.execute(f"insert into pipeline.embeddings select ?, text_hash, vector::float[{dim}] "
                "from _bench_texts on conflict do nothing", [BENCH_MODEL]).fetchall()
    con.unregister("_bench_texts")


def assignments(con, project_id: str, field: str) -> dict[str, int]:
    return dict(con.execute("select event_id, topic_id from pipeline.event_topics where project_id = ? "
                            "and field = ?", [project_id, field]).fetchall())


def theme_assignments(con, project_id: str, field: str) -> dict[str, int | None]:
    """event id -> the theme id of its topic (None: unclustered, or a topic without a theme)."""
    return dict(con.execute(
        "select e.event_id, t.theme_id from pipeline.event_topics e left join pipeline.topics t "
        "on t.project_id = e.project_id and t.field = e.field and t.topic_id = e.topic_id "
        "where e.project_id = ? and e.field = ?", [project_id, field]).fetchall())


def live_themes(con, project_id: str, field: str) -> int:
    return int(_one(con, "select count(*) from pipeline.themes where project_id = ? and field = ?",
                    [project_id, field])[0])


def _one(con, sql, params):
    return con.execute(sql, params).fetchall()[0]


def live_topics(con, project_id: str, field: str) -> int:
    return int(_one(con, "select count(*) from pipeline.topics where project_id = ? and field = ? and "
                           "topic_id >= 0 and status = 'active' and size > 0", [project_id, field])[0])


# -- 2. stability -------------------------------------------------------------------------------------------


def stability(ids, texts, gold, X, seed: int = 7) -> dict:
    from turret.topics import update_topics

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    cut = int(0.8 * len(ids))
    first, second = order[:cut], order[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        settings, con = open_warehouse(Path(tmp), X.shape[1])
        pick = lambda rows, seq: [seq[i] for i in rows]  # noqa: E731
        add_texts(con, "bench", "prompt", pick(first, ids), pick(first, texts), X[first])
        t0 = time.perf_counter()
        fit_stats = update_topics(con, settings, run_id="fit-80", mode="auto")
        t_fit = time.perf_counter() - t0
        before = assignments(con, "bench", "prompt")
        themes_before = theme_assignments(con, "bench", "prompt")
        topics_before = live_topics(con, "bench", "prompt")
        n_themes = [live_themes(con, "bench", "prompt")]
        add_texts(con, "bench", "prompt", pick(second, ids), pick(second, texts), X[second])
        t0 = time.perf_counter()
        inc_stats = update_topics(con, settings, run_id="hour-20", mode="auto")
        t_inc = time.perf_counter() - t0
        after_inc = assignments(con, "bench", "prompt")
        themes_inc = theme_assignments(con, "bench", "prompt")
        topics_inc = live_topics(con, "bench", "prompt")
        n_themes.append(live_themes(con, "bench", "prompt"))
        t0 = time.perf_counter()
        refit_stats = update_topics(con, settings, run_id="refit", mode="refit")
        t_refit = time.perf_counter() - t0
        after = assignments(con, "bench", "prompt")
        themes_after = theme_assignments(con, "bench", "prompt")
        topics_after = live_topics(con, "bench", "prompt")
        n_themes.append(live_themes(con, "bench", "prompt"))
        con.close()
    kept_inc = np.mean([after_inc[e] == t for e, t in before.items()])
    kept = np.mean([after[e] == t for e, t in before.items()])
    # Themes: over the first 80% texts that had a theme, the share whose topic's theme id is the same.
    themed = [e for e, th in themes_before.items() if th is not None]
    kept_theme_inc = np.mean([themes_inc.get(e) == themes_before[e] for e in themed]) if themed else 0.0
    kept_theme = np.mean([themes_after.get(e) == themes_before[e] for e in themed]) if themed else 0.0
    index = {e: i for i, e in enumerate(ids)}
    final_labels = np.array([after[e] for e in ids if e in after])
    final_gold = [gold[index[e]] for e in ids if e in after]
    out = {
        "fit_80": {"seconds": round(t_fit, 1), "topics": topics_before,
                   "unclustered_share": round(_dim(fit_stats)["unclustered_share"], 4)},
        "incremental_20": {"seconds": round(t_inc, 2), "action": _dim(inc_stats)["action"],
                           "assigned": _dim(inc_stats).get("assigned"),
                           "pending": _dim(inc_stats).get("pending"),
                           "discovered_topics": _dim(inc_stats).get("discovered_topics"),
                           "topics": topics_inc,
                           "kept_id_share_first80": round(float(kept_inc), 4),
                           "kept_theme_share_first80": round(float(kept_theme_inc), 4)},
        "refit_100": {"seconds": round(t_refit, 1), "topics": topics_after,
                      "lineage": _dim(refit_stats)["lineage"],
                      "kept_by_hysteresis": _dim(refit_stats)["kept_by_hysteresis"],
                      "quality": score(final_gold, final_labels)},
        "kept_id_share_first80": round(float(kept), 4),
        "kept_theme_share_first80": round(float(kept_theme), 4),
        "themes": n_themes,
        "topic_count_change": round(abs(topics_after - topics_before) / max(1, topics_before), 4),
    }
    print(f"  {json.dumps(out)}", flush=True)
    return out


def _dim(stats: dict) -> dict:
    return next(iter(stats["dimensions"].values()))


# -- 3. scale -----------------------------------------------------------------------------------------------


def sphere_mixture(n: int, centers: np.ndarray, rng, noise: float = 0.04) -> np.ndarray:
    """``n`` unit vectors around random ``centers`` (isotropic noise, cosine to the centre ~0.95)."""
    labels = rng.integers(0, centers.shape[0], n)
    X = centers[labels] + noise * rng.standard_normal((n, centers.shape[1])).astype(np.float32)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def scale(dim: int = 64, history_sizes=(20_000, 200_000), new: int = 10_000) -> dict:
    """Incremental cost vs history size: the new-texts step should not grow with the history."""
    import dataclasses

    from turret.topics import DEFAULT_CONFIG, update_topics

    # The incremental step never reduces, so the reducer does not change what is measured; PCA keeps the
    # 200k history fit to seconds (UMAP would take many minutes on 2 cores).
    config = dataclasses.replace(DEFAULT_CONFIG, reducer="pca", n_components=10)
    rng = np.random.default_rng(11)
    # 40 topic centres in a 10-d subspace, so PCA(10) sees them all and the history fit stays cheap.
    basis = np.linalg.qr(rng.standard_normal((dim, 10)))[0]
    centers = (rng.standard_normal((40, 10)) @ basis.T).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = {}
    for size in history_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            settings, con = open_warehouse(Path(tmp), dim)
            hist = sphere_mixture(size, centers, rng)
            ids = [f"h{i:07d}" for i in range(size)]
            add_texts(con, "scale", "prompt", ids, [f"text {i}" for i in range(size)], hist)
            t0 = time.perf_counter()
            update_topics(con, settings, run_id="history", mode="refit", config=config)
            t_fit = time.perf_counter() - t0
            fresh = sphere_mixture(new, centers, rng)
            ids = [f"n{i:07d}" for i in range(new)]
            add_texts(con, "scale", "prompt", ids, [f"new text {i}" for i in range(new)], fresh)
            t0 = time.perf_counter()
            stats = update_topics(con, settings, run_id="hour", mode="incremental", config=config)
            t_inc = time.perf_counter() - t0
            con.close()
        out[str(size)] = {"history_fit_seconds": round(t_fit, 1), "incremental_seconds": round(t_inc, 3),
                          "action": _dim(stats)["action"], "assigned": _dim(stats).get("assigned"),
                          "pending": _dim(stats).get("pending")}
        print(f"  history {size}: {out[str(size)]}", flush=True)
    small, big = (out[str(s)]["incremental_seconds"] for s in history_sizes)
    out["ratio_incremental_200k_vs_20k"] = round(big / small, 2)
    out["history_ratio"] = history_sizes[1] / history_sizes[0]
    print(f"  incremental 10k onto 200k / onto 20k: {out['ratio_incremental_200k_vs_20k']}x "
          f"(history {out['history_ratio']:.0f}x larger)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = options("topics", __doc__)
    parser.add_argument("--skip-bertopic", action="store_true")
    parser.add_argument("--skip-scale", action="store_true", help="skip the synthetic scale runs")
    args = parser.parse_args(argv)
    folder = data_dir() / "banking77"
    if not (folder / "train.jsonl").exists():
        print(f"topics: {folder} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ids, texts, gold = load_banking77(folder)
    t0 = time.perf_counter()
    X = embed(texts, RESULTS / "banking77_minilm.npy")
    seconds = time.perf_counter() - t0
    print(f"banking77: {len(texts)} texts, {len(set(gold))} intents, embeddings {seconds:.1f}s")
    results: dict = {"n_texts": len(texts), "n_intents": len(set(gold))}
    print("quality (same embeddings):")
    results["quality"] = quality(texts, gold, X, skip_bertopic=args.skip_bertopic)
    print("stability (80% fit, 20% incremental hour, full refit):")
    results["stability"] = stability(ids, texts, gold, X)
    if not args.skip_scale:
        print("scale (synthetic, 64-d):")
        results["scale"] = scale()
    q = results["quality"]
    results["targets"] = {
        "unclustered_share_le_5pct": q["turret"]["unclustered_share"] <= 0.05,
        "beats_bertopic_ari_nmi": (
            "bertopic_defaults" in q
            and q["turret"]["ari"] > q["bertopic_defaults"]["ari"]
            and q["turret"]["nmi"] > q["bertopic_defaults"]["nmi"]
        ),
        "kept_id_ge_95pct": results["stability"]["kept_id_share_first80"] >= 0.95,
        "kept_theme_ge_95pct": results["stability"]["kept_theme_share_first80"] >= 0.95,
        "topic_count_change_le_10pct": results["stability"]["topic_count_change"] <= 0.10,
    }
    print(f"targets: {results['targets']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "topics.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {RESULTS / 'topics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
