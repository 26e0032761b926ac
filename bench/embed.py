"""Embedding throughput per backend, as ratios against the default (torch) measured in the same run.

    .venv/bin/python bench/embed.py [--n 3000] [--threads 1] [--batch-size 64] [--cache-dir DIR]

Backends measured, each through ``turret.embed.SentenceTransformerEmbedder`` (length-sorted batches,
``max_seq_length`` 128): ``torch`` (the default) and ``onnx`` (the transformer exported once with
torch.onnx.export, run on onnxruntime; the export is cached in --cache-dir). Two rejected variants are
measured for the record, since they are faster but their cosine to the default falls under 0.99:
``torch-int8`` (torch dynamic int8 quantization of the Linear layers) and ``onnx-int8`` (onnxruntime
dynamic int8, per channel, of the ONNX export with the feed-forward down-projections kept float32).
Texts: the distinct demo prompts (``turret.demo.dataset.generate``), generated support-style sentences,
and banking77 test texts when ``../shared/data/banking77`` exists.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import options

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "test.jsonl"


def generated(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    verbs = ["reset", "change", "delete", "export", "find", "share", "cancel", "upgrade", "download",
             "update"]
    things = ["password", "email address", "invoice", "account", "API key", "team", "plan", "card", "report"]
    tails = ["", " on the mobile app", " before the end of the month", " without losing my data",
             " because the button does not work", " for my whole organisation please"]
    starts = ["How do I", "Can I", "Why can't I", "Is it possible to", "Help me"]
    return [f"{rnd.choice(starts)} {rnd.choice(verbs)} my {rnd.choice(things)}{rnd.choice(tails)}?"
            for _ in range(n)]


def demo_prompts(n: int) -> list[str]:
    from turret.demo.dataset import generate

    prompts = sorted({event.metadata["prompt"] for event in generate() if event.metadata.get("prompt")})
    random.Random(7).shuffle(prompts)
    return prompts[:n]


def onnx_int8(embedder, directory: Path):
    """A copy of the onnx embedder running a dynamically int8-quantized export (not offered)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(embedder.onnx_path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    # Keep the feed-forward down-projections (weights wider in than out) in float32: quantizing them as
    # well drops the cosine to the default to ~0.98 even on long texts.
    keep = [node.name for node in graph.node if node.op_type == "MatMul"
            and any(len(shapes.get(i, ())) == 2 and shapes[i][0] > shapes[i][1] for i in node.input)]
    target = directory / "int8.onnx"
    quantize_dynamic(str(embedder.onnx_path), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=keep)
    options = ort.SessionOptions()
    options.intra_op_num_threads = embedder._session.get_session_options().intra_op_num_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    int8 = copy.copy(embedder)
    int8._session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    return int8


class TorchInt8:
    """torch dynamic int8 quantization of the Linear layers, batched like the embedder (not offered)."""

    def __init__(self, embedder) -> None:
        import torch

        self.inner = copy.copy(embedder)
        self.inner._model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(embedder._model), {torch.nn.Linear}, dtype=torch.qint8
        )

    def encode(self, texts):
        return self.inner.encode(texts)


def timed_encode(embedder, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    embedder.encode(texts[:batch_size])  # warm-up
    start = time.perf_counter()
    vectors = embedder.encode(texts)
    return vectors, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = options("embed", __doc__)
    parser.add_argument("--n", type=int, default=3000, help="texts per data set")
    parser.add_argument("--threads", type=int, default=1, help="torch/onnxruntime threads (1: shared CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", default=None, help="where the ONNX export is cached "
                        "(default <TURRET_HOME>/models)")
    parser.add_argument("--no-int8", action="store_true", help="skip the rejected int8 variants")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from turret.embed import SentenceTransformerEmbedder

    common = {"batch_size": args.batch_size, "max_seq_length": 128, "num_threads": args.threads}
    base = SentenceTransformerEmbedder(**common)
    started = time.perf_counter()
    onnx = SentenceTransformerEmbedder(backend="onnx", cache_dir=args.cache_dir, **common)
    print(f"onnx: {'exported' if onnx.exported else 'cached'} {onnx.onnx_path} "
          f"({time.perf_counter() - started:.1f} s)")
    backends = {"torch": base, "onnx": onnx}
    scratch = tempfile.TemporaryDirectory()
    if not args.no_int8:
        backends["torch-int8"] = TorchInt8(base)
        backends["onnx-int8"] = onnx_int8(onnx, Path(scratch.name))

    datasets = {"demo": demo_prompts(args.n), "generated": generated(args.n)}
    if BANKING77.exists():
        rows = [json.loads(line) for line in BANKING77.read_text().splitlines() if line.strip()]
        datasets["banking77"] = [r["text"] for r in rows[: args.n]]

    print(f"threads={args.threads} batch_size={args.batch_size} n<={args.n}")
    print(f"{'data':<10} {'n':>5} {'backend':<11} {'texts/s':>8} {'ratio':>6} {'cos min':>8} {'cos mean':>8}")
    for name, texts in datasets.items():
        reference = None
        for backend, embedder in backends.items():
            vectors, seconds = timed_encode(embedder, texts, args.batch_size)
            rate = len(texts) / seconds
            if reference is None:
                reference = (vectors, rate)
            cos = (vectors * reference[0]).sum(axis=1)
            print(f"{name:<10} {len(texts):>5} {backend:<11} {rate:8.1f} {rate / reference[1]:6.2f} "
                  f"{cos.min():8.4f} {cos.mean():8.4f}", flush=True)
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
