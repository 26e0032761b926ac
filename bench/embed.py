"""Embedding throughput per backend, as ratios against the default (torch) measured in the same run.

    .venv/bin/python bench/embed.py [--n 1000] [--threads 1] [--batch-size 64]

Backends measured: ``torch`` (the default), ``torch-int8`` (dynamic int8 quantization of the Linear layers;
not offered by turret.embed because its cosine to the default falls under 0.99) and ``onnx`` when
sentence-transformers can load it (needs optimum + onnxruntime; skipped with the reason otherwise).
Texts: generated support-style sentences, plus /work/shared/data/banking77 test texts when present.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import time
from pathlib import Path

import numpy as np

BANKING77 = Path("/work/shared/data/banking77/test.jsonl")


def generated(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    verbs = ["reset", "change", "delete", "export", "find", "share", "cancel", "upgrade", "download", "update"]
    things = ["password", "email address", "invoice", "account", "API key", "team", "plan", "card", "report"]
    tails = ["", " on the mobile app", " before the end of the month", " without losing my data",
             " because the button does not work", " for my whole organisation please"]
    starts = ["How do I", "Can I", "Why can't I", "Is it possible to", "Help me"]
    return [f"{rnd.choice(starts)} {rnd.choice(verbs)} my {rnd.choice(things)}{rnd.choice(tails)}?" for _ in range(n)]


def timed_encode(model, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    model.encode(texts[:batch_size], batch_size=batch_size, normalize_embeddings=True)  # warm-up
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return vectors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="texts per data set")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 when the CPU is shared)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    from turret.embed import resolve_model_path

    torch.set_num_threads(args.threads)
    path = resolve_model_path("all-MiniLM-L6-v2")
    base = SentenceTransformer(path, device="cpu")
    base.max_seq_length = 128
    backends = {"torch": base}
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base), {torch.nn.Linear}, dtype=torch.qint8)
    backends["torch-int8"] = int8
    try:
        onnx = SentenceTransformer(path, device="cpu", backend="onnx")
        onnx.max_seq_length = 128
        backends["onnx"] = onnx
    except Exception as exc:  # optimum/onnxruntime missing or incompatible
        print(f"onnx: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")

    datasets = {"generated": generated(args.n)}
    if BANKING77.exists():
        rows = [json.loads(line) for line in BANKING77.read_text().splitlines() if line.strip()]
        datasets["banking77"] = [r["text"] for r in rows[: args.n]]

    print(f"threads={args.threads} batch_size={args.batch_size} n={args.n}")
    print(f"{'data':<10} {'backend':<11} {'texts/s':>8} {'ratio':>6} {'cos min':>8} {'cos mean':>8}")
    for name, texts in datasets.items():
        reference = None
        for backend, model in backends.items():
            vectors, seconds = timed_encode(model, texts, args.batch_size)
            rate = len(texts) / seconds
            if reference is None:
                reference = (vectors, rate)
            cos = (vectors * reference[0]).sum(axis=1)
            print(f"{name:<10} {backend:<11} {rate:8.1f} {rate / reference[1]:6.2f} {cos.min():8.4f} {cos.mean():8.4f}")


if __name__ == "__main__":
    main()
