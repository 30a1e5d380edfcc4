"""GPU encoding throughput: plain FlagEmbedding on a CUDA GPU (fp16 and fp32) next to the app's GPU path.

Run where a CUDA GPU is (never in tests or CI). The same SciFact abstracts are encoded, in interleaved rounds
within one process, by:

* ``flag_fp16``: ``BGEM3FlagModel(use_fp16=True).encode(..., return_dense, return_sparse, return_colbert_vecs)``
  with its defaults (batch_size 256 sorted by length);
* ``app_gpu``: what the app runs on a GPU (``Encoder(device="cuda")``: FlagEmbedding's model in fp16, batches
  of ``batch_tokens`` padded tokens chosen from the GPU's free memory, length-sorted);
* ``flag_fp32`` (on a subset, once): ``BGEM3FlagModel(use_fp16=False)`` on the GPU, the fidelity reference.

Also measured: what the setup wizard shows once the model is installed (``hardware.benchmark_encoder`` on the
app's GPU encoder), query encoding p50/p95 on the GPU for 32-token queries, the card, and the dense/ColBERT
fidelity of the app's fp16 path against fp32.

The model is the full-size random BGE-M3 (``_common.model_dir``). Where only its tokenizer and heads were
copied (the weights are 2.2 GB), random encoder weights are written first with the devtool's initialisation;
speed does not depend on their values. Texts come from the shared corpus, or from ``--texts-file`` (a JSON
object ``{"abstracts": [...], "claims": [...]}`` written by ``--write-texts`` where the corpus is).

    python benchmarks/bench_gpu.py [--texts N] [--rounds R] [--texts-file F] [--out F]
    python benchmarks/bench_gpu.py --write-texts F [--texts N]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import _common as c  # first: it sets the app's environment before numpy loads
import numpy as np


def _ensure_weights(path: Path) -> None:
    """Write random encoder weights where only the tokenizer, config and heads were copied."""
    if (path / "pytorch_model.bin").is_file():
        return
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from desktop_search.devtools.random_bge_m3 import _reinit_encoder

    c.log(f"writing random full-size encoder weights into {path}")
    for stale in ("manifest.json", ".desktop_search_verified.json"):
        (path / stale).unlink(missing_ok=True)
    config = XLMRobertaConfig.from_pretrained(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = XLMRobertaModel(config).eval()
        _reinit_encoder(model)
    torch.save(model.state_dict(), path / "pytorch_model.bin")


def _texts(args) -> tuple[list[str], list[str]]:
    if args.texts_file:
        data = json.loads(Path(args.texts_file).read_text("utf-8"))
        return data["abstracts"][: args.texts], data["claims"]
    return c.scifact_abstracts(args.texts), c.scifact_claims(64)


def _query_32(tokenizer, claims: list[str]) -> list[str]:
    """Queries of exactly 32 tokens (30 + <s> and </s>), as bench_query.py builds them."""
    out = []
    for claim in claims:
        ids = tokenizer(claim * 4, add_special_tokens=False)["input_ids"][:30]
        out.append(tokenizer.decode(ids))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=2000, help="abstracts to encode (default 2000)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds (default 2)")
    p.add_argument("--fp32-texts", type=int, default=400, help="abstracts for the fp32 reference (default 400)")
    p.add_argument("--texts-file", type=Path, default=None)
    p.add_argument("--write-texts", type=Path, default=None, help="write the texts file and stop")
    p.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test the script")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here after every stage")
    args = p.parse_args(argv)
    if args.write_texts:
        data = {"abstracts": c.scifact_abstracts(args.texts), "claims": c.scifact_claims(64)}
        args.write_texts.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
        return {"benchmark": "gpu", "wrote": str(args.write_texts), "abstracts": len(data["abstracts"])}

    import torch

    result: dict = {"benchmark": "gpu", "machine": c.machine()}

    def save(stage: str) -> None:
        result["stage"] = stage
        result["elapsed_s"] = round(time.perf_counter() - T0, 1)
        c.log(f"stage: {stage} ({result['elapsed_s']} s)")
        if args.out:
            args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")

    gpu = args.device != "cpu"
    if gpu and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU")
    if gpu:
        props = torch.cuda.get_device_properties(0)
        result["card"] = {"name": props.name, "memory_gib": round(props.total_memory / 1024**3, 1),
                          "multiprocessors": props.multi_processor_count, "cuda": torch.version.cuda}
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    flag_devices = ["cuda:0"] if gpu else ["cpu"]
    try:
        import onnxruntime

        result["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        result["onnxruntime_providers"] = None
    model_arg = args.model_dir or c.DEFAULT_MODEL
    _ensure_weights(Path(model_arg))
    model_dir = c.model_dir(model_arg)
    save("model ready")

    from FlagEmbedding import BGEM3FlagModel

    from desktop_search.core import hardware
    from desktop_search.core.encoder import Encoder

    texts, claims = _texts(args)
    # precision only matters on a CPU (--device cpu: a smoke test of this script with a small model)
    t_load, app = c.timed(lambda: Encoder(model_dir, device=args.device, precision="fp32"))
    result["app"] = {"precision": app.precision, "note": app.precision_note, "batch_tokens": app.batch_tokens,
                     "load_s": round(t_load, 1)}
    flag16 = BGEM3FlagModel(str(model_dir), use_fp16=True, devices=flag_devices)
    lengths = [len(ids) for ids in app.tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
    tokens = int(sum(lengths))
    result.update(texts=len(texts), tokens=tokens, mean_tokens_per_text=round(tokens / len(texts), 1))
    save("loaded")

    variants = {
        "flag_fp16": lambda: flag16.encode(texts, max_length=512, return_dense=True, return_sparse=True,
                                           return_colbert_vecs=True),
        "app_gpu": lambda: app.encode(texts, max_tokens=512),
    }
    # Warm-up of both on a slice: cuBLAS handles, kernel choice per shape.
    app.encode(texts[:256], max_tokens=512)
    flag16.encode(texts[:256], max_length=512, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    times: dict[str, list[float]] = {k: [] for k in variants}
    outputs: dict[str, object] = {}
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            sync()
            dt, outputs[name] = c.timed(variants[name])
            times[name].append(dt)
            c.log(f"round {r + 1}: {name} {dt:.2f} s")
    result["throughput"] = {k: {"seconds": [round(t, 2) for t in ts], "tokens_per_s": round(tokens / min(ts), 1)}
                            for k, ts in times.items()}
    result["app_gpu_vs_flag_fp16"] = round(result["throughput"]["app_gpu"]["tokens_per_s"]
                                          / result["throughput"]["flag_fp16"]["tokens_per_s"], 2)
    if gpu:
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    save("throughput")

    # What the setup wizard measures on this GPU once the model is installed (eight repeated passages), next to
    # the bulk figure above and the reference its pre-install guess uses (hardware.GPU_REFERENCE_TOKENS_PER_S).
    result["wizard_tokens_per_s"] = round(hardware.benchmark_encoder(app, 3.0), 1)
    result["wizard_vs_bulk"] = round(result["wizard_tokens_per_s"] / result["throughput"]["app_gpu"]["tokens_per_s"], 2)
    result["wizard_reference_tokens_per_s"] = hardware.GPU_REFERENCE_TOKENS_PER_S
    save("wizard")

    queries = _query_32(app.tokenizer, claims)
    app.encode_query(queries[0])
    samples = []
    for i in range(200):
        t0 = time.perf_counter()
        app.encode_query(queries[i % len(queries)])
        samples.append(time.perf_counter() - t0)
    result["query_encoding_32_tokens"] = c.percentiles(samples)
    save("queries")

    # Fidelity of the app's fp16 path against FlagEmbedding fp32 on the same GPU, and fp32's speed there.
    del flag16
    if gpu:
        torch.cuda.empty_cache()
    subset = texts[: args.fp32_texts]
    sub_tokens = int(sum(lengths[: args.fp32_texts]))
    flag32 = BGEM3FlagModel(str(model_dir), use_fp16=False, devices=flag_devices)
    flag32.encode(subset[:64], max_length=512)
    dt32, ref = c.timed(lambda: flag32.encode(subset, max_length=512, return_dense=True, return_sparse=True,
                                              return_colbert_vecs=True))
    dt16, got = c.timed(lambda: app.encode(subset, max_tokens=512))
    result["flag_fp32_subset"] = {"texts": len(subset), "tokens": sub_tokens,
                                  "tokens_per_s": round(sub_tokens / dt32, 1),
                                  "app_gpu_tokens_per_s_same_subset": round(sub_tokens / dt16, 1)}
    ref_dense = np.asarray(ref["dense_vecs"], np.float32)
    cos = np.sum(ref_dense * got.dense, axis=1) / (np.linalg.norm(ref_dense, axis=1) * np.linalg.norm(got.dense, axis=1))
    col = [float(np.mean(np.sum(np.asarray(a, np.float32) * b, axis=1)
                         / (np.linalg.norm(np.asarray(a, np.float32), axis=1) * np.linalg.norm(b, axis=1))))
           for a, b in zip(ref["colbert_vecs"], got.colbert)]
    result["fidelity_app_fp16_vs_flag_fp32"] = {"dense_cosine_mean": round(float(cos.mean()), 5),
                                                "dense_cosine_min": round(float(cos.min()), 5),
                                                "colbert_token_cosine_mean": round(float(np.mean(col)), 5)}
    save("done")
    return result


T0 = time.perf_counter()

if __name__ == "__main__":
    c.emit(main())
