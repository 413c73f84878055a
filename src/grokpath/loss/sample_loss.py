"""Per-sample loss: mean next-token NLL of every pretraining and validation sample.

`span` (config `loss.span`) chooses the tokens scored: `all` every token after the first (the
paper's whole-document loss), `answer` the answer token(s) and EOS of a prompt/answer sample.

Output columns (`loss/steps{first}-{last}/step{S}.parquet`): domain, sample_id, split
(train|valid), step, loss, n_tokens (tokens whose next-token prediction is scored: sequence
length - 1 for `all`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.sources.checkpoints import load_checkpoint
from grokpath.tableio import read_jsonl, read_parquet, step_tables

# torch (and grokpath.tokens, which needs it) is imported in the functions that run the model:
# memorization, loss_baselines and the ablations import this module for LOSS_COLUMNS alone, and
# torch would add seconds to each of those jobs.

log = logging.getLogger("grokpath.loss.sample_loss")
LOSS_COLUMNS = ["domain", "sample_id", "split", "step", "loss", "n_tokens"]


def read_loss_tables(paths) -> pd.DataFrame:
    """Every step's loss table under `paths` (sample_loss's chunk folders or single tables), as
    one frame with LOSS_COLUMNS."""
    return pd.concat([read_parquet(p, LOSS_COLUMNS) for p in step_tables(paths)], ignore_index=True)


def corpus_samples(corpus_dir: str | Path, domains: list[str]) -> list[dict]:
    samples = []
    for domain in domains:
        for split in ("train", "valid"):
            path = Path(corpus_dir) / domain / f"{split}.jsonl"
            rows = read_jsonl(path)
            if not rows:
                raise GrokpathError(f"{path}: empty sample set")
            samples.extend({**row, "split": split} for row in rows)
    return samples


def per_sample_nll(
    model, sequences: list[list[int]], pad_id: int, batch_size: int, device, starts: list[int] | None = None
) -> list[float]:
    """Mean NLL over each sequence's scored tokens (from position `starts[i]`, default 1); padding
    never enters the mean."""
    import torch
    from tqdm import tqdm

    from grokpath.tokens import length_sorted_batches, pad_batch

    starts = starts or [1] * len(sequences)
    losses = [float("nan")] * len(sequences)
    batches = length_sorted_batches([len(s) for s in sequences], batch_size)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="sample loss", unit="batch", mininterval=2.0):
            ids, mask = pad_batch([sequences[i] for i in batch], pad_id)
            ids, mask = ids.to(device), mask.to(device)
            # .to: with a device_map the logits come out on the last GPU, the batch lies on the first
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float().to(ids.device)
            targets = ids[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
            ).view(targets.shape)
            first = torch.tensor([starts[i] for i in batch], device=device)
            positions = torch.arange(1, ids.shape[1], device=device)
            scored = (mask[:, 1:].bool() & (positions[None, :] >= first[:, None])).float()
            per_sample = (nll * scored).sum(1) / scored.sum(1).clamp(min=1)
            for i, value in zip(batch, per_sample.tolist()):
                losses[i] = value
    return losses


def sample_loss_table(
    checkpoint_dir: str, corpus_dir: str, domains: list[str], step: int, batch_size: int,
    max_length: int, append_eos: bool, span: str = "all", device: str = "auto",
    tokenizer: str | None = None, device_map: str | None = None,
) -> pd.DataFrame:
    """`tokenizer`: a folder or hub name to load instead of the checkpoint's own (local
    checkpoints); `device_map`: 'auto' spreads the model over the GPUs (grokpath.sources.checkpoints)."""
    from grokpath.sources.checkpoints import input_device
    from grokpath.tokens import answer_starts, encode_samples, resolve_device

    dev = resolve_device(device)
    model, tokenizer = load_checkpoint(checkpoint_dir, dev, tokenizer=tokenizer, device_map=device_map)
    dev = input_device(model, dev)
    samples = corpus_samples(corpus_dir, domains)
    sequences = encode_samples(tokenizer, [s["text"] for s in samples], max_length, append_eos)
    too_short = [s["sample_id"] for s, seq in zip(samples, sequences) if len(seq) < 2]
    if too_short:
        raise GrokpathError(f"{corpus_dir}: sample {too_short[0]} has fewer than 2 tokens; no loss to score")
    starts = answer_starts(tokenizer, samples, max_length, span, str(corpus_dir))
    start = time.perf_counter()
    losses = per_sample_nll(model, sequences, tokenizer.pad_token_id, batch_size, dev, starts)
    elapsed = time.perf_counter() - start
    n_tokens = sum(len(s) for s in sequences)
    log.info("step %d: %d samples, %d tokens in %.1f s (%.0f samples/s, %.0f tokens/s)",
             step, len(samples), n_tokens, elapsed, len(samples) / elapsed, n_tokens / elapsed)
    return pd.DataFrame({
        "domain": [s["domain"] for s in samples],
        "sample_id": [s["sample_id"] for s in samples],
        "split": [s["split"] for s in samples],
        "step": step,
        "loss": losses,
        "n_tokens": [len(seq) - first for seq, first in zip(sequences, starts)],
    })[LOSS_COLUMNS]
