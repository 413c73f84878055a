"""Min-K%++ contamination scores of test items under the final checkpoint (Zhang et al. 2024).

Per predicted token x_t, with p the model's next-token distribution at position t:
    score_t = (log p(x_t) - mu_t) / sigma_t,
    mu_t = E_{z~p}[log p(z)],  sigma_t^2 = Var_{z~p}[log p(z)].
An item's Min-K%++ is the mean of its lowest k% per-token scores (at least one token). A high
value means the text is unusually likely for this model, i.e. probably seen in training; the
top `fraction` of each domain (paper: 10%) is flagged as contaminated.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import pandas as pd

from grokpath.errors import GrokpathError

log = logging.getLogger("grokpath.evaluation.contamination")

CONTAMINATION_COLUMNS = ["domain", "doc_id", "task", "min_k_pp", "n_tokens", "contaminated"]

# Below this sigma the next-token distribution is flat over the vocabulary's log-probs (every
# token equally likely), so the numerator is 0 too; the token is scored 0 instead of 0/0.
_FLAT_SIGMA = 1e-6


def item_text(row: Mapping) -> str:
    """The text a test item is scored on: its prompt followed by its gold answer."""
    return f"{row['prompt']} {row['answer']}"


def token_scores(logits, input_ids):
    """Min-K%++ score of every predicted token: logits (seq, vocab) and ids (seq,) of one text
    give seq-1 scores, for tokens 1..seq-1 (the first token has no prediction)."""
    import torch

    log_probs = torch.log_softmax(logits[:-1].double(), dim=-1)
    probs = log_probs.exp()
    mu = (probs * log_probs).sum(-1)
    variance = (probs * log_probs.square()).sum(-1) - mu.square()
    sigma = variance.clamp_min(0).sqrt()
    token_log_prob = log_probs.gather(-1, input_ids[1:, None]).squeeze(-1)
    flat = sigma < _FLAT_SIGMA
    return torch.where(
        flat, torch.zeros_like(mu), (token_log_prob - mu) / sigma.masked_fill(flat, 1)
    )


def min_k_plus_plus(scores: Sequence[float], k: float) -> float:
    """Mean of the lowest fraction k of the per-token scores; floor(k * n), but at least one."""
    if not 0 < k <= 1:
        raise GrokpathError(f"min_k={k}: must be a fraction in (0, 1]")
    values = sorted(float(s) for s in scores)
    if not values:
        return math.nan
    count = max(1, int(k * len(values)))
    return sum(values[:count]) / count


def score_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    k: float,
    batch_size: int = 16,
    max_length: int | None = None,
) -> list[tuple[float, int]]:
    """(Min-K%++, number of scored tokens) per text, batched with right padding."""
    import torch

    device = next(model.parameters()).device
    results: list[tuple[float, int]] = []
    for start in range(0, len(texts), batch_size):
        encoded = [
            tokenizer(text, truncation=max_length is not None, max_length=max_length)["input_ids"]
            for text in texts[start : start + batch_size]
        ]
        width = max(len(ids) for ids in encoded)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention.to(device)
            ).logits.cpu()
        for i, ids in enumerate(encoded):
            n = len(ids)
            if n < 2:
                results.append((math.nan, 0))
                continue
            scores = token_scores(logits[i, :n], input_ids[i, :n])
            results.append((min_k_plus_plus(scores.tolist(), k), n - 1))
    return results


def flag_top_fraction(scores: pd.DataFrame, fraction: float) -> pd.Series:
    """True for the ceil(fraction * n) highest-scoring items of each domain (ties: lower
    doc_id first). Items that could not be scored (NaN) are never flagged."""
    if not 0 <= fraction <= 1:
        raise GrokpathError(f"contamination fraction={fraction}: must be in [0, 1]")
    flagged = pd.Series(False, index=scores.index)
    for _, group in scores.dropna(subset=["min_k_pp"]).groupby("domain"):
        count = math.ceil(fraction * len(group) - 1e-9)
        ranked = group.sort_values(["min_k_pp", "doc_id"], ascending=[False, True])
        flagged[ranked.index[:count]] = True
    return flagged


def contamination_table(
    checkpoint_dir: str,
    test_items: Mapping[str, Sequence[Mapping]],
    tasks: Mapping[str, str],
    *,
    k: float = 0.2,
    fraction: float = 0.1,
    batch_size: int = 16,
    max_length: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | None = None,
    device_map: str | None = None,
) -> pd.DataFrame:
    """Score every test item ({domain: rows of corpus test.jsonl}) under one checkpoint.

    The model loads in `dtype` (auto: bf16 on CUDA, fp32 on CPU), with the checkpoint's tokenizer
    or `tokenizer` (a folder or hub name), on `device` or, with `device_map` 'auto', spread over
    the visible GPUs.

    Returns CONTAMINATION_COLUMNS; `tasks` ({domain: lm-eval task}) names the task column so
    the table joins with the evaluation's per-item table on (task, doc_id).
    """
    from grokpath.sources.checkpoints import load_model, load_tokenizer, torch_dtype
    from grokpath.tokens import resolve_device

    missing = sorted(set(test_items) - set(tasks))
    if missing:
        raise GrokpathError(f"no task configured for domain(s) {', '.join(missing)}")
    device = resolve_device(device)
    tokenizer = load_tokenizer(checkpoint_dir, tokenizer)
    model = load_model(checkpoint_dir, device, torch_dtype(dtype, device), device_map)
    rows = []
    for domain, items in test_items.items():
        texts = [item_text(item) for item in items]
        scored = score_texts(
            model,
            tokenizer,
            texts,
            k=k,
            batch_size=batch_size,
            max_length=max_length,
        )
        for item, (score, n_tokens) in zip(items, scored):
            rows.append(
                {
                    "domain": domain,
                    "doc_id": int(item["doc_id"]),
                    "task": tasks[domain],
                    "min_k_pp": score,
                    "n_tokens": n_tokens,
                }
            )
        log.info("%s: %d items scored", domain, len(items))
    table = pd.DataFrame(rows, columns=CONTAMINATION_COLUMNS[:-1])
    table["contaminated"] = flag_top_fraction(table, fraction)
    return table.astype({"doc_id": "int64", "n_tokens": "int64", "contaminated": "bool"})
