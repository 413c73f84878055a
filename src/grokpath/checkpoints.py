"""Loading a checkpoint dir (lab or hub) with checks that name the file when it is broken."""

from __future__ import annotations

import json
from pathlib import Path

from grokpath.errors import GrokpathError

CHECKPOINT_META = "grokpath_checkpoint.json"
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def check_checkpoint_dir(path: str | Path, shown_as: str | Path | None = None) -> None:
    """Fail unless `path` holds an HF model: config.json and weights.

    `shown_as` is the name used in the message, for checks run on a temporary directory.
    """
    path = Path(path)
    name = shown_as if shown_as is not None else path
    if not (path / "config.json").is_file():
        raise GrokpathError(f"checkpoint dir {name} has no config.json")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise GrokpathError(
            f"checkpoint dir {name} has no weights (expected *.safetensors or pytorch_model*.bin)"
        )


def checkpoint_step(checkpoint_dir: str | Path) -> int:
    meta = Path(checkpoint_dir) / CHECKPOINT_META
    try:
        return int(json.loads(meta.read_text())["step"])
    except (OSError, ValueError, KeyError) as exc:
        raise GrokpathError(f"{meta}: missing or unreadable checkpoint metadata ({exc})") from None


def load_checkpoint(checkpoint_dir: str | Path, device, dtype=None):
    # Imported here: every snakemake process imports this module (rules/common.smk -> grokpath.hub),
    # and torch + transformers at import would add seconds to each dry run and cluster job.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint_dir = Path(checkpoint_dir)
    check_checkpoint_dir(checkpoint_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=dtype or torch.float32)
    except Exception as exc:  # safetensors/torch raise many types for a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GrokpathError(f"checkpoint dir {checkpoint_dir}: weights cannot be loaded ({first})") from None
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    if tokenizer.pad_token_id is None:
        # OLMoE's tokenizer defines a pad token; this only guards other families.
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer
