"""A stand-in `conda` for `snakemake --sdm conda --conda-create-envs-only` where no conda exists.

It answers the three questions Snakemake asks before creating an env (`--version`, `info --json`,
`config --get channel_priority --json`), cleans nothing (`clean`) and, for `env create --file F --prefix P`, does what conda
does with an env file's pip section: writes it to a requirements file next to F (conda's pip
installer works in F's folder) and runs pip on it. The one difference: pip runs from the venv
that runs the tests, as a dry run without network (`--dry-run --no-index --no-deps
--no-build-isolation`), so the pins are checked against the installed packages and grokpath's
own install line has to resolve to a buildable checkout, but nothing is installed. The pip
output goes to P/pip.log; P is created only when pip succeeds, as conda leaves no env behind on
failure. Conda packages (python, pip) are not checked here: tests/test_envs.py pins them.

Usage: a `conda` on PATH that runs `python tests/fakeconda.py "$@"` (see `install`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

VERSION = "24.11.3"  # above Snakemake's minimum conda version


def install(bin_dir: Path) -> Path:
    """Write an executable `conda` into bin_dir that runs this module with the current python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    conda = bin_dir / "conda"
    conda.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    conda.chmod(0o755)
    return conda


def option(args: list[str], name: str) -> str:
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise SystemExit(f"fake conda: {name} missing in {args}")


def pip_lines(env_file: Path) -> list[str]:
    env = yaml.safe_load(env_file.read_text())
    sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    return [line for section in sections for line in section]


def env_create(args: list[str]) -> int:
    env_file, prefix = Path(option(args, "--file")), Path(option(args, "--prefix"))
    with tempfile.NamedTemporaryFile(
        "w", prefix="condaenv.", suffix=".requirements.txt", dir=env_file.parent, delete=False
    ) as requirements:
        requirements.write("\n".join(pip_lines(env_file)) + "\n")
    try:
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps",
            "--no-build-isolation", "-r", requirements.name,
        ]  # fmt: skip
        result = subprocess.run(command, cwd=env_file.parent, capture_output=True, text=True)
    finally:
        Path(requirements.name).unlink()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode == 0:
        prefix.mkdir(parents=True)
        (prefix / "pip.log").write_text(result.stdout)
    return result.returncode


def main(args: list[str]) -> int:
    if args == ["--version"]:
        print(f"conda {VERSION}")
    elif args[:2] == ["info", "--json"]:
        print(json.dumps({"conda_prefix": str(Path(sys.prefix)), "platform": "linux-64", "conda_version": VERSION}))
    elif args[:3] == ["config", "--get", "channel_priority"]:
        print(json.dumps({"get": {"channel_priority": "strict"}, "rc_path": None, "success": True, "warnings": []}))
    elif args[:1] == ["clean"]:
        print("fake conda: no package cache to clean")
    elif args[:2] == ["env", "create"]:
        return env_create(args[2:])
    else:
        print(f"fake conda: unsupported command {args}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
