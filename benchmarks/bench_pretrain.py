"""Lab pretraining throughput: steps/s of `pretrain.compile: true` over eager, same run.

Pretrains the configured lab model on the configured corpus twice for `--steps` steps (after
`--warmup` steps that include torch.compile's compile time, reported separately), and prints
steps/s of each and their ratio. No assertions: a ratio measured here, on this machine.

    python benchmarks/bench_pretrain.py --config config/config.yaml --steps 200 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from grokpath.config import load_config
from grokpath.evaluation.instruction_tuning import LAB_TEMPLATE_WORDS
from grokpath.lab.balance import RouterBalance
from grokpath.lab.corpus import write_corpus
from grokpath.lab.model import init_lab_model
from grokpath.lab.pretrain import compiled_for_training, gradient_filter, load_corpus, training_tensors
from grokpath.lab.tokenizer import build_tokenizer


def time_steps(config: dict, corpus_dir: Path, tokenizer, compile_: bool, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds for the warm-up steps, steps/s after them) of the pretraining step as pretrain runs it."""
    model_cfg, train_cfg = config["model"], {**config["pretrain"], "compile": compile_}
    domains = list(config["domains"])
    corpus = load_corpus(corpus_dir, domains)
    samples = [row for d in domains for row in corpus.train[d]]
    ids, attention, labels = training_tensors(tokenizer, samples, model_cfg["max_position_embeddings"],
                                              train_cfg["loss_span"])
    model = init_lab_model(model_cfg, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, 0)
    forward = compiled_for_training(model, train_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    slow_gradients = gradient_filter(model, train_cfg)
    balance = RouterBalance(model, model_cfg["top_k"], model_cfg["num_experts"])
    generator = torch.Generator().manual_seed(0)

    def step():
        index = torch.randint(0, len(samples), (train_cfg["batch_size"],), generator=generator)
        balance.reset()
        out = forward(input_ids=ids[index], attention_mask=attention[index], labels=labels[index])
        loss = out.loss + model_cfg["router_aux_loss_coef"] * balance.loss(attention[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if slow_gradients:
            slow_gradients()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
        optimizer.step()

    model.train()
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return warm, steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        domains = {name: spec["lab"] for name, spec in config["domains"].items()}
        manifest = write_corpus(domains, config["seed"], Path(tmp))
        tokenizer = build_tokenizer(manifest["vocabulary"] + list(LAB_TEMPLATE_WORDS))
        eager_warm, eager = time_steps(config, Path(tmp), tokenizer, False, args.warmup, args.steps)
        compiled_warm, compiled = time_steps(config, Path(tmp), tokenizer, True, args.warmup, args.steps)
    print(f"eager:    {eager:.2f} steps/s (first {args.warmup} steps {eager_warm:.1f} s)")
    print(f"compiled: {compiled:.2f} steps/s (first {args.warmup} steps {compiled_warm:.1f} s, compile included)")
    print(f"ratio compiled/eager: {compiled / eager:.2f}")
    break_even = (compiled_warm - eager_warm) / max(1e-9, 1 / eager - 1 / compiled)
    print(f"compile pays off after ~{break_even:.0f} steps")


if __name__ == "__main__":
    main()
