"""Workflow hygiene: pinned envs that agree with the lock, every rule pinned/logged/benchmarked, lint, snakefmt.

requirements.lock (pip freeze of the venv) is the one source of truth: each exact pin in an env file
or in pyproject.toml must equal the lock's, and the venv must have installed that version. The
checks are static (conda channels may be out of reach here); the venv path runs everything.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from workflow_utils import ROOT, snakemake

ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# envs/*-cuda.yaml: the CUDA twins the rules use with `device: cuda` (rules/common.smk)
CPU_ENV_FILES = [path for path in ENV_FILES if not path.stem.endswith("-cuda")]
# rules name an env file, or one of these variables (rules/common.smk), which name two
ENV_VARIABLES = {
    "TORCH_ENV": ("../envs/torch.yaml", "../envs/torch-cuda.yaml"),
    "LMEVAL_ENV": ("../envs/lmeval.yaml", "../envs/lmeval-cuda.yaml"),
}
RULE_FILES = sorted((ROOT / "rules").glob("*.smk"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)$")
CONDA_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==?([0-9][A-Za-z0-9._]*)$")
PIP_OPTIONS = ("--extra-index-url ", "--index-url ", "-e ")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            match = PIN.match(line)
            assert match, f"requirements.lock: not an exact pin: {line!r}"
            pins[norm(match.group(1))] = match.group(2)
    return pins


def env_deps(path: Path) -> tuple[list[str], list[str]]:
    env = yaml.safe_load(path.read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert list(dep) == ["pip"], f"{path.name}: unexpected dependency section {list(dep)}"
            pip.extend(dep["pip"])
        else:
            conda.append(dep)
    return conda, pip


def installed(name: str) -> str | None:
    try:
        return metadata.version(name).split("+")[0]  # torch's local label: 2.13.0+cpu
    except metadata.PackageNotFoundError:
        return None


def test_there_are_env_files():
    assert ENV_FILES, "no envs/*.yaml"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_channels_are_explicit(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"], "conda-forge only, no defaults channel"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_every_package_exactly(path):
    conda, pip = env_deps(path)
    for dep in conda:
        assert CONDA_PIN.match(dep), f"{path.name}: conda dependency not pinned exactly: {dep!r}"
    for line in pip:
        if line.startswith(PIP_OPTIONS):
            continue
        assert PIN.match(line), f"{path.name}: pip dependency not pinned with ==: {line!r}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_equal_the_lock_and_the_venv(path):
    pins = lock()
    _, pip = env_deps(path)
    for line in pip:
        match = PIN.match(line)
        if not match:
            continue
        name, version = norm(match.group(1)), match.group(2)
        assert name in pins, f"{path.name}: {name} is not in requirements.lock"
        assert version == pins[name], f"{path.name}: {name}=={version}, requirements.lock has {pins[name]}"
        assert installed(name) == version, f"{path.name}: {name}=={version}, the venv has {installed(name)}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_is_the_projects(path):
    conda, _ = env_deps(path)
    python = [CONDA_PIN.match(d).group(2) for d in conda if CONDA_PIN.match(d).group(1) == "python"]
    assert len(python) == 1, f"{path.name}: pin python exactly once"
    major, minor = (int(x) for x in python[0].split(".")[:2])
    assert (major, minor) == sys.version_info[:2], f"{path.name}: python {python[0]}, the venv runs {sys.version}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.12" and (major, minor) == (3, 11)


def test_pyproject_pins_equal_the_lock():
    pins = lock()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    for dep in deps:
        match = PIN.match(dep)
        assert match, f"pyproject.toml: not an exact pin: {dep!r}"
        name, version = norm(match.group(1)), match.group(2)
        assert pins.get(name) == version, f"pyproject.toml: {name}=={version}, requirements.lock has {pins.get(name)}"


def test_every_env_installs_grokpath():
    for path in ENV_FILES:
        _, pip = env_deps(path)
        assert any(line.startswith("-e ") for line in pip), f"{path.name}: grokpath itself is not installed"


def test_grokpath_install_line_does_not_depend_on_where_the_env_file_lies():
    # Snakemake creates each env from a copy of its file under <workdir>/.snakemake/conda/.
    for path in ENV_FILES:
        _, pip = env_deps(path)
        installs = [line for line in pip if line.startswith("-e ")]
        assert installs == ["-e ${GROKPATH_ROOT}"], f"{path.name}: {installs}"


@pytest.mark.slow
def test_snakemake_creates_every_env_from_its_copy(tmp_path):
    """`--sdm conda --conda-create-envs-only` against tests/fakeconda.py: pip, run where conda runs
    it (next to Snakemake's copy of the env file), finds every pin installed and builds grokpath
    from this checkout. `-e ..` fails here: `..` is <workdir>/.snakemake."""
    from fakeconda import install

    bin_dir = tmp_path / "bin"
    install(bin_dir)
    workdir = tmp_path / "work"
    env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "GROKPATH_ROOT": None}
    result = snakemake(
        workdir, ROOT / "tests" / "configs" / "tiny.yaml", "--sdm", "conda", "--conda-create-envs-only",
        timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    logs = sorted((workdir / ".snakemake" / "conda").glob("*/pip.log"))
    assert len(logs) == len(CPU_ENV_FILES), "one env per envs/*.yaml but the CUDA twins (device cpu)"
    for log in logs:
        assert "Would install grokpath-" in log.read_text(), log.read_text()[-2000:]


# --- every rule is pinned, logged and benchmarked --------------------------------------------


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """rule name -> (file, the rule's body), parsed from the text of rules/*.smk."""
    blocks = {}
    for path in RULE_FILES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            header = re.match(r"^(\s*)(?:rule|checkpoint) (\w+):\s*$", line)
            if not header:
                continue
            indent, body = len(header.group(1)), []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following)
            blocks[header.group(2)] = (path, "\n".join(body))
    return blocks


def test_rules_are_found():
    names = set(rule_blocks())
    assert {"make_corpus", "pretrain_lab", "sample_loss", "memorization", "extract_pathways", "evaluate"} <= names


@pytest.mark.parametrize("rule", sorted(rule_blocks()))
def test_rule_has_conda_log_and_benchmark(rule):
    path, body = rule_blocks()[rule]
    directives = set(re.findall(r"^\s+(\w+):", body, flags=re.M))
    missing = {"conda", "log", "benchmark"} - directives
    assert not missing, f"{path.name}: rule {rule} has no {', '.join(sorted(missing))}:"
    for env in rule_env_files(rule):
        assert (path.parent / env).resolve().is_file(), f"{path.name}: rule {rule}: {env} not found"


def rule_env_files(rule: str) -> tuple[str, ...]:
    """The env file(s) a rule's conda: names, relative to rules/: a string, or TORCH_ENV /
    LMEVAL_ENV (the CPU env and its CUDA twin)."""
    path, body = rule_blocks()[rule]
    env = re.search(r"^\s+conda:\s*\n\s+(?:\"([^\"]+)\"|(\w+))\s*$", body, flags=re.M)
    assert env, f"{path.name}: rule {rule}: conda: must name an env file or {', '.join(ENV_VARIABLES)}"
    if env.group(1):
        return (env.group(1),)
    assert env.group(2) in ENV_VARIABLES, f"{path.name}: rule {rule}: conda: {env.group(2)} is unknown"
    return ENV_VARIABLES[env.group(2)]


def test_cuda_env_variables_are_the_ones_the_rules_use():
    common = (ROOT / "rules" / "common.smk").read_text()
    for name, (cpu, cuda) in ENV_VARIABLES.items():
        assert f'{name} = "{cuda}" if CUDA_ENVS else "{cpu}"' in common, name


@pytest.mark.parametrize("path", [p for p in ENV_FILES if p.stem.endswith("-cuda")], ids=lambda p: p.name)
def test_cuda_twin_equals_its_cpu_env_but_for_the_wheel_index(path):
    """envs/X-cuda.yaml: envs/X.yaml's pins with torch from PyPI (a CUDA build), not the CPU index."""
    cpu = path.with_name(path.name.replace("-cuda", ""))
    cpu_conda, cpu_pip = env_deps(cpu)
    conda, pip = env_deps(path)
    assert conda == cpu_conda
    assert [line for line in cpu_pip if "download.pytorch.org/whl/cpu" not in line] == pip
    assert any("download.pytorch.org/whl/cpu" in line for line in cpu_pip), f"{cpu.name}: CPU wheel index"
    assert not any(line.startswith(("--extra-index-url", "--index-url")) for line in pip)


def test_match_groups_env_lists_sentence_transformers():
    """evaluation.matching.embedding: sentence-transformers/all-MiniLM-L6-v2 (the paper) runs in
    match_groups' env: it must install sentence-transformers, pinned as in the lock."""
    files = rule_env_files("match_groups")
    for env in files:
        _, pip = env_deps((ROOT / "rules" / env).resolve())
        pins = dict(PIN.match(line).groups() for line in pip if PIN.match(line))
        assert pins.get("sentence-transformers") == lock()["sentence-transformers"], env


# --- lint and format (the default config's lint is in tests/test_workflow.py) ------------------


def test_snakefmt_check_is_clean():
    files = ["Snakefile", "rules/"]
    command = [sys.executable, "-m", "snakefmt", "--check", "--verbose", *files]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    would_change = re.findall(r'In file "([^"]+)":\s+Formatted content is different', result.stderr)
    assert result.returncode == 0, f"run `snakefmt {' '.join(files)}`; it would change {would_change or result.stderr[-1500:]}"


def test_lint_is_clean_for_the_paper_config(tmp_path):
    """The hub branches (sample_hub_corpus, download_checkpoint, instruction_data) only exist there."""
    result = snakemake(tmp_path, ROOT / "config" / "olmoe.yaml", "--lint", timeout=180)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Congratulations" in result.stdout + result.stderr
