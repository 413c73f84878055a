"""Training-time overhead of the pathway monitor (grokpath.routing.monitor) on the lab model.

Trains the configured lab model on the configured corpus with the lab's step (AdamW,
RouterBalance aux loss, grad clip, Grokfast when configured) and alternates blocks of
`--every` steps without and with the monitor (`--probe-samples` per domain, one monitor call per
monitored block: the defaults, 64 every 50 steps). Prints steps/s of each and the ratio
monitored / unmonitored, measured in the same run (goal >= 0.95, i.e. <= 5 % overhead). Blocks
alternate so that drift of the machine's speed hits both alike. No assertions.

    python benchmarks/bench_monitor.py --config config/config.yaml --blocks 4 --threads 2
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
from grokpath.routing.monitor import DEFAULT_EVERY_N_STEPS, DEFAULT_PROBE_SAMPLES, PathwayMonitor, draw_probe_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--blocks", type=int, default=2, help="blocks of --every steps per arm")
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY_N_STEPS, help="monitor every N steps")
    parser.add_argument("--probe-samples", type=int, default=DEFAULT_PROBE_SAMPLES, help="per domain")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    model_cfg, train_cfg = config["model"], {**config["pretrain"], "compile": args.compile}
    domains = list(config["domains"])
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_corpus({n: s["lab"] for n, s in config["domains"].items()}, config["seed"], Path(tmp))
        tokenizer = build_tokenizer(manifest["vocabulary"] + list(LAB_TEMPLATE_WORDS))
        corpus = load_corpus(tmp, domains)
    samples = [row for d in domains for row in corpus.train[d]]
    max_length = model_cfg["max_position_embeddings"]
    ids, attention, labels = training_tensors(tokenizer, samples, max_length, train_cfg["loss_span"])
    model = init_lab_model(model_cfg, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, 0)
    forward = compiled_for_training(model, train_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    slow_gradients = gradient_filter(model, train_cfg)
    balance = RouterBalance(model, model_cfg["top_k"], model_cfg["num_experts"])
    generator = torch.Generator().manual_seed(0)
    monitor = PathwayMonitor(
        model, draw_probe_samples(corpus.train, args.probe_samples, config["seed"]), tokenizer,
        every_n_steps=args.every, threshold=config["pathways"]["threshold"],
        batch_size=config["pathways"]["batch_size"], max_length=config["pathways"]["max_length"],
        max_pairs=config["pathways"]["max_pairs"], seed=config["seed"],
    )

    def step() -> None:
        index = torch.randint(0, len(samples), (train_cfg["batch_size"],), generator=generator)
        model.train()
        balance.reset()
        out = forward(input_ids=ids[index], attention_mask=attention[index], labels=labels[index])
        loss = out.loss + model_cfg["router_aux_loss_coef"] * balance.loss(attention[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if slow_gradients:
            slow_gradients()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
        optimizer.step()

    for _ in range(args.warmup):
        step()
    monitor.measure(0)  # the monitor's own first call (allocations) is not timed either
    monitor.seconds = 0.0
    seconds = {"plain": 0.0, "monitored": 0.0}
    global_step = 0
    for _ in range(args.blocks):
        for arm in ("plain", "monitored"):
            start = time.perf_counter()
            for _ in range(args.every):
                step()
                global_step += 1
                if arm == "monitored":
                    monitor.step(global_step)
            seconds[arm] += time.perf_counter() - start
        # each monitored block ends on a multiple of --every: one monitor call per block
    steps = args.blocks * args.every
    plain, monitored = steps / seconds["plain"], steps / seconds["monitored"]
    n_probe = sum(len(batch) for batch, *_ in monitor._batches)
    print(f"lab model {model_cfg['num_layers']} layers x {model_cfg['num_experts']} experts, "
          f"batch {train_cfg['batch_size']}, {args.threads} threads{', compiled' if args.compile else ''}")
    print(f"monitor: {n_probe} probe samples ({args.probe_samples} per domain) every {args.every} steps, "
          f"{monitor.seconds / args.blocks:.3f} s per call")
    print(f"unmonitored: {plain:.2f} steps/s over {steps} steps")
    print(f"monitored:   {monitored:.2f} steps/s over {steps} steps")
    print(f"ratio monitored/unmonitored: {monitored / plain:.3f} (overhead {100 * (1 - monitored / plain):.1f} %)")


if __name__ == "__main__":
    main()
