"""LoRA instruction tuning of a checkpoint before its accuracy is measured (paper "Setup").

The paper tunes every checkpoint for 3 epochs (rank 32 on q/k/v, dropout 0.1, lr 5e-5, batch 4,
max length 2048) on MetaMathQA (math), CodeAlpaca-20K (code) or alpaca-cleaned (commonsense,
domain-specific). The lab tunes on rows made from its own training corpus, wrapped in a
word-level template that the `lab_*_instruct` task YAMLs repeat at evaluation time.

An instruction row is {"prompt": text the model is given, "response": text it should produce};
the loss covers the response tokens (and the end-of-sequence token) only.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from grokpath.errors import GrokpathError
from grokpath.tableio import atomic_dir

log = logging.getLogger("grokpath.evaluation.instruction_tuning")

# Kept in sync with `doc_to_text` of config/lm_eval_tasks/lab/lab_*_instruct.yaml (tested).
LAB_INSTRUCTION_TEMPLATE = "question: {prompt} answer:"
# The template's own words: the lab tokenizer needs them in its vocabulary, or they become [UNK].
LAB_TEMPLATE_WORDS = ("question:", "answer:")
# The Alpaca prompt (alpaca-cleaned, CodeAlpaca and MetaMathQA are all released in this form);
# config/lm_eval_tasks/paper/dart_math_pool_math.yaml uses the same text.
ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{prompt}\n\n### Response:\n"
)
ADAPTER_META = "grokpath_adapter.json"


# ---------------------------------------------------------------- instruction rows


def lab_instruction_rows(
    train_rows: Iterable[Mapping], template: str = LAB_INSTRUCTION_TEMPLATE
) -> list[dict]:
    """Instruction rows from lab corpus train rows (fields `prompt`, `answer`)."""
    rows = []
    for row in train_rows:
        if not row.get("prompt") or "answer" not in row:
            raise GrokpathError(
                f"train row {row.get('sample_id', '?')}: a lab instruction row needs "
                "prompt and answer"
            )
        rows.append(
            {"prompt": template.format(prompt=row["prompt"]), "response": str(row["answer"])}
        )
    return rows


def alpaca_rows(records: Iterable[Mapping], template: str = ALPACA_TEMPLATE) -> list[dict]:
    """Instruction rows from hub records: alpaca-style (instruction, input, output) or
    MetaMathQA (query, response)."""
    rows = []
    for record in records:
        if "query" in record and "response" in record:
            prompt, response = record["query"], record["response"]
        elif "instruction" in record and "output" in record:
            extra = record.get("input") or ""
            prompt = f"{record['instruction']}\n\n{extra}" if extra else record["instruction"]
            response = record["output"]
        else:
            raise GrokpathError(
                f"instruction record with keys {sorted(record)}: expected query/response "
                "or instruction/input/output"
            )
        rows.append({"prompt": template.format(prompt=prompt), "response": response})
    return rows


def subsample_rows(rows: Sequence[dict], subsample: int | float | None, seed: int) -> list[dict]:
    """All rows (None), a fraction (0 < float <= 1) or a count (int) drawn without replacement."""
    if subsample is None:
        return list(rows)
    if isinstance(subsample, float):
        if not 0 < subsample <= 1:
            raise GrokpathError(f"subsample={subsample}: a fraction must be in (0, 1]")
        count = max(1, round(subsample * len(rows)))
    else:
        count = min(int(subsample), len(rows))
    return random.Random(seed).sample(list(rows), count)


# ---------------------------------------------------------------- tokenization and batches


def tokenize_rows(tokenizer, rows: Sequence[dict], max_length: int) -> list[tuple[list, list]]:
    """(input ids, labels) per row; prompt tokens get label -100. Rows whose response is cut
    away entirely by `max_length` are dropped (they would carry no loss)."""
    if tokenizer.eos_token_id is None:
        raise GrokpathError("tokenizer has no eos token: cannot mark the end of a response")
    examples = []
    for row in rows:
        # Prompt and response are tokenized apart so the prompt/response boundary is exact;
        # lm-eval scores a continuation the same way.
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        response = tokenizer(row["response"], add_special_tokens=False)["input_ids"]
        ids = (prompt + response + [tokenizer.eos_token_id])[:max_length]
        labels = ([-100] * len(prompt) + response + [tokenizer.eos_token_id])[:max_length]
        if any(label != -100 for label in labels):
            examples.append((ids, labels))
    return examples


def collate(examples: Sequence[tuple[list, list]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


# ---------------------------------------------------------------- LoRA training


def _lora_model(model, rank: int, alpha: int, dropout: float, target_modules: Sequence[str]):
    from peft import LoraConfig, get_peft_model

    missing = [
        m for m in target_modules if not any(n.endswith(f".{m}") for n, _ in model.named_modules())
    ]
    if missing:
        raise GrokpathError(f"LoRA target module(s) {', '.join(missing)} not in the model")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _train(model, examples, pad_id, *, lr, batch_size, epochs, seed, device) -> list[float]:
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    order = random.Random(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        indices = list(range(len(examples)))
        order.shuffle(indices)
        for start in range(0, len(indices), batch_size):
            batch = collate([examples[i] for i in indices[start : start + batch_size]], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    return losses


def instruction_tune(
    checkpoint_dir: str | Path,
    instruction_rows: Sequence[dict],
    out_dir: str | Path,
    *,
    rank: int = 32,
    alpha: int = 64,
    dropout: float = 0.1,
    lr: float = 5e-5,
    batch_size: int = 4,
    max_length: int = 2048,
    epochs: int = 3,
    target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj"),
    subsample: int | float | None = None,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | None = None,
    device_map: str | None = None,
) -> dict:
    """Train a LoRA adapter on `instruction_rows` and save it (atomically) to `out_dir`.

    The adapter dir loads with peft, and in lm-eval with model_args `peft=<out_dir>` on top of
    `pretrained=<checkpoint_dir>`. Returns the summary also written to `grokpath_adapter.json`.
    Optimizer: AdamW at a constant lr (the paper names neither optimizer nor schedule).
    The base model loads in `dtype` (auto: bf16 on CUDA, fp32 on CPU; peft keeps the LoRA weights
    in fp32), with the checkpoint's tokenizer or `tokenizer` (a folder or hub name), on `device`
    or, with `device_map` 'auto', spread over the visible GPUs.
    """
    import torch

    from grokpath.sources.checkpoints import input_device, load_model, load_tokenizer, torch_dtype
    from grokpath.tokens import resolve_device

    device = resolve_device(device)
    started = time.perf_counter()
    torch.manual_seed(seed)
    rows = subsample_rows(instruction_rows, subsample, seed)
    tokenizer = load_tokenizer(checkpoint_dir, tokenizer)
    examples = tokenize_rows(tokenizer, rows, max_length)
    if not examples:
        raise GrokpathError(f"no instruction rows left to train on (of {len(instruction_rows)})")
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    # On the CPU first (unless a device_map places it): the LoRA weights are then drawn from the
    # CPU generator on any device, as before, and move to `device` with the base.
    base = load_model(checkpoint_dir, "cpu", torch_dtype(dtype, device), device_map)
    model = _lora_model(base, rank, alpha, dropout, target_modules)
    if device_map:
        device = input_device(base, device)
    else:
        model = model.to(device)
    losses = _train(
        model,
        examples,
        pad_id,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        device=device,
    )
    summary = {
        "checkpoint_dir": str(checkpoint_dir),
        "rank": rank,
        "alpha": alpha,
        "dropout": dropout,
        "lr": lr,
        "batch_size": batch_size,
        "max_length": max_length,
        "epochs": epochs,
        "target_modules": list(target_modules),
        "subsample": subsample,
        "seed": seed,
        "n_rows": len(examples),
        "n_steps": len(losses),
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "seconds": round(time.perf_counter() - started, 3),
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        (tmp / ADAPTER_META).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info(
        "LoRA on %s: %d rows, %d steps, loss %.3f -> %.3f, %.1f s",
        checkpoint_dir,
        len(examples),
        len(losses),
        losses[0],
        losses[-1],
        summary["seconds"],
    )
    return summary
