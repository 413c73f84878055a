"""Run a workflow step from Snakemake's `script:` directive or from the command line.

A workflow script defines `main(args: dict)` and ends with `run(main, globals())`.
- Under Snakemake, `args` holds the named inputs, outputs and params, plus `log` and `threads`.
- On the command line, `python workflow_scripts/x.py key=value ...` fills the same dict; values
  are parsed as YAML, so `steps=[100,200]` and `threshold=0.7` arrive typed.
Errors of type GrokpathError become one line on stderr (and in the log) and exit status 1.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

import yaml

from grokpath.errors import GrokpathError

log = logging.getLogger("grokpath")


def _named(io) -> dict:
    return {k: v for k, v in io.items()}


def args_from_snakemake(smk) -> dict:
    args: dict = {}
    for part in (smk.input, smk.output, smk.params):
        args.update(_named(part))
    args["log"] = smk.log[0] if len(smk.log) else None
    args["threads"] = smk.threads
    args["wildcards"] = dict(smk.wildcards.items())
    return args


def args_from_argv(argv: list[str]) -> dict:
    args: dict = {"log": None, "threads": 1, "wildcards": {}}
    for token in argv:
        if "=" not in token:
            raise GrokpathError(f"argument {token!r}: expected key=value")
        key, value = token.split("=", 1)
        args[key] = yaml.safe_load(value) if value else ""
    return args


def as_list(value) -> list:
    """Snakemake hands one file as a string and several as a list; scripts want a list."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, (str, os.PathLike)) else list(value)


def corpus_dir(args: dict) -> str:
    """The corpus folder is where its manifest lies (rules pass files, never bare prefixes)."""
    return os.path.dirname(args["manifest"])


def setup_logging(logfile: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", handlers=handlers, force=True
    )


def run(main: Callable[[dict], None], namespace: dict) -> None:
    smk = namespace.get("snakemake")
    args = args_from_snakemake(smk) if smk is not None else args_from_argv(sys.argv[1:])
    setup_logging(args.get("log"))
    try:
        main(args)
    except GrokpathError as exc:
        log.error("error: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
