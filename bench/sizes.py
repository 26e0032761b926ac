"""``python -m bench sizes``: how should the topic size follow the data?

The rule of n (``turret.topics.engine.default_min_cluster_size``) was chosen on the dev suite, whose sets
hold about 170 texts per intent; a set of many small intents (a 150-intent assistant set of 4,500 queries
holds 30 per intent) wants much smaller topics at the same n. This bench measures, on the same UMAP
reduction of each case, hdbscan at a ladder of sizes finished like the engine (outliers to the nearest
topic, k-means passes), and asks which label-free selector picks a good size:

- ``rule``: the rule of n alone;
- ``silhouette``: mean cosine silhouette of the final topics (4,000 texts, seeded);
- ``dbcv``: hdbscan's ``relative_validity_`` (density-based cluster validity);
- ``persistence``: the summed persistence of the selected hdbscan clusters;
- ``rule+silhouette``: the geometric mean of the rule's size (weight 2/3) and the silhouette's (1/3);
- ``subject size``: the product's automatic size (``auto_min_cluster_size``: the rule, or a third of the
  subject size read from the neighbour-similarity profile where that is smaller).

Cases: banking77 (train+test) and hwu64 at 1k, 3k and all texts (the suite, ~13-170 texts per intent), and
the two sets' 141 intents together at 15, 30, 60 and 100 texts per intent (``bench.quality.small_intents``).
Each selector's regret is the best ARI on the ladder less the ARI at the size it picks; gold labels only
score, never pick. Last, the product's share of the subject size (a third) against other shares, scored on
each family of cases alone. Reads the data from ``$TURRET_SHARED_DATA`` or ``../shared/data`` and exits 0
with a message when it is absent. Writes bench/results/sizes.json.
"""

from __future__ import annotations

import functools
import json
import sys
import time

import numpy as np

from bench import options
from bench.defaults import Precomputed
from bench.quality import RESULTS, SEED, data_dir, embed, load_intents, sample, small_intents

LADDER = (5, 7, 10, 14, 20, 28, 40, 56, 80, 113, 160)
# Shares of the subject size tried for the product's selector, chosen on each family of cases alone.
FRACTIONS = (0.2, 0.25, 1 / 3, 0.4, 0.5)
SILHOUETTE_SAMPLE = 4000
SILHOUETTE_WEIGHT = 1 / 3


def cases() -> dict[str, list[dict]]:
    out = {}
    for name in ("banking77", "hwu64"):
        rows = load_intents(name)
        for size in ("1000", "3000", "all"):
            out[f"{name} {size}"] = sample(rows, size)
    for per_intent in (15, 30, 60, 100):
        out[f"141 intents x {per_intent}"] = small_intents(per_intent)
    return out


def ladder(X: np.ndarray, gold: list[str]) -> list[dict]:
    import hdbscan
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
    from turret.topics.engine import MIN_SAMPLES, TopicModel
    from turret.topics.reduce import UMAPReducer

    Z = UMAPReducer().fit_transform(X)
    rng = np.random.default_rng(SEED)
    probe = rng.choice(len(gold), min(SILHOUETTE_SAMPLE, len(gold)), replace=False)
    rows = []
    for size in LADDER:
        if 8 * size > len(gold):
            break
        clusterer = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=min(MIN_SAMPLES, size),
                                    cluster_selection_method="leaf", core_dist_n_jobs=1,
                                    gen_min_span_tree=True)
        model = TopicModel(reducer=Precomputed(Z), clusterer=clusterer, min_cluster_size=size).fit(X)
        labels = model.labels_
        several = len(set(labels[probe].tolist())) > 1
        rows.append({
            "size": size, "topics": model.n_topics_, "unclustered": round(float(np.mean(labels < 0)), 4),
            "ari": round(adjusted_rand_score(gold, labels), 4),
            "nmi": round(normalized_mutual_info_score(gold, labels), 4),
            "silhouette": round(float(silhouette_score(X[probe], labels[probe], metric="cosine")), 4)
            if several else -1.0,
            "dbcv": round(float(clusterer.relative_validity_), 4),
            "persistence": round(float(np.sum(clusterer.cluster_persistence_)), 4),
        })
    return rows


def picks(rows: list[dict], n: int, subject: float | None) -> dict[str, int]:
    """Each selector's size for a case of ``n`` texts whose texts show subjects of ``subject`` texts."""
    from turret.topics.engine import default_min_cluster_size, min_cluster_size_for

    def nearest(size: float) -> int:
        return min((r["size"] for r in rows), key=lambda s: abs(np.log(s / size)))

    def argmax(key: str) -> int:
        return max(rows, key=lambda r: (r[key], r["size"]))["size"]

    rule = default_min_cluster_size(n)
    blend = np.exp(SILHOUETTE_WEIGHT * np.log(argmax("silhouette")) + (1 - SILHOUETTE_WEIGHT) * np.log(rule))
    return {"rule": nearest(rule), "silhouette": argmax("silhouette"), "dbcv": argmax("dbcv"),
            "persistence": argmax("persistence"), "rule+silhouette": nearest(blend),
            "subject size": nearest(min_cluster_size_for(n, subject))}


def main(argv: list[str] | None = None) -> int:
    options("sizes", __doc__).parse_args(argv)
    if not data_dir().exists():
        print(f"sizes: {data_dir()} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    from turret.topics.engine import subject_size

    results = []
    for name, rows in cases().items():
        started = time.perf_counter()
        texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
        if name.startswith("141"):
            X = _small_vectors(texts)
        else:
            X = embed(texts, RESULTS / f"quality_{name.split()[0]}_minilm.npy")
        steps = ladder(X, gold)
        best = max(steps, key=lambda r: r["ari"])
        read = subject_size(X)
        chosen = picks(steps, len(rows), read)
        by_size = {r["size"]: r for r in steps}
        entry = {"case": name, "texts": len(rows), "intents": len(set(gold)), "ladder": steps,
                 "subject_size": read,
                 "best": best["size"],
                 "picks": {k: {"size": s, "topics": by_size[s]["topics"], "ari": by_size[s]["ari"],
                               "regret": round(best["ari"] - by_size[s]["ari"], 4)}
                           for k, s in chosen.items()},
                 "seconds": round(time.perf_counter() - started, 1)}
        results.append(entry)
        print(f"{name:22} n={len(rows):>6} intents={entry['intents']:>4} best size {best['size']:>3} "
              f"(ARI {best['ari']:.3f}, {best['topics']} topics) | "
              + "  ".join(f"{k} {p['size']}: {p['ari']:.3f}/{p['topics']}"
                          for k, p in entry["picks"].items()),
              flush=True)
    print("\nmean / max regret (best ARI on the ladder less the pick's):")
    for key in results[0]["picks"]:
        suite = [e["picks"][key]["regret"] for e in results if not e["case"].startswith("141")]
        small = [e["picks"][key]["regret"] for e in results if e["case"].startswith("141")]
        print(f"  {key:16} suite {np.mean(suite):.3f} / {max(suite):.3f}   "
              f"many small intents {np.mean(small):.3f} / {max(small):.3f}")
    fractions(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sizes.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


def fractions(results: list[dict]) -> None:
    """The product selector's share of the subject size, scored on each family alone (leave-one-out)."""
    from turret.topics.engine import min_cluster_size_for

    families = {"suite": [e for e in results if not e["case"].startswith("141")],
                "many small intents": [e for e in results if e["case"].startswith("141")]}
    print("\nshare of the subject size (mean regret over the cases that show a subject size):")
    for fraction in FRACTIONS:
        line = f"  {fraction:.2f}"
        for family, entries in families.items():
            regrets = []
            for e in entries:
                if e["subject_size"] is None:
                    continue
                size = min_cluster_size_for(e["texts"], e["subject_size"], fraction=fraction)
                at = min(e["ladder"], key=lambda r: abs(np.log(r["size"] / size)))
                regrets.append(max(r["ari"] for r in e["ladder"]) - at["ari"])
            line += f"   {family} {np.mean(regrets):.3f} (worst {max(regrets):.3f})" if regrets else ""
        print(line)


def _small_vectors(texts: list[str]) -> np.ndarray:
    """Vectors of the small-intent cases from the two sets' own caches (every text is in one of them)."""
    vectors = _suite_vectors()
    return np.vstack([vectors[t] for t in texts])


@functools.lru_cache(maxsize=1)
def _suite_vectors() -> dict[str, np.ndarray]:
    """Every text of banking77 and hwu64 with its vector, read once for all small-intent cases."""
    vectors: dict[str, np.ndarray] = {}
    for name in ("banking77", "hwu64"):
        own = [r["text"] for r in load_intents(name)]
        vectors.update(zip(own, embed(own, RESULTS / f"quality_{name}_minilm.npy"), strict=True))
    return vectors


if __name__ == "__main__":
    sys.exit(main())
