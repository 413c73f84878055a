"""Pathway extraction: time vs a plain forward, and peak memory at two sample counts.

Prints ratios measured in this run (no assertions).
(a) extraction wall time (tokenising, backbone forward with router hooks, Parquet writing) over
    the wall time of plain full-LM forwards `model(input_ids, attention_mask)` on the same,
    pre-tokenised, length-sorted batches. Goal <= 1.0. The default shape keeps OLMoE's routing
    (16 layers, 64 experts, top-8) and scales hidden size and vocabulary down together so the LM
    head holds about the share of compute it has in OLMoE-1B-7B (~9 %): the head we skip is
    not made artificially large.
(b) peak resident memory added by extraction at `--memory-sizes` samples (default 1k and 10k),
    each size in a fresh subprocess with a tiny model. Goal: flat within 10 %. The peak is the
    kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs), with a 2 ms RSS
    poller as fallback where that reset is not allowed.

    python benchmarks/bench_extraction.py --device cpu --samples 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import OlmoeConfig, OlmoeForCausalLM, PreTrainedTokenizerFast

from grokpath.routing.extract import extract_pathways, length_sorted_batches, pad_batch, tokenize_window


def word_tokenizer(n_words: int) -> PreTrainedTokenizerFast:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, **{f"w{i}": i + 3 for i in range(n_words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )


def build_model(layers, experts, top_k, hidden, intermediate, vocab, heads, max_positions, seed=0):
    config = OlmoeConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        num_experts=experts,
        num_experts_per_tok=top_k,
        max_position_embeddings=max_positions,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    return OlmoeForCausalLM(config).eval()


def random_samples(n: int, n_words: int, min_words: int, max_words: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "sample_id": f"s{i:06d}",
            "domain": "bench",
            "text": " ".join(
                f"w{j}" for j in rng.integers(0, n_words, rng.integers(min_words, max_words + 1))
            ),
        }
        for i in range(n)
    ]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def plain_forward_seconds(model, tokenizer, samples, batch_size, max_length, device) -> float:
    """Full-LM forwards over the batches extraction would run, tokenised beforehand (not timed)."""
    token_ids = tokenize_window(tokenizer, [s["text"] for s in samples], max_length)
    batches = [
        tuple(
            t.to(device)
            for t in pad_batch([token_ids[i] for i in batch], tokenizer.pad_token_id, "right")[:2]
        )
        for batch in length_sorted_batches([len(t) for t in token_ids], batch_size)
    ]
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask in batches:
            model(input_ids=input_ids, attention_mask=mask, use_cache=False)
    sync(device)
    return time.perf_counter() - start


def extraction_seconds(model, tokenizer, samples, batch_size, max_length, device, dest) -> float:
    sync(device)
    start = time.perf_counter()
    extract_pathways(
        model,
        tokenizer,
        samples,
        dest,
        step=0,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        progress=False,
    )
    sync(device)
    return time.perf_counter() - start


def time_ratio(args) -> None:
    device = args.device
    n_words = args.vocab - 3
    tokenizer = word_tokenizer(n_words)
    model = build_model(
        args.layers,
        args.experts,
        args.top_k,
        args.hidden,
        args.intermediate,
        args.vocab,
        args.heads,
        args.max_length,
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model.to(device=device, dtype=dtype)
    samples = random_samples(args.samples, n_words, args.min_words, args.max_words, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "p.parquet"
        warm = samples[: args.batch_size]
        plain_forward_seconds(model, tokenizer, warm, args.batch_size, args.max_length, device)
        extraction_seconds(model, tokenizer, warm, args.batch_size, args.max_length, device, dest)
        plain, ours = [], []
        for _ in range(args.repeats):  # alternate so drifting machine load hits both alike
            plain.append(
                plain_forward_seconds(
                    model, tokenizer, samples, args.batch_size, args.max_length, device
                )
            )
            ours.append(
                extraction_seconds(
                    model, tokenizer, samples, args.batch_size, args.max_length, device, dest
                )
            )
    params = sum(p.numel() for p in model.parameters())
    print(
        f"(a) {args.samples} samples, {args.min_words}-{args.max_words} words, batch {args.batch_size}, "
        f"{device} {dtype}; model {params / 1e6:.1f} M params ({args.layers} layers, {args.experts} experts, "
        f"top-{args.top_k}, hidden {args.hidden}, vocab {args.vocab}), best of {args.repeats}"
    )
    print(
        f"    plain full-LM forward: {min(plain):.3f} s   extraction: {min(ours):.3f} s   "
        f"ratio {min(ours) / min(plain):.2f} (goal <= 1.0)"
    )


# ---------------------------------------------------------------- memory


def read_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class PeakRss:
    """Peak RSS during a block: VmHWM after resetting it, else a polling thread."""

    def __enter__(self):
        self.method = "VmHWM"
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.method = "poll"
        self.before_kib = read_status_kib("VmRSS")
        self._peak = self.before_kib
        self._stop = threading.Event()
        if self.method == "poll":
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, read_status_kib("VmRSS"))
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        if self.method == "poll":
            self._thread.join()
        self.peak_kib = read_status_kib("VmHWM") if self.method == "VmHWM" else self._peak


def memory_child(n: int, args) -> None:
    """Runs in its own process: extraction of n samples with a tiny model, prints JSON."""
    torch.set_num_threads(1)
    n_words = 61
    tokenizer = word_tokenizer(n_words)
    model = build_model(4, 8, 2, 32, 16, n_words + 3, 4, args.max_length)
    samples = random_samples(n, n_words, args.memory_min_words, args.memory_max_words, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        # one small extraction first, so one-off allocations (kernels, Arrow pools) are not counted
        extract_pathways(
            model,
            tokenizer,
            samples[:64],
            Path(tmp) / "warm.parquet",
            step=0,
            batch_size=args.batch_size,
            max_length=args.max_length,
            device=args.device,
            progress=False,
        )
        start = time.perf_counter()
        with PeakRss() as peak:
            extract_pathways(
                model,
                tokenizer,
                samples,
                Path(tmp) / "p.parquet",
                step=0,
                batch_size=args.batch_size,
                max_length=args.max_length,
                device=args.device,
                progress=False,
            )
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "n": n,
                "before_kib": peak.before_kib,
                "peak_kib": peak.peak_kib,
                "method": peak.method,
                "seconds": seconds,
            }
        )
    )


def memory_flatness(args) -> None:
    results = []
    for n in args.memory_sizes:
        cmd = [
            sys.executable,
            __file__,
            "--memory-child",
            str(n),
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--max-length",
            str(args.max_length),
            "--memory-min-words",
            str(args.memory_min_words),
            "--memory-max-words",
            str(args.memory_max_words),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"(b) peak RSS added by extraction (tiny model, fresh process per size, {results[0]['method']}):"
    )
    for r in results:
        delta = (r["peak_kib"] - r["before_kib"]) / 1024
        print(
            f"    {r['n']:>6} samples: +{delta:6.1f} MiB over {r['before_kib'] / 1024:.0f} MiB "
            f"(peak {r['peak_kib'] / 1024:.0f} MiB, {r['seconds']:.1f} s)"
        )
    first, last = results[0], results[-1]
    delta_ratio = (last["peak_kib"] - last["before_kib"]) / max(
        first["peak_kib"] - first["before_kib"], 1
    )
    print(
        f"    added-memory ratio {last['n']}/{first['n']}: {delta_ratio:.2f}; "
        f"peak-RSS ratio: {last['peak_kib'] / first['peak_kib']:.3f} (goal: flat within 10 %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--samples", type=int, default=256, help="samples for the time ratio")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--min-words", type=int, default=16)
    parser.add_argument("--max-words", type=int, default=96)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--experts", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--intermediate", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument(
        "--vocab", type=int, default=3200, help="50304 x hidden/2048: OLMoE's head share"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--memory-min-words", type=int, default=4)
    parser.add_argument("--memory-max-words", type=int, default=24)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_time:
        time_ratio(args)
    if args.memory_sizes:
        memory_flatness(args)


if __name__ == "__main__":
    main()
