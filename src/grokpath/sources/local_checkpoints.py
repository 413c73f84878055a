"""Checkpoints of your own training run: `checkpoints.source: local`.

The workflow reads the checkpoint folders where they lie (no rule writes, copies or deletes
them): `checkpoints.local.path` is a folder of `checkpoint-{step}/` folders, as
`transformers.Trainer` writes them (`pattern` names another layout; `{step}` is the step), or
`checkpoints.local.folders` maps each step to its folder. `local_checkpoints` finds and checks
them when the DAG is built, so a bad folder stops `snakemake -n` with one line that names it:
- steps: without `checkpoints.steps`, every step found on disk (at least two); with it, exactly
  those steps, each of which must have its folder (other folders on disk are left alone);
- every folder: a readable config.json and weights (*.safetensors or pytorch_model*.bin);
- one architecture: config.json's model_type and sizes (ARCHITECTURE_KEYS) equal across steps,
  and a family that has a router adapter (grokpath.routing.routers.ADAPTERS);
- a tokenizer: `checkpoints.local.tokenizer` (a folder, or a hub name that must be in the local
  HF cache when HF_HUB_OFFLINE is set), else one in every checkpoint folder. A Trainer saves a
  tokenizer into its checkpoints only when it was given one (`processing_class=`).

Relative paths are relative to the working directory (Snakemake's `--directory`), like results/.
Only json and pathlib here: rules/common.smk calls this in every Snakemake process.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from grokpath.errors import GrokpathError
from grokpath.sources.checkpoints import WEIGHT_PATTERNS

DEFAULT_PATTERN = "checkpoint-{step}"
# Files any of which makes a folder a tokenizer that AutoTokenizer loads.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
# config.json keys that must agree across the checkpoints of one run (those a config has).
ARCHITECTURE_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "moe_intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "n_shared_experts",
    "num_experts_per_tok",
    "first_k_dense_replace",
    "decoder_sparse_step",
    "mlp_only_layers",
)


@dataclass(frozen=True)
class LocalCheckpoints:
    """The checked checkpoints of a local run: step -> absolute folder, and the tokenizer to
    load them with (None: each folder's own; else an absolute folder or a hub name)."""

    folders: dict[int, str]
    tokenizer: str | None
    model_type: str

    @property
    def steps(self) -> list[int]:
        return sorted(self.folders)

    def provenance(self) -> list[dict]:
        """versions.json entries: {step, source: local, path, tokenizer}."""
        return [
            {"step": step, "source": "local", "path": self.folders[step], "tokenizer": self.tokenizer}
            for step in self.steps
        ]


def _key(name: str) -> str:
    return f"config key checkpoints.local.{name}"


def _absolute(path: str | os.PathLike, base: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else base / path


def _pattern_regex(pattern: str) -> re.Pattern:
    if pattern.count("{step}") != 1:
        raise GrokpathError(f"{_key('pattern')}: {pattern!r} must contain {{step}} exactly once")
    before, after = pattern.split("{step}")
    return re.compile(re.escape(before) + r"(\d+)" + re.escape(after))


def discover(path: Path, pattern: str = DEFAULT_PATTERN) -> dict[int, Path]:
    """step -> folder of every folder under `path` that matches `pattern` ({step}: digits)."""
    regex = _pattern_regex(pattern)
    if not path.is_dir():
        raise GrokpathError(f"{_key('path')}: {path} is not a folder")
    found: dict[int, Path] = {}
    for candidate in sorted(path.glob(pattern.replace("{step}", "*"))):
        match = regex.fullmatch(candidate.relative_to(path).as_posix())
        if match and candidate.is_dir():
            step = int(match.group(1))
            if step in found:
                raise GrokpathError(
                    f"{_key('pattern')}: step {step} matches both {found[step]} and {candidate}"
                )
            found[step] = candidate
    return found


def _explicit(folders: Mapping, path: Path | None, base: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for step, folder in folders.items():
        try:
            number = int(step)
        except (TypeError, ValueError):
            raise GrokpathError(f"{_key('folders')}: {step!r} is not a step number") from None
        out[number] = _absolute(folder, path or base)
    return out


def _read_config(folder: Path) -> dict:
    config = folder / "config.json"
    if not folder.is_dir():
        raise GrokpathError(f"local checkpoint {folder}: no such folder")
    try:
        return json.loads(config.read_text())
    except FileNotFoundError:
        raise GrokpathError(f"local checkpoint {folder}: no config.json") from None
    except (OSError, ValueError) as exc:
        raise GrokpathError(f"local checkpoint {folder}: config.json unreadable ({exc})") from None


def _check_weights(folder: Path) -> None:
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise GrokpathError(
            f"local checkpoint {folder}: no weights (expected *.safetensors or pytorch_model*.bin)"
        )


def architecture(config: Mapping) -> dict:
    return {key: config[key] for key in ARCHITECTURE_KEYS if key in config}


def _check_same_architecture(configs: dict[int, dict], folders: dict[int, Path]) -> str:
    first = min(configs)
    reference = architecture(configs[first])
    for step in sorted(configs):
        arch = architecture(configs[step])
        differ = [k for k in ARCHITECTURE_KEYS if arch.get(k) != reference.get(k)]
        if differ:
            shown = ", ".join(f"{k} {arch.get(k)!r} vs {reference.get(k)!r}" for k in differ)
            raise GrokpathError(
                f"local checkpoint {folders[step]}: architecture differs from {folders[first]} ({shown})"
            )
    model_type = reference.get("model_type")
    from grokpath.routing.routers import ADAPTERS, supported_families

    if model_type not in ADAPTERS:
        raise GrokpathError(
            f"local checkpoint {folders[first]}: model_type {model_type!r} has no MoE router "
            f"adapter; supported model types: {supported_families()}"
        )
    return str(model_type)


def has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_tokenizer_cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return any(
            isinstance(try_to_load_from_cache(name, filename), str)
            for filename in ("tokenizer_config.json", "tokenizer.json")
        )
    except ValueError:  # not a valid repo id
        return False


def resolve_tokenizer(tokenizer: str | None, folders: dict[int, Path], base: Path) -> str | None:
    """The tokenizer the jobs load: an absolute folder, a hub name, or None (each folder's own)."""
    if tokenizer in (None, ""):
        for step in sorted(folders):
            if not has_tokenizer(folders[step]):
                raise GrokpathError(
                    f"local checkpoint {folders[step]}: no tokenizer ({' / '.join(TOKENIZER_FILES[:2])}); "
                    f"a Trainer saves one only when given processing_class=tokenizer: name one "
                    f"in {_key('tokenizer')} (a folder or a hub name)"
                )
        return None
    folder = _absolute(tokenizer, base)
    if folder.is_dir():
        if not has_tokenizer(folder):
            raise GrokpathError(
                f"{_key('tokenizer')}: folder {folder} holds no tokenizer ({', '.join(TOKENIZER_FILES)})"
            )
        return str(folder.resolve())
    looks_like_path = str(tokenizer).startswith((".", "/", "~")) or str(tokenizer).count("/") > 1
    if looks_like_path:
        raise GrokpathError(f"{_key('tokenizer')}: folder {folder} does not exist")
    if _offline() and not _hub_tokenizer_cached(str(tokenizer)):
        raise GrokpathError(
            f"{_key('tokenizer')}: {tokenizer!r} is neither a folder nor in the local HF cache "
            f"(HF_HUB_OFFLINE is set); fetch it first: hf download {tokenizer} --include 'tokenizer*'"
        )
    return str(tokenizer)


def local_checkpoints(
    local: Mapping, steps: Sequence[int] | None = None, base: str | os.PathLike | None = None
) -> LocalCheckpoints:
    """Find and check the checkpoints `checkpoints.local` names (see the module docstring)."""
    base = Path(base) if base is not None else Path.cwd()
    path = _absolute(local["path"], base) if local.get("path") else None
    pattern = local.get("pattern") or DEFAULT_PATTERN
    if local.get("folders"):
        found = _explicit(local["folders"], path, base)
        where = f"{_key('folders')}"
    elif path is not None:
        found = discover(path, pattern)
        where = f"{path}/{pattern}"
    else:
        raise GrokpathError(
            "config key checkpoints.local: name the folder of checkpoints (path) or each "
            "step's folder (folders)"
        )
    if steps:
        missing = [s for s in steps if s not in found]
        if missing:
            on_disk = ", ".join(map(str, sorted(found))) or "none"
            raise GrokpathError(
                f"config key checkpoints.steps: step {missing[0]} has no folder in {where} "
                f"(steps found: {on_disk})"
            )
        found = {s: found[s] for s in steps}
    elif len(found) < 2:
        raise GrokpathError(
            f"config key checkpoints.local: {where} matches {len(found)} checkpoint folder(s); "
            "the metrics need at least 2"
        )
    configs = {}
    for step in sorted(found):
        configs[step] = _read_config(found[step])
        _check_weights(found[step])
    model_type = _check_same_architecture(configs, found)
    tokenizer = resolve_tokenizer(local.get("tokenizer"), found, base)
    folders = {step: str(found[step].resolve()) for step in sorted(found)}
    return LocalCheckpoints(folders=folders, tokenizer=tokenizer, model_type=model_type)
