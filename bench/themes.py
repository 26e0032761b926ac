"""``python -m bench themes``: how should topics be grouped into themes (parent topics)?

Each case is fitted once with the product's topic model (``DEFAULT_CONFIG.topic_model()``, on the product's
embeddings), then its topics' centroids are grouped by each candidate rule: a linkage (average, complete,
weighted on cosine; Ward on the unit centroids) and a count (round(sqrt(k)), k/8, k/6, k/5, k/4, k/3 for k
topics, or the cut with the best cosine silhouette among 2..k/5 themes). Each text gets its topic's theme,
scored against a gold parent that no rule sees:

- hwu64 (all texts and a seeded 3k): its 18 scenarios;
- sgd_dev and multiwoz: each user turn's gold domain;
- the demo's prompts (``turret.demo.dataset``, no shared data needed): the 14 subjects they were written for
  (acknowledgements as one more).

Score: the mean of adjusted mutual information and adjusted Rand index (both corrected for chance, so a rule
gains nothing from more themes alone). Reported per set, the mean over the four families (hwu64's two sizes
count as one), and leave-one-set-out: for each family, the rule chosen on the other three and its score on
the held-out one, beside the product's rule (``turret.topics.hierarchy.assign_themes``, which also sets
the conversational topics apart in one theme of their own). Unclustered texts
are left out.

Names: the product's themes of each case are named by the keyword labeler as the pipeline names them
(``turret.topics.store.theme_documents``) and scored like ``eval_labels.py`` scores topic labels: the share
of texts whose theme's name is closer (all-MiniLM-L6-v2 cosine) to the name of the theme's majority parent
("alarm", "Restaurants", "billing") than to any other parent's name. The small-talk theme is named by a
fixed rule and left out. With 13-23 themes per case one theme is 4-10% of a case's texts, so differences
under 0.1 are one theme.

Reads ``$TURRET_SHARED_DATA`` or ``../shared/data`` and exits 0 with a message when it is absent. Writes
bench/results/themes.json.
"""

from __future__ import annotations

import itertools
import json
import math
import time

import numpy as np

from bench import options
from bench.quality import DIALOGUE_FILES, RESULTS, SEED, data_dir, embed

LINKAGES = ("average", "complete", "weighted", "ward")
COUNTS = {
    "sqrt(k)": lambda k: round(math.sqrt(k)),
    "k/8": lambda k: round(k / 8),
    "k/6": lambda k: round(k / 6),
    "k/5": lambda k: round(k / 5),
    "k/4": lambda k: round(k / 4),
    "k/3": lambda k: round(k / 3),
    "silhouette 2..k/5": None,
}
FAMILY = {"hwu64": "hwu64", "hwu64_3k": "hwu64", "sgd_dev": "sgd_dev", "multiwoz": "multiwoz", "demo": "demo"}
PREVIOUS = ("average", "sqrt(k)")


def cases() -> dict[str, tuple[np.ndarray, list[str], list[str]]]:
    """(embeddings, gold parent per text, texts) of every case."""
    out = {}
    with open(data_dir() / "hwu64" / "all.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    X = embed([r["text"] for r in rows], RESULTS / "quality_hwu64_minilm.npy")  # shared with bench quality
    out["hwu64"] = (X, [r["scenario"] for r in rows], [r["text"] for r in rows])
    keep = np.sort(np.random.default_rng(SEED).choice(len(rows), 3000, replace=False))
    out["hwu64_3k"] = (X[keep], [rows[i]["scenario"] for i in keep], [rows[i]["text"] for i in keep])
    for name in ("sgd_dev", "multiwoz"):
        with open(data_dir() / DIALOGUE_FILES[name], encoding="utf-8") as f:
            turns = [json.loads(line) for line in f if line.strip()]
        texts = [t["metadata"]["prompt"] for t in turns]
        out[name] = (embed(texts, RESULTS / f"themes_{name}_minilm.npy"), [t["gold_domain"] for t in turns],
                     texts)
    from turret.demo.dataset import EVENT_NAME, generate

    events = [e for e in generate() if e.name == EVENT_NAME]
    texts = [e.metadata["prompt"] for e in events]
    out["demo"] = (embed(texts, RESULTS / "themes_demo_minilm.npy"),
                   ["acknowledgement" if e.is_ack else str(e.topic) for e in events], texts)
    return out


def group(C: np.ndarray, linkage_name: str, count: str) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    U = C / np.linalg.norm(C, axis=1, keepdims=True)
    Z = linkage(U, "ward") if linkage_name == "ward" else linkage(U, linkage_name, metric="cosine")
    k = len(U)
    if COUNTS[count] is not None:
        return fcluster(Z, max(1, COUNTS[count](k)), "maxclust")
    best, chosen = -np.inf, np.ones(k, dtype=int)
    for m in range(2, max(2, k // 5) + 1):
        cut = fcluster(Z, m, "maxclust")
        if len(set(cut.tolist())) > 1 and (s := silhouette_score(U, cut, metric="cosine")) > best:
            best, chosen = s, cut
    return chosen


def theme_docs(model, texts: list[str], theme_of: np.ndarray, apart: np.ndarray) -> dict:
    """What the labeler sees of each theme but small talk, built as ``turret cluster`` and the pipeline build
    it."""
    from turret.cli.cluster import topic_documents
    from turret.topics.store import theme_documents

    fitted = topic_documents(texts, model.labels_, model.similarities_, model.centroids_)
    docs = {int(d.key): d for d in fitted}
    small_talk = {int(theme_of[t]) for t in np.flatnonzero(apart)}
    return theme_documents(docs, {t: int(theme_of[t]) for t in docs if int(theme_of[t]) not in small_talk})


def name_match(names: dict[int, str], theme_of_text: np.ndarray, parent: np.ndarray, encode) -> float:
    """Share of the named themes' texts whose theme name is nearest its majority parent's name (match@1)."""
    from collections import Counter

    def unit(X):
        X = np.asarray(X, dtype=np.float64)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    if not names:
        return float("nan")
    parents = sorted(set(parent.tolist()))
    G = unit(encode([p.replace("_", " ") for p in parents]))
    keys = sorted(names)
    L = unit(encode([names[k] for k in keys]))
    hits = total = 0
    for i, theme in enumerate(keys):
        mask = theme_of_text == theme
        majority = Counter(parent[mask].tolist()).most_common(1)[0][0]
        hits += int(mask.sum()) * (parents[int(np.argmax(G @ L[i]))] == majority)
        total += int(mask.sum())
    return round(hits / total, 4)


def score(parent: np.ndarray, themes: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    ami = float(adjusted_mutual_info_score(parent, themes))
    ari = float(adjusted_rand_score(parent, themes))
    return {"ami": round(ami, 4), "ari": round(ari, 4), "score": round((ami + ari) / 2, 4),
            "themes": len(set(themes.tolist()))}


def main(argv: list[str] | None = None) -> int:
    options("themes", __doc__).parse_args(argv)
    if not (data_dir() / "hwu64" / "all.jsonl").exists():
        print(f"themes: {data_dir()} not found (set TURRET_SHARED_DATA); nothing to benchmark.")
        return 0
    from turret.conversation import conversational_kind_of_topics, prototypes_from_encoder
    from turret.embed import SentenceTransformerEmbedder
    from turret.topics.hierarchy import assign_themes
    from turret.topics.store import DEFAULT_CONFIG

    encoder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    prototypes = prototypes_from_encoder(encoder.encode)

    fits = {}
    for name, (X, parent, texts) in cases().items():
        t0 = time.perf_counter()
        model = DEFAULT_CONFIG.topic_model().fit(X)
        chit_chat = conversational_kind_of_topics(model.centroids_, prototypes)
        apart = np.array([kind is not None for kind in chit_chat], dtype=bool)
        fits[name] = (model, np.asarray(parent), apart, texts)
        print(f"{name}: {len(X)} texts, {model.n_topics_} topics, {len(set(parent))} gold parents "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def scored(themes_of_topic) -> dict:
        out = {}
        for name, (model, parent, apart, _texts) in fits.items():
            keep = model.labels_ >= 0
            themes = np.asarray(themes_of_topic(model, apart))
            out[name] = score(parent[keep], themes[model.labels_[keep]])
        return out

    rules = {f"{link} / {count}": scored(lambda m, _apart, lk=link, c=count: group(m.centroids_, lk, c))
             for link, count in itertools.product(LINKAGES, COUNTS)}
    # The product also sets conversational topics apart, in one theme of their own ("Small talk").
    product = scored(lambda m, apart: assign_themes(m.centroids_, m.sizes_, apart=apart))
    families = sorted(set(FAMILY.values()))

    def family_score(result: dict, family: str) -> float:
        return float(np.mean([v["score"] for n, v in result.items() if FAMILY[n] == family]))

    def mean_score(result: dict, among=families) -> float:
        return float(np.mean([family_score(result, f) for f in among]))

    print(f"\n{'rule':32s}" + "".join(f"{n:>22s}" for n in fits) + "   mean of families")
    for rule, result in sorted({**rules, "product": product}.items(), key=lambda kv: -mean_score(kv[1])):
        cells = "".join(f"{v['ami']:.3f}/{v['ari']:.3f}/{v['themes']:>3d}".rjust(22) for v in result.values())
        print(f"{rule:32s}{cells}   {mean_score(result):.3f}")
    print("(each cell: AMI / ARI / themes)")
    loso = {}
    print("\nleave-one-set-out (score = mean of AMI and ARI):")
    for held in families:
        others = [f for f in families if f != held]
        chosen = max(rules, key=lambda r: mean_score(rules[r], others))
        loso[held] = {"chosen_on_others": chosen,
                      "held_out_score": round(family_score(rules[chosen], held), 4),
                      "product": round(family_score(product, held), 4),
                      "previous_rule": round(family_score(rules[" / ".join(PREVIOUS)], held), 4)}
        print(f"  {held:9s} chosen on the others: {chosen:30s} {loso[held]['held_out_score']:.3f}   "
              f"product {loso[held]['product']:.3f}   average / sqrt(k) {loso[held]['previous_rule']:.3f}")
    names = theme_names(fits, encoder, families)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "themes.json").write_text(json.dumps(
        {"rules": rules, "product": product, "leave_one_set_out": loso, "names": names}, indent=1))
    print(f"wrote {RESULTS / 'themes.json'}")
    return 0


def theme_names(fits: dict, encoder, families: list[str]) -> dict:
    """Name the product's themes of every case as the pipeline does; match@1 against the parents' names."""
    from turret.labels import KeywordLabeler
    from turret.topics.hierarchy import assign_themes

    labeler = KeywordLabeler(encoder)
    out: dict = {"cases": {}, "names": {}}
    print("\ntheme names (keyword labeler), match@1 against the parents' names:")
    for name, (model, parent, apart, texts) in fits.items():
        theme_of = np.asarray(assign_themes(model.centroids_, model.sizes_, apart=apart))
        on_text = np.where(model.labels_ >= 0, theme_of[np.maximum(model.labels_, 0)], -1)
        docs = theme_docs(model, texts, theme_of, apart)
        keys = sorted(docs)
        named = {k: lab.label for k, lab in zip(keys, labeler.label([docs[k] for k in keys]), strict=True)}
        out["cases"][name] = name_match(named, on_text, parent, encoder.encode)
        out["names"][name] = sorted(named.values())
        print(f"  {name:9s} {out['cases'][name]:.3f}  {', '.join(out['names'][name])}", flush=True)
    by_family = [np.mean([v for n, v in out["cases"].items() if FAMILY[n] == f]) for f in families]
    out["mean_of_families"] = round(float(np.mean(by_family)), 4)
    print(f"  mean of families {out['mean_of_families']:.3f}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
