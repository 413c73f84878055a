"""Rule `versions`: results/{run}/versions.json — software, git state and checkpoint sources.

Args: provenance (hub checkpoints' metadata JSONs; none for the lab), lab_steps (the lab's
checkpoint steps; empty for the hub), local_checkpoints (optional: {step, path, tokenizer} per
local checkpoint), snakemake_version, versions (output). The checkout is
GROKPATH_ROOT (set by the workflow), else the working directory.
"""

import json
import os
from pathlib import Path

from grokpath.entry import as_list, run
from grokpath.provenance import checkpoint_sources, versions_record
from grokpath.tableio import write_json


def main(args: dict) -> None:
    metas = [json.loads(Path(p).read_text()) for p in as_list(args.get("provenance"))]
    checkpoints = checkpoint_sources(
        metas, as_list(args.get("lab_steps")), as_list(args.get("local_checkpoints"))
    )
    write_json(versions_record(os.environ.get("GROKPATH_ROOT", os.getcwd()), args.get("snakemake_version"), checkpoints), args["versions"])


run(main, globals())
