"""Pretraining the lab model on the generated corpus, saving HF checkpoints along the way.

The schedule is linear warm-up then a constant learning rate: the paper's memorization rule
(loss within delta of the FINAL loss at every later checkpoint) needs a flat tail, and a
cool-down at the end would lower every final loss and leave nothing memorized before it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from grokpath.balance import RouterBalance
from grokpath.checkpoints import CHECKPOINT_META
from grokpath.errors import GrokpathError
from grokpath.lab_model import init_lab_model
from grokpath.probe import probe_accuracy
from grokpath.tableio import atomic_dir, read_jsonl, write_parquet
from grokpath.tokens import encode_samples, resolve_device

log = logging.getLogger("grokpath.pretrain")


@dataclass
class CorpusSplits:
    train: dict[str, list[dict]]
    test: dict[str, list[dict]]


def load_corpus(corpus_dir: str | Path, domains: list[str]) -> CorpusSplits:
    corpus_dir = Path(corpus_dir)
    train, test = {}, {}
    for domain in domains:
        train[domain] = read_jsonl(corpus_dir / domain / "train.jsonl")
        test[domain] = read_jsonl(corpus_dir / domain / "test.jsonl")
        if not train[domain]:
            raise GrokpathError(f"{corpus_dir / domain / 'train.jsonl'}: no training samples")
    return CorpusSplits(train, test)


def training_tensors(tokenizer, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All samples padded to one width once; labels are -100 on padding so it adds no loss."""
    encoded = encode_samples(tokenizer, texts, max_length, append_eos=True)
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, : len(seq)] = torch.tensor(seq)
    return ids, labels


def learning_rate(step: int, peak: float, warmup_steps: int) -> float:
    return peak * min(1.0, step / max(1, warmup_steps))


def save_checkpoint(model, tokenizer, dest: Path, step: int) -> None:
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CHECKPOINT_META).write_text(json.dumps({"step": step, "source": "lab"}) + "\n")


def probe_rows(corpus: CorpusSplits, cap: int, seed: int) -> dict[tuple[str, str], list[dict]]:
    """A fixed seeded subset of training samples (probing all of them each time is wasteful)."""
    rng = random.Random(f"{seed}:probe")
    picked = {}
    for domain, rows in corpus.train.items():
        picked[(domain, "train")] = rng.sample(rows, min(cap, len(rows)))
        picked[(domain, "test")] = corpus.test[domain][:cap]
    return picked


def pretrain(
    *,
    corpus_dir: str,
    tokenizer,
    domains: list[str],
    model_cfg: dict,
    train_cfg: dict,
    save_steps: list[int],
    checkpoint_dirs: dict[int, str],
    seed: int,
    device: str = "auto",
    threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and save a checkpoint at every step in `save_steps`; returns (log, probe) tables."""
    torch.set_num_threads(max(1, threads))
    dev = resolve_device(device)
    corpus = load_corpus(corpus_dir, domains)
    texts = [row["text"] for domain in domains for row in corpus.train[domain]]
    max_length = model_cfg["max_position_embeddings"]
    ids, labels = training_tensors(tokenizer, texts, max_length)
    model = init_lab_model(model_cfg, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed).to(dev)
    log.info("lab model: %d parameters, %d training samples, device %s",
             sum(p.numel() for p in model.parameters()), len(texts), dev)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
        betas=tuple(train_cfg["betas"]),
    )
    balance = RouterBalance(model, model_cfg["top_k"], model_cfg["num_experts"])
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(train_cfg["batch_size"], len(texts))
    probes = probe_rows(corpus, train_cfg["probe_samples"], seed)
    log_rows, probe_table = [], []
    order = torch.randperm(len(texts), generator=generator)
    cursor, tokens_seen, start = 0, 0, time.perf_counter()
    total = max(save_steps)
    bar = tqdm(range(1, total + 1), desc="pretrain", unit="step", mininterval=2.0)
    for step in bar:
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(texts), generator=generator), 0
        index = order[cursor : cursor + batch_size]
        cursor += batch_size
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, train_cfg["lr"], train_cfg["warmup_steps"])
        model.train()
        batch_ids, batch_labels = ids[index].to(dev), labels[index].to(dev)
        token_mask = (batch_labels != -100).long()
        balance.reset()
        out = model(input_ids=batch_ids, attention_mask=token_mask, labels=batch_labels)
        aux_loss = balance.loss(token_mask)
        loss = out.loss + model_cfg["router_aux_loss_coef"] * aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train_cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
        optimizer.step()
        tokens_seen += int((batch_labels != -100).sum())
        if step % train_cfg["log_every"] == 0 or step == total:
            elapsed = time.perf_counter() - start
            log_rows.append({
                "step": step, "loss": out.loss.item(), "aux_loss": aux_loss.item(),
                "lr": optimizer.param_groups[0]["lr"], "tokens": tokens_seen, "elapsed_s": elapsed,
            })
            bar.set_postfix(loss=f"{out.loss.item():.3f}", tok_s=f"{tokens_seen / elapsed:.0f}")
        if step in checkpoint_dirs:
            save_checkpoint(model, tokenizer, Path(checkpoint_dirs[step]), step)
            balance.reset()
            probe_table.extend(_probe(model, tokenizer, probes, dev, max_length, step))
            balance.reset()
            summary = " ".join(f"{r['domain']}/{r['split']}={r['accuracy']:.2f}" for r in probe_table[-2 * len(domains):])
            log.info("step %d: loss %.4f, %.0f tokens/s; probe %s", step, out.loss.item(),
                     tokens_seen / (time.perf_counter() - start), summary)
    return pd.DataFrame(log_rows), pd.DataFrame(probe_table)


def _probe(model, tokenizer, probes, device, max_length, step) -> list[dict]:
    return [
        {"step": step, "domain": domain, "split": split, "n": len(rows),
         "accuracy": probe_accuracy(model, tokenizer, rows, device, max_length)}
        for (domain, split), rows in probes.items()
    ]


def write_logs(log_df: pd.DataFrame, probe_df: pd.DataFrame, log_path: str, probe_path: str) -> None:
    write_parquet(log_df, log_path)
    write_parquet(probe_df, probe_path)
