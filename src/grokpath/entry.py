"""Run a workflow step from Snakemake's `script:` directive or from the command line.

A workflow script defines `main(args: dict)` and ends with `run(main, globals())`.
- Under Snakemake, `args` holds the named inputs, outputs and params, plus `log` and `threads`.
- On the command line, `python workflow_scripts/x.py key=value ...` fills the same dict; values
  are parsed as YAML, so `steps=[100,200]` and `threshold=0.7` arrive typed.
Errors of type GrokpathError become one line on stderr and exit status 1. With a `log` file,
everything the job writes to stdout and stderr (logging records, progress bars, warnings, the
traceback of an unexpected exception) goes to the terminal and to the log, so a job that fails on
a cluster node leaves its reason at the end of its log; the last line is always `error: ...`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from typing import Callable, Iterator, TextIO

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


class Tee:
    """A text stream that writes to the terminal's stream and to the job's log file."""

    def __init__(self, stream: TextIO, logfile: TextIO):
        self.stream, self.logfile = stream, logfile

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.logfile.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.logfile.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def output_to_log(logfile: str | None) -> Iterator[None]:
    """While the job runs, stdout and stderr also go to `logfile` (nothing happens without one)."""
    if not logfile:
        yield
        return
    with open(logfile, "w", buffering=1) as handle:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(sys.stdout, handle), Tee(sys.stderr, handle)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        handlers=[logging.StreamHandler(sys.stderr)],
        force=True,
    )


def fail(message: str) -> None:
    """The one-line error, printed once (the log gets it through stderr), then exit status 1."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(main: Callable[[dict], None], namespace: dict) -> None:
    smk = namespace.get("snakemake")
    try:
        args = args_from_snakemake(smk) if smk is not None else args_from_argv(sys.argv[1:])
    except GrokpathError as exc:
        fail(str(exc))
    with output_to_log(args.get("log")):
        setup_logging()
        try:
            main(args)
        except GrokpathError as exc:
            fail(str(exc))
        except Exception as exc:  # e.g. CUDA out of memory: keep the traceback, end with one line
            traceback.print_exc(file=sys.stderr)
            fail(f"{type(exc).__name__}: {exc}".splitlines()[0])
