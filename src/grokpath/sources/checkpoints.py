"""Loading a checkpoint dir (lab, hub or local) with checks that name the file when it is broken."""

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


def checkpoint_steps(checkpoint_dirs: list, steps=None) -> list[int]:
    """The step of each checkpoint of a job: `steps` as given (one per checkpoint, in order;
    local checkpoints carry no metadata), else each folder's grokpath_checkpoint.json."""
    steps = [steps] if isinstance(steps, (int, str)) and steps != "" else list(steps or [])
    if steps and len(steps) != len(checkpoint_dirs):
        raise GrokpathError(f"{len(steps)} steps for {len(checkpoint_dirs)} checkpoints: give one per checkpoint")
    return [int(step) for step in steps] or [checkpoint_step(path) for path in checkpoint_dirs]


DEVICE_MAPS = (None, "auto")


def check_device_map(device_map) -> str | None:
    if device_map in (None, ""):
        return None
    if device_map not in DEVICE_MAPS:
        raise GrokpathError(f"device_map {device_map!r}: expected null or 'auto'")
    return str(device_map)


DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")


def torch_dtype(name: str | None, device):
    """A config dtype name as a torch dtype; auto (or none) = bf16 on CUDA, fp32 elsewhere
    (grokpath.routing.extract.default_dtype, the extraction's convention)."""
    import torch

    from grokpath.routing.extract import default_dtype

    if name in (None, "", "auto"):
        return default_dtype(device)
    if name not in DTYPE_NAMES:
        raise GrokpathError(f"dtype {name!r}: expected one of {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)


def load_tokenizer(checkpoint_dir: str | Path, tokenizer: str | Path | None = None):
    """The checkpoint's tokenizer: `tokenizer` (a folder or hub name; local checkpoints'
    `checkpoints.local.tokenizer`) when given, else the one saved in the checkpoint folder."""
    from transformers import AutoTokenizer

    source = tokenizer if tokenizer not in (None, "") else checkpoint_dir
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GrokpathError(f"tokenizer {source}: cannot be loaded ({first})") from None


def load_model(checkpoint_dir: str | Path, device, dtype=None, device_map: str | None = None):
    """AutoModelForCausalLM in `dtype` (default float32) on `device`, in eval mode; with
    `device_map` ('auto') accelerate places it over the visible GPUs (then CPU) instead."""
    import torch
    from transformers import AutoModelForCausalLM

    checkpoint_dir = Path(checkpoint_dir)
    check_checkpoint_dir(checkpoint_dir)
    kwargs = {"dtype": dtype or torch.float32}
    device_map = check_device_map(device_map)
    if device_map:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, **kwargs)
    except Exception as exc:  # safetensors/torch raise many types for a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GrokpathError(f"checkpoint dir {checkpoint_dir}: weights cannot be loaded ({first})") from None
    if not device_map:
        model = model.to(device)
    return model.eval()


def input_device(model, device=None):
    """Where a batch goes: the input embedding's device (with a device_map, the first GPU; a map
    onto one device places the model there without hooks), else `device`."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return embeddings.weight.device
    return device if device is not None else next(model.parameters()).device


def load_checkpoint(
    checkpoint_dir: str | Path, device, dtype=None, tokenizer=None, device_map: str | None = None
):
    # torch and transformers are imported in the functions: every snakemake process imports this
    # module (rules/common.smk -> grokpath.sources.hub), and they would add seconds to each dry run and job.
    model = load_model(checkpoint_dir, device, dtype, device_map)
    tokenizer = load_tokenizer(checkpoint_dir, tokenizer)
    if tokenizer.pad_token_id is None:
        # OLMoE's tokenizer defines a pad token; this only guards other families.
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
