"""Optional packages a config needs, checked when the DAG is built instead of in job 40.

rules/common.smk calls `check_dependencies` in every Snakemake process that runs the jobs in
its own environment (the venv); with `--sdm conda` each rule's envs/*.yaml lists what it needs
(tests/test_envs.py checks that). The check finds the package without importing it
(importlib.util.find_spec), so a dry run pays nothing for it.
"""

from __future__ import annotations

import importlib.util
import sys

from grokpath.errors import GrokpathError


def module_available(name: str) -> bool:
    """True when `import name` would find the module (a module set to None in sys.modules, the
    documented way to block an import, counts as missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def needed_packages(config: dict) -> list[tuple[str, str, str]]:
    """(config key, import name, pip name) of each optional package the config needs."""
    needed = []
    embedding = str(config["evaluation"]["matching"]["embedding"])
    if embedding.startswith("sentence-transformers/"):
        needed.append(
            ("evaluation.matching.embedding", "sentence_transformers", "sentence-transformers")
        )
    if config.get("device_map"):
        needed.append(("device_map", "accelerate", "accelerate"))
    return needed


def check_dependencies(config: dict) -> None:
    """One line naming the config key and the package, when a package the config needs is not
    installed in this Python."""
    for key, module, package in needed_packages(config):
        if not module_available(module):
            value = config
            for part in key.split("."):
                value = value[part]
            raise GrokpathError(
                f"config key {key}: {value!r} needs the {package} package, which is not installed "
                f"in {sys.executable}; install it (pip install -c requirements.lock {package}), "
                "or run with --sdm conda (the rules' envs list it)"
            )
