"""Pathway extraction on a full-size OLMoE-1B-7B on one GPU: tokens/s and peak memory.

Builds OLMoE-1B-7B-0924's architecture from its config (OlmoeConfig's defaults are that model:
16 layers, 64 experts, top-8, hidden 2048; random weights, bf16, no download), then runs the
same batches of random tokens twice: a plain backbone forward, and the forward with
grokpath's router capture (grokpath.routing.extract.RouterCapture, as the extract_pathways rule uses it,
including the copy of the per-sample means to the host). Prints tokens/s of each, their ratio,
and peak GPU memory. Without a GPU it says so and exits 0.

    python benchmarks/bench_gpu_extraction.py --batch-size 32 --seq-len 512 --batches 20
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def build_model(dtype: torch.dtype):
    from transformers import OlmoeConfig, OlmoeForCausalLM

    config = OlmoeConfig()  # the defaults are OLMoE-1B-7B's sizes
    with torch.device("cuda"):
        model = OlmoeForCausalLM(config).to(dtype)
    return model.eval(), config


def batches(config, n: int, batch_size: int, seq_len: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
        out.append((ids.cuda(), torch.ones_like(ids).cuda()))
    return out


@torch.inference_mode()
def tokens_per_s(backbone, data, capture=None) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for ids, mask in data:
        if capture is not None:
            capture.start_batch(mask)
        backbone(input_ids=ids, attention_mask=mask, use_cache=False)
        if capture is not None:
            capture.collect()  # includes the device-to-host copy the rule does
    torch.cuda.synchronize()
    return sum(ids.numel() for ids, _ in data) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--weights", choices=["scores", "topk"], default="scores")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU: bench_gpu_extraction needs CUDA (nothing measured)")
        return 0
    from grokpath.routing.extract import RouterCapture
    from grokpath.routing.routers import backbone_of, find_routers

    torch.manual_seed(args.seed)
    model, config = build_model(torch.bfloat16)
    backbone = backbone_of(model)
    spec = find_routers(model)
    warm = batches(config, args.warmup, args.batch_size, args.seq_len, args.seed)
    data = batches(config, args.batches, args.batch_size, args.seq_len, args.seed + 1)
    tokens_per_s(backbone, warm)
    torch.cuda.reset_peak_memory_stats()
    plain = tokens_per_s(backbone, data)
    plain_peak = torch.cuda.max_memory_allocated() / 2**30
    with RouterCapture(spec, args.weights) as capture:
        tokens_per_s(backbone, warm, capture)
        torch.cuda.reset_peak_memory_stats()
        captured = tokens_per_s(backbone, data, capture)
    captured_peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"GPU: {torch.cuda.get_device_name(0)}; OLMoE-1B-7B shape, random bf16 weights; "
          f"{args.batches} batches of {args.batch_size} x {args.seq_len} tokens")  # fmt: skip
    print(f"plain forward:          {plain:12.0f} tokens/s   peak {plain_peak:6.1f} GiB")
    print(f"forward + extraction:   {captured:12.0f} tokens/s   peak {captured_peak:6.1f} GiB")
    print(f"ratio extraction/plain: {captured / plain:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
