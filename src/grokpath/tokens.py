"""Turning samples into padded token batches, shared by pretraining, loss and probing."""

from __future__ import annotations

import torch

from grokpath.errors import GrokpathError


def encode_samples(tokenizer, texts: list[str], max_length: int, append_eos: bool) -> list[list[int]]:
    """Token ids per text, truncated to `max_length`; EOS appended when the run asks for it."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if append_eos:
        if tokenizer.eos_token_id is None:
            raise GrokpathError(f"tokenizer {tokenizer.name_or_path!r} has no eos_token to append")
        encoded = [ids + [tokenizer.eos_token_id] for ids in encoded]
    return [ids[:max_length] for ids in encoded]


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence; returns (input_ids, attention_mask)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar length, so padding (wasted compute) stays small."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GrokpathError(f"device: {device!r} requested but no CUDA device is available")
    return torch.device(device)


SPANS = ("all", "answer")


def answer_starts(tokenizer, samples: list[dict], max_length: int, span: str, source: str) -> list[int]:
    """Per sample, the position of its first token whose prediction is scored.

    `all` scores every token after the first (position 1); `answer` scores the answer token(s)
    and the EOS after them, i.e. from the first position after the prompt. A lab sample's
    operands are drawn at random, so their tokens' loss never converges; the answer's does.
    """
    if span not in SPANS:
        raise GrokpathError(f"loss span {span!r}: expected one of {', '.join(SPANS)}")
    if span == "all":
        return [1] * len(samples)
    missing = [s.get("sample_id", "?") for s in samples if not s.get("prompt")]
    if missing:
        raise GrokpathError(
            f"{source}: sample {missing[0]} has no 'prompt' field; span 'answer' needs prompt/answer samples"
        )
    prompts = encode_samples(tokenizer, [s["prompt"] for s in samples], max_length, append_eos=False)
    return [max(1, min(len(ids), max_length - 1)) for ids in prompts]
