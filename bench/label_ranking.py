"""``python -m bench label_ranking``: could another ranking of the keyword labeler's candidate phrases name
topics better, on data it was not chosen on?

For 14 clusterings of banking77 and hwu64 (gold intents; KMeans told the true k, seeds 0-2; the product's
own topics at 1k, 3k and all texts) it takes each topic's candidate phrases as the product makes them
(``KeywordLabeler.candidates_of``) and seven signals per phrase: cosine to its topic's centroid (``own``), to
the nearest (``oth1``) and the mean of the 3 nearest other centroids (``oth3``), the share of the topic's
texts holding it (``share``), its c-TF-IDF weight against the topic's best (``w``), its extra words
(``words``), how many other centroids it is closer to (``rank``) and how many of the topic's 3 best keywords
it holds (``kw``). A phrase is a hit when its nearest gold intent name (all-MiniLM-L6-v2, as
``eval_labels.py`` embeds them) is its topic's majority intent. Each weighting of the grid scores
``own + sum(weight x signal)``, takes each topic's best phrase and counts the texts whose topic's phrase is a
hit (match@1 before labels are made distinct). Printed: the product's ranking (``KeywordLabeler.score``)
per clustering, the ceiling (a hit among the candidates), and leave-one-set-out: the weighting chosen on one
set's 7 clusterings, scored on the other set's.
Reads ``$TURRET_SHARED_DATA`` (exits 0 with a message when it is absent); writes
bench/results/label_ranking.json.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter

import numpy as np

from bench import options
from bench.quality import RESULTS, data_dir, embed, load_intents, sample

SETS = ("banking77", "hwu64")
GRID = {
    "oth1": (0.0, -0.25, -0.5, -0.75, -1.0),
    "oth3": (0.0, -0.25, -0.5),
    "share": (0.0, 0.05, 0.1, 0.2),
    "w": (0.0, 0.05, 0.1, 0.2),
    "words": (0.0, 0.015, 0.03),
    "rank": (0.0, -0.005, -0.02),
    "kw": (0.0, 0.02, 0.05),
}


class _Recorder:
    """The labeler ``cluster_texts`` calls, keeping what it was shown (the first call: the topics)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def label(self, docs, **kwargs):
        self.calls.append(list(docs))
        return self.inner.label(docs, **kwargs)


def _signals(labeler, docs, members: dict[str, list[str]], intents: list[str], G: np.ndarray):
    """Per topic: its size, and per candidate phrase the signals and whether it is a hit."""
    candidates = labeler.candidates_of(docs)
    phrases, samples = candidates.phrases, {d.key: d.sample for d in docs}
    nearest_intent = (candidates.vectors @ G.T).argmax(axis=1)
    S = candidates.similarity()
    topics = []
    for j, d in enumerate(docs):
        cands = phrases[d.key]
        size = len(members[d.key])
        if not cands:
            topics.append((size, None, None))
            continue
        idx = candidates.rows(d.key)
        own = S[idx, j]
        other = np.delete(S[idx], j, axis=1) if len(docs) > 1 else np.zeros((len(idx), 1))
        ranked = -np.sort(-other, axis=1)
        weight = np.array([p.weight for p in cands])
        top = set(d.keywords[:3])
        signals = {
            "own": own,
            "oth1": ranked[:, 0],
            "oth3": ranked[:, :3].mean(axis=1),
            "share": np.array([p.docs for p in cands]) / max(1, len(samples[d.key])),
            "w": weight / max(float(weight.max()), 1e-9),
            "words": np.array([len(p.text.split()) - 1 for p in cands], dtype=float),
            "rank": (other > own[:, None]).sum(axis=1).astype(float),
            "kw": np.array([sum(w in top for w in p.text.split()) for p in cands], dtype=float),
        }
        majority = intents.index(Counter(members[d.key]).most_common(1)[0][0])
        topics.append((size, signals, nearest_intent[idx] == majority))
    return topics


def clusterings(name: str, encoder, labeler):
    """(case name, topics with signals) for the 7 clusterings of one set."""
    from sklearn.cluster import KMeans
    from turret.cli.cluster import cluster_texts
    from turret.scrub import scrub
    from turret.settings import Settings
    from turret.vectors import unit_rows

    import bench.labels as bench_labels

    rows_all = load_intents(name)
    intents = sorted({r["label"] for r in rows_all})
    G = unit_rows(np.asarray(encoder.encode([s.replace("_", " ") for s in intents]), dtype=np.float32))
    settings = Settings.from_env()
    for size in ("all", "3000", "1000"):
        rows = sample(rows_all, size)
        texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
        assignments = {}
        if size == "all":
            X = embed(texts, RESULTS / f"quality_{name}_minilm.npy")  # shared with bench quality
            assignments["gold"] = np.array([intents.index(g) for g in gold])
            for seed in (0, 1, 2):
                kmeans = KMeans(len(intents), n_init=3, random_state=seed)
                assignments[f"kmeans{seed}"] = kmeans.fit_predict(X)
        recorder = _Recorder(labeler)
        scrubbed = [scrub(t) if settings.scrub_pii else t for t in texts]
        fit = cluster_texts(scrubbed, settings=settings, embedder=encoder, labeler=recorder, progress=False)
        assignments["product"] = np.array(fit["topic_ids"])
        for cname, assign in assignments.items():
            members: dict[str, list[str]] = {}
            for a, g in zip(assign.tolist(), gold, strict=True):
                if a >= 0:
                    members.setdefault(str(a), []).append(g)
            if cname == "product":
                docs = recorder.calls[0]
            else:
                docs = bench_labels.topic_documents(X, texts, assign)
            yield f"{name} {size} {cname}", _signals(labeler, docs, members, intents, G)


def match_at_1(topics, score) -> float:
    """The share of texts whose topic's best phrase by ``score(signals)`` is a hit."""
    total = hits = 0.0
    for size, signals, hit in topics:
        total += size
        if signals is not None:
            hits += size * hit[int(np.argmax(score(signals)))]
    return hits / total


def weighted(weights: dict[str, float]):
    """``own + sum(weight x signal)``: one point of the grid."""
    return lambda signals: signals["own"] + sum(w * signals[k] for k, w in weights.items())


def product_ranking(labeler):
    """The labeler's own ranking of its candidates (``KeywordLabeler.score``)."""
    return lambda signals: labeler.score(signals["own"], signals["oth1"], signals["words"])


def ceiling(topics) -> float:
    return sum(s * bool(h is not None and h.any()) for s, _, h in topics) / sum(s for s, _, _ in topics)


def main(argv: list[str] | None = None) -> int:
    options("label_ranking", __doc__).parse_args(argv)
    if not data_dir().exists():
        print(f"label_ranking: {data_dir()} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    from turret.embed import SentenceTransformerEmbedder
    from turret.labels import KeywordLabeler

    encoder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    labeler = KeywordLabeler(encoder)
    product = product_ranking(labeler)
    cases = {}
    for name in SETS:
        for case, topics in clusterings(name, encoder, labeler):
            cases[case] = topics
            print(f"{case:24} ceiling {ceiling(topics):.3f}  "
                  f"product ranking {match_at_1(topics, product):.3f}", flush=True)
    names = list(cases)
    grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    table = np.array([[match_at_1(cases[n], weighted(w)) for n in names] for w in grid])
    ours = np.array([match_at_1(cases[n], product) for n in names])
    columns = {s: [i for i, n in enumerate(names) if n.startswith(s + " ")] for s in SETS}
    mean = {s: table[:, columns[s]].mean(axis=1) for s in SETS}
    ours_mean = {s: float(ours[columns[s]].mean()) for s in SETS}
    out = {"cases": {n: {"ceiling": round(ceiling(cases[n]), 3), "product": round(float(ours[i]), 3)}
                     for i, n in enumerate(names)},
           "weightings": len(grid), "leave_one_set_out": []}
    print(f"\n{len(grid)} weightings; product ranking: "
          + ", ".join(f"{s} {ours_mean[s]:.3f}" for s in SETS))
    for train, test in itertools.permutations(SETS, 2):
        best = int(np.argmax(mean[train]))
        entry = {"chosen_on": train, "weights": grid[best], "train": round(mean[train][best], 3),
                 "held_out": test, "held_out_score": round(mean[test][best], 3),
                 "product_on_held_out": round(ours_mean[test], 3)}
        out["leave_one_set_out"].append(entry)
        print(f"chosen on {train}: {grid[best]}\n  {train} {entry['train']:.3f} -> {test} held out "
              f"{entry['held_out_score']:.3f} (product ranking {entry['product_on_held_out']:.3f})")
    both = sum(mean.values()) / len(SETS)
    best = int(np.argmax(both))
    ours_both = sum(ours_mean.values()) / len(SETS)
    out["best_on_both"] = {"weights": grid[best], "score": round(both[best], 3),
                           "product": round(ours_both, 3)}
    print(f"best on both sets: {grid[best]} {both[best]:.3f} (product ranking {ours_both:.3f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "label_ranking.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
