"""``python -m bench labels``: keyword label quality on banking77 and hwu64, scored by the shared
``eval_labels.py`` (match@1: a reader would guess a topic's majority intent from its label alone).

Two clusterings per set, on the product's embeddings: the gold intents themselves (what a perfect engine
would find) and KMeans told the true number of intents (an engine's mistakes included). Three labelers in
the same run: BERTopic's representation (a topic's four best c-TF-IDF words), Turret's keyword labeler with
no embedding model (phrases by c-TF-IDF weight alone), and Turret's keyword labeler as the product runs it.
Each topic gets its 100 distinct texts closest to the centroid, like ``label_topics``. Reads the data from
``$TURRET_SHARED_DATA`` or ``../shared/data`` and exits 0 with a message when it is absent.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import options
from bench.quality import RESULTS, data_dir, embed, eval_dir, load_intents, score_labels, write_pred

SETS = ("banking77", "hwu64")
SAMPLE = 100


def topic_documents(X: np.ndarray, texts: list[str], assign: np.ndarray):
    from turret.labels import TopicDocuments, ctfidf_keywords

    out = {}
    for t in sorted(set(assign.tolist())):
        idx = np.flatnonzero(assign == t)
        centroid = X[idx].mean(axis=0)
        centroid /= np.linalg.norm(centroid)
        closest: list[str] = []
        for i in idx[np.argsort(-(X[idx] @ centroid), kind="stable")]:
            if texts[i] not in closest:
                closest.append(texts[i])
            if len(closest) == SAMPLE:
                break
        out[str(t)] = (closest, centroid)
    keywords = ctfidf_keywords({k: v[0] for k, v in out.items()}, top_n=10)
    return [TopicDocuments(k, v[0][:5], keywords[k], texts=v[0], centroid=v[1]) for k, v in out.items()]


def main(argv: list[str] | None = None) -> int:
    options("labels", __doc__).parse_args(argv)
    if not data_dir().exists() or not (eval_dir() / "eval_labels.py").exists():
        print(f"labels: {data_dir()} or {eval_dir()} not found "
              "(set TURRET_SHARED_DATA / TURRET_SHARED_EVAL); nothing to benchmark.")
        return 0
    from sklearn.cluster import KMeans
    from turret.embed import SentenceTransformerEmbedder
    from turret.labels import KeywordLabeler

    encoder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            rows = load_intents(name)
            ids, texts = [str(r["id"]) for r in rows], [r["text"] for r in rows]
            gold = [r["label"] for r in rows]
            X = embed(texts, RESULTS / f"quality_{name}_minilm.npy")  # shared with bench quality
            gold_path = Path(tmp) / f"{name}.jsonl"
            gold_path.write_text("".join(json.dumps({"id": i, "text": t, "label": g}) + "\n"
                                         for i, t, g in zip(ids, texts, gold, strict=True)))
            intents = sorted(set(gold))
            clusterings = {
                "gold intents": np.array([intents.index(g) for g in gold]),
                "kmeans(true k)": KMeans(len(intents), n_init=3, random_state=0).fit_predict(X),
            }
            for cname, assign in clusterings.items():
                docs = topic_documents(X, texts, assign)
                labelers = {
                    "c-TF-IDF 4 words (BERTopic)": lambda docs: {
                        d.key: " ".join(d.keywords[:4]) for d in docs
                    },
                    "keywords, no model": lambda docs: {
                        lab.key: lab.label for lab in KeywordLabeler().label(docs)
                    },
                    "keywords (default)": lambda docs: {
                        lab.key: lab.label for lab in KeywordLabeler(encoder).label(docs)
                    },
                }
                for lname, labeler in labelers.items():
                    started = time.perf_counter()
                    labels = labeler(docs)
                    seconds = time.perf_counter() - started
                    pred = Path(tmp) / "pred.csv"
                    write_pred(pred, ids, assign, [labels[str(int(a))] for a in assign])
                    row = {"set": name, "clusters": cname, "labeler": lname, "topics": len(docs),
                           "distinct": len(set(labels.values())), "match@1": score_labels(gold_path, pred),
                           "seconds": round(seconds, 1)}
                    results.append(row)
                    print(f"{name:10} {cname:15} {lname:28} match@1 {row['match@1']:.3f}  "
                          f"{row['distinct']}/{row['topics']} distinct  {row['seconds']} s", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "labels.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
