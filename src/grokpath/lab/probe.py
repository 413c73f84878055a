"""A cheap accuracy probe used while pretraining: one forward pass per batch of prompts.

Lab answers are one word, so greedy exact match is "the argmax next token is the answer", and
multiple choice is "the answer has the highest next-token logit among the choices". lm-eval is
the reference scorer (rule `evaluate`); this probe only guides tuning and the pretraining log.
"""

from __future__ import annotations

import torch

from grokpath.errors import GrokpathError
from grokpath.tokens import encode_samples, pad_batch


def _word_id(tokenizer, word: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(word)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise GrokpathError(f"probe: answer {word!r} is not a single token of the lab tokenizer")
    return token_id


@torch.inference_mode()
def probe_accuracy(model, tokenizer, rows: list[dict], device, max_length: int, batch_size: int = 1024) -> float:
    if not rows:
        return float("nan")
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        prompts = encode_samples(tokenizer, [r["prompt"] for r in batch], max_length, append_eos=False)
        ids, mask = pad_batch(prompts, tokenizer.pad_token_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        last = mask.sum(1).to(device) - 1
        next_logits = logits[torch.arange(len(batch), device=device), last].float().cpu()
        for row, scores in zip(batch, next_logits):
            answer = _word_id(tokenizer, row["answer"])
            if row.get("choices"):
                options = [_word_id(tokenizer, c) for c in row["choices"]]
                predicted = options[int(torch.argmax(scores[options]))]
            else:
                predicted = int(torch.argmax(scores))
            correct += int(predicted == answer)
    return correct / len(rows)
