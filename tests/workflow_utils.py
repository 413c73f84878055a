"""Running the real Snakefile on a test config in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def snakemake_command(workdir: Path, configfile: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(configfile), "--cores", "2", *args,
    ]  # fmt: skip


def snakemake_env(env: dict | None = None) -> dict:
    """Offline, the venv first on PATH; `env` overrides (e.g. a loopback hub endpoint), None unsets."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    merged = {**os.environ, **OFFLINE, "PATH": path, **(env or {})}
    return {key: value for key, value in merged.items() if value is not None}


def snakemake(workdir: Path, configfile: Path, *args: str, env: dict | None = None, timeout: int = 900):
    command = snakemake_command(workdir, configfile, *args)
    return subprocess.run(command, capture_output=True, text=True, env=snakemake_env(env), timeout=timeout)


def script(name: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE}
    command = [sys.executable, str(ROOT / "workflow_scripts" / f"{name}.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
