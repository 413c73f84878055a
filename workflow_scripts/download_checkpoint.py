"""Rule `download_checkpoint`: fetch one OLMoE intermediate checkpoint from the Hub.

Args:
- repo_id: model repo, e.g. allenai/OLMoE-1B-7B-0924
- step: training step of the checkpoint
- revision: branch or tag; when empty, the OLMoE branch name of `step` (`step{S}-tokens{T}B`)
- checkpoint: output directory, `checkpoints/step{S}`
- allow_patterns: optional list of file globs to fetch (must keep config.json and the weights)
- provenance: optional JSON copy of the checkpoint's metadata (repo, revision, commit) that outlives
  the folder (temp() at paper scale), for versions.json
The Hub endpoint is huggingface_hub's HF_ENDPOINT setting.
"""

import json
from pathlib import Path

from grokpath.entry import run
from grokpath.errors import GrokpathError
from grokpath.sources.checkpoints import CHECKPOINT_META
from grokpath.sources.hub import download_checkpoint, revision_name
from grokpath.tableio import write_json


def required(args: dict, key: str):
    if args.get(key) in (None, ""):
        raise GrokpathError(f"missing argument {key!r} (expected {key}=...)")
    return args[key]


def main(args: dict) -> None:
    step = required(args, "step")
    dest = download_checkpoint(
        repo_id=required(args, "repo_id"),
        revision=str(args.get("revision") or revision_name(step)),
        dest=required(args, "checkpoint"),
        step=step,
        allow_patterns=args.get("allow_patterns") or None,
    )
    if args.get("provenance"):
        write_json(json.loads((Path(dest) / CHECKPOINT_META).read_text()), args["provenance"])


run(main, globals())
