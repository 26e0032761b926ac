"""Benchmark: how the topic engine's size rule was chosen, with leave-one-set-out figures.

Run ``python -m bench defaults`` from the repository root (dev suite as for ``bench.quality``). For every
labelled set of the suite that has intent-level gold (banking77, hwu64, sgd_dev's gold intents) at 1k, 3k and
all texts, the product's reducer (``UMAPReducer``) runs once; then hdbscan with each min_cluster_size of a
geometric grid, both cluster selections and two min_samples values, each followed by the engine's own
finishing steps (outliers to the nearest centroid, k-means passes). A candidate default is a rule
``min_cluster_size = max(5, scale * n' ** exponent)`` (n' = n rounded down to a power of two) with a
selection and min_samples; its score is the mean ARI over the sets' sizes, minus 0.1 for each size whose
topic count falls outside 0.7-1.6x the gold count. Among rules within 0.01 of the best score the finest one
(smallest size at 4k texts) is chosen.

Printed: the rule chosen on all sets; then, for each set, the rule chosen on the *other* sets and that set's
figures under it (leave-one-set-out); and the current defaults in turret.topic_defaults beside them.
multiwoz has no intent labels (domains only): it is judged on journeys by ``python -m bench quality``.
Output: bench/results/defaults.json.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from bench import options
from bench.quality import RESULTS, data_dir, embed, load_intents, sample

SETS = ("banking77", "hwu64", "sgd_dev")
SIZES = ("1000", "3000", "all")
MCS_GRID = sorted({int(round(v)) for v in np.geomspace(4, 160, 18)})
EXPONENTS = (0.5, 0.6, 0.75, 0.9, 1.0)
SCALES = tuple(float(s) for s in np.geomspace(0.002, 2, 60))
SELECTIONS = ("eom", "leaf")
MIN_SAMPLES = (5, 10)
COUNT_PENALTY = 0.1
TIE = 0.01


def rows_of(name: str) -> list[dict]:
    if name != "sgd_dev":
        return load_intents(name)
    path = data_dir() / "sgd_dev" / "events_dev.jsonl"
    out = []
    for line in path.open(encoding="utf-8"):
        r = json.loads(line)
        out.append({"id": r["event_id"], "text": r["metadata"]["prompt"], "label": str(r["gold_intent"])})
    return out


def bucket(n: int) -> int:
    return 1 << (int(n).bit_length() - 1)


def grid(name: str) -> list[dict]:
    """Every (size, selection, min_samples, min_cluster_size) result of one set."""
    import hdbscan
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from turret.topics.engine import TopicModel
    from turret.topics.reduce import UMAPReducer
    from turret.vectors import unit_rows

    rows_all = rows_of(name)
    X_all = embed([r["text"] for r in rows_all], RESULTS / f"quality_{name}_minilm.npy")
    out = []
    for size in SIZES:
        keep = {r["id"] for r in sample(rows_all, size)}
        idx = [i for i, r in enumerate(rows_all) if r["id"] in keep]
        X = unit_rows(X_all[idx])
        gold = [rows_all[i]["label"] for i in idx]
        Z = UMAPReducer().fit_transform(X)
        for selection in SELECTIONS:
            for ms in MIN_SAMPLES:
                for mcs in MCS_GRID:
                    if mcs > len(X) / 10:
                        continue
                    clusterer = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(ms, mcs),
                                                cluster_selection_method=selection, core_dist_n_jobs=1)
                    model = TopicModel(reducer=Precomputed(Z), clusterer=clusterer,
                                       min_cluster_size=mcs).fit(X)
                    labels = model.labels_
                    scored = np.where(labels < 0, labels.max() + 1, labels)
                    out.append({"set": name, "n": len(X), "gold": len(set(gold)), "selection": selection,
                                "min_samples": ms, "mcs": mcs, "topics": int(model.n_topics_),
                                "ari": float(adjusted_rand_score(gold, scored)),
                                "nmi": float(normalized_mutual_info_score(gold, scored))})
        print(f"  {name} n={len(X)}: {sum(1 for r in out if r['n'] == len(X))} settings", flush=True)
    return out


class Precomputed:
    """A reducer that returns a precomputed reduction (the grid reduces each sample once)."""

    def __init__(self, Z: np.ndarray) -> None:
        self.Z = Z

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.Z


def figures(results: list[dict], rule: tuple, sets) -> list[dict]:
    scale, exponent, selection, ms = rule
    out = []
    for name in sets:
        for n in sorted({r["n"] for r in results if r["set"] == name}):
            rows = [r for r in results if r["set"] == name and r["n"] == n and r["selection"] == selection
                    and r["min_samples"] == ms]
            mcs = max(5, round(scale * bucket(n) ** exponent))
            nearest = min(rows, key=lambda r: abs(np.log(r["mcs"]) - np.log(mcs)))
            out.append({**nearest, "rule_mcs": mcs})
    return out


def objective(figs: list[dict]) -> float:
    return float(np.mean([f["ari"] - (0 if 0.7 <= f["topics"] / f["gold"] <= 1.6 else COUNT_PENALTY)
                          for f in figs]))


def choose(results: list[dict], sets) -> tuple[float, tuple]:
    """The best rule on ``sets``; among rules within TIE of the best score, the finest (smallest size at 4k
    texts): the suite cannot tell them apart, and finer topics are the safer side for data it lacks."""
    scored = [(objective(figures(results, rule, sets)), rule)
              for rule in ((s, e, sel, ms) for e in EXPONENTS for s in SCALES for sel in SELECTIONS
                           for ms in MIN_SAMPLES)]
    top = max(score for score, _ in scored)
    near = [(score, rule) for score, rule in scored if score >= top - TIE]
    return min(near, key=lambda sr: (max(5, round(sr[1][0] * 4096 ** sr[1][1])), -sr[0]))


def main(argv: list[str] | None = None) -> int:
    options("defaults", __doc__).parse_args(argv)
    if not data_dir().exists():
        print(f"defaults: {data_dir()} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    from turret import topic_defaults as d

    results = []
    for name in SETS:
        results.extend(grid(name))
    score, rule = choose(results, SETS)
    current = (d.MIN_CLUSTER_SIZE_SCALE, d.MIN_CLUSTER_SIZE_EXPONENT, d.CLUSTER_SELECTION, d.MIN_SAMPLES)
    report = {"chosen_on_all": {"rule": rule, "score": score, "figures": figures(results, rule, SETS)},
              "current_defaults": {"rule": current, "score": objective(figures(results, current, SETS)),
                                   "figures": figures(results, current, SETS)},
              "leave_one_set_out": {}}
    print(f"\nchosen on all sets: scale {rule[0]:.4f}, exponent {rule[1]}, {rule[2]}, min_samples {rule[3]} "
          f"(objective {score:.3f}); current defaults {current}: {report['current_defaults']['score']:.3f}")
    _print(report["current_defaults"]["figures"])
    for held in SETS:
        others = [s for s in SETS if s != held]
        s, r = choose(results, others)
        figs = figures(results, r, [held])
        report["leave_one_set_out"][held] = {"rule": r, "figures": figs}
        print(f"\nheld out {held}: rule chosen on {', '.join(others)}: scale {r[0]:.4f}, exponent {r[1]}, "
              f"{r[2]}, min_samples {r[3]}")
        _print(figs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "defaults.json"
    target.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {target}")
    return 0


def _print(figs: list[dict]) -> None:
    for f in figs:
        print(f"  {f['set']:10} n={f['n']:>6} mcs {f['rule_mcs']:>4} (grid {f['mcs']:>4}): "
              f"ARI {f['ari']:.3f} "
              f"NMI {f['nmi']:.3f} topics {f['topics']:>4} / gold {f['gold']}")


if __name__ == "__main__":
    sys.exit(main())
