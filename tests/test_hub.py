"""grokpath.sources.hub against the loopback fake hub (tests/fakehub.py); nothing reaches the real Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakehub import FakeHub, loopback_client

from grokpath.errors import GrokpathError
from grokpath.sources.hub import (
    CHECKPOINT_META,
    download_checkpoint,
    revision_name,
)

REPO = "allenai/OLMoE-1B-7B-0924"
ROOT = Path(__file__).resolve().parents[1]

PAPER_REVISIONS = {
    5000: "step5000-tokens20B",
    125000: "step125000-tokens524B",
    245000: "step245000-tokens1027B",
    370000: "step370000-tokens1551B",
    490000: "step490000-tokens2055B",
    615000: "step615000-tokens2579B",
    735000: "step735000-tokens3082B",
    855000: "step855000-tokens3586B",
    980000: "step980000-tokens4110B",
    1100000: "step1100000-tokens4613B",
}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with FakeHub() as fake, loopback_client(monkeypatch, fake.url, tmp_path / "hf_home"):
        yield fake


@pytest.fixture(scope="module")
def tiny_olmoe_dirs(tmp_path_factory):
    """Two tiny random OLMoE checkpoints (different seeds), saved as the Hub would hold them."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.OlmoeConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path_factory.mktemp(f"olmoe_seed{seed}")
        transformers.OlmoeForCausalLM(config).save_pretrained(folder)
        dirs.append(folder)
    return dirs


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def fake_checkpoint(root: Path, weights_size: int = 4096) -> Path:
    """A folder that passes the checkpoint check without being a real model."""
    return make_folder(
        root,
        {"config.json": b'{"model_type": "olmoe"}', "model.safetensors": os.urandom(weights_size)},
    )


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


@pytest.mark.parametrize("step,expected", sorted(PAPER_REVISIONS.items()))
def test_revision_name_for_paper_steps(step, expected):
    assert revision_name(step) == expected


@pytest.mark.parametrize("step", [-1, 1.5, "5000", True])
def test_revision_name_rejects_non_steps(step):
    with pytest.raises(GrokpathError, match="expected a non-negative integer"):
        revision_name(step)


def test_download_branch_into_checkpoint_layout(hub, tiny_olmoe_dirs, tmp_path):
    import torch
    from transformers import OlmoeForCausalLM

    first, second = tiny_olmoe_dirs
    hub.add_repo(
        REPO,
        branches={"main": second, revision_name(5000): first, revision_name(125000): second},
        tags={"v0.1": "main"},
    )
    dest = tmp_path / "results" / "checkpoints" / "step5000"

    out = download_checkpoint(REPO, revision_name(5000), dest, step=5000, endpoint=hub.url)

    assert out == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["config.json", "generation_config.json", "model.safetensors", CHECKPOINT_META]
    )
    meta = json.loads((dest / CHECKPOINT_META).read_text())
    commit = hub.repos[REPO].branches[revision_name(5000)]
    assert meta == {
        "step": 5000,
        "source": "hub",
        "revision": "step5000-tokens20B",
        "repo_id": REPO,
        "commit": commit,
    }
    assert (dest / "model.safetensors").read_bytes() == (first / "model.safetensors").read_bytes()
    assert leftovers(dest.parent) == ["step5000"]

    loaded = OlmoeForCausalLM.from_pretrained(dest)
    reference = OlmoeForCausalLM.from_pretrained(first)
    for (name, got), (_, want) in zip(loaded.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(got, want), name


def test_download_a_tag(hub, tmp_path):
    hub.add_repo(REPO, branches={"main": fake_checkpoint(tmp_path / "main")}, tags={"v1.0": "main"})
    dest = download_checkpoint(REPO, "v1.0", tmp_path / "ckpt", step=0, endpoint=hub.url)
    assert json.loads((dest / CHECKPOINT_META).read_text())["revision"] == "v1.0"


def test_unknown_revision_fails_at_once_with_closest_names(hub, tmp_path):
    branches = {
        revision_name(step): fake_checkpoint(tmp_path / f"b{step}")
        for step in (5000, 125000, 245000)
    }
    hub.add_repo(REPO, branches={"main": fake_checkpoint(tmp_path / "main"), **branches})
    dest = tmp_path / "checkpoints" / "step5000"

    with pytest.raises(GrokpathError) as exc:
        download_checkpoint(REPO, "step5000-tokens21B", dest, step=5000, endpoint=hub.url)

    message = assert_one_line(exc)
    assert "'step5000-tokens21B'" in message and REPO in message
    assert "closest: step5000-tokens20B" in message
    assert hub.downloads() == []
    assert not dest.exists()


def test_unknown_revision_without_close_names(hub, tmp_path):
    hub.add_repo(REPO, branches={"main": fake_checkpoint(tmp_path / "main")})
    with pytest.raises(GrokpathError) as exc:
        download_checkpoint(REPO, "zzzz", tmp_path / "ckpt", step=1, endpoint=hub.url)
    assert "no close match among 1 branches/tags" in assert_one_line(exc)


def test_unknown_repo_is_one_line(hub, tmp_path):
    with pytest.raises(GrokpathError) as exc:
        download_checkpoint("allenai/nope", "main", tmp_path / "ckpt", step=1, endpoint=hub.url)
    assert "allenai/nope not found" in assert_one_line(exc)


def test_interrupted_download_leaves_no_dest(hub, tmp_path):
    hub.add_repo(
        REPO, branches={"main": fake_checkpoint(tmp_path / "main", weights_size=256 * 1024)}
    )
    hub.cut_download(REPO, "model.safetensors")
    dest = tmp_path / "checkpoints" / "step1"

    with pytest.raises(GrokpathError) as exc:
        download_checkpoint(REPO, "main", dest, step=1, endpoint=hub.url)

    message = assert_one_line(exc)
    assert message.startswith(f"download of {REPO}@") and str(dest) in message
    assert any(path.endswith("/model.safetensors") for path in hub.downloads())
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_interrupted_download_keeps_an_earlier_checkpoint(hub, tmp_path):
    hub.add_repo(
        REPO, branches={"main": fake_checkpoint(tmp_path / "main", weights_size=64 * 1024)}
    )
    dest = tmp_path / "checkpoints" / "step1"
    download_checkpoint(REPO, "main", dest, step=1, endpoint=hub.url)
    before = (dest / "model.safetensors").read_bytes()

    hub.cut_download(REPO, "model.safetensors")
    with pytest.raises(GrokpathError):
        download_checkpoint(REPO, "main", dest, step=1, endpoint=hub.url)

    assert (dest / "model.safetensors").read_bytes() == before
    assert leftovers(dest.parent) == ["step1"]


def test_revision_without_weights_names_the_dir(hub, tmp_path):
    no_weights = make_folder(tmp_path / "cfg_only", {"config.json": b"{}", "README.md": b"hi"})
    hub.add_repo(
        REPO, branches={"main": fake_checkpoint(tmp_path / "main"), "cfg-only": no_weights}
    )
    dest = tmp_path / "checkpoints" / "step7"

    with pytest.raises(GrokpathError) as exc:
        download_checkpoint(REPO, "cfg-only", dest, step=7, endpoint=hub.url)

    assert assert_one_line(exc) == (
        f"checkpoint dir {dest} has no weights (expected *.safetensors or pytorch_model*.bin)"
    )
    assert not dest.exists()


def test_allow_patterns_that_drop_the_weights_fail(hub, tmp_path):
    hub.add_repo(REPO, branches={"main": fake_checkpoint(tmp_path / "main")})
    dest = tmp_path / "ckpt"
    with pytest.raises(GrokpathError, match="has no weights"):
        download_checkpoint(REPO, "main", dest, step=1, allow_patterns=["*.json"], endpoint=hub.url)
    assert [p for p in hub.downloads() if p.endswith(".safetensors")] == []


def run_script(*argv: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "workflow_scripts" / "download_checkpoint.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workflow_script_uses_hf_endpoint_and_derives_the_branch(hub, tmp_path):
    hub.add_repo(REPO, branches={revision_name(5000): fake_checkpoint(tmp_path / "b")})
    dest = tmp_path / "checkpoints" / "step5000"

    provenance = tmp_path / "checkpoints" / "step5000.provenance.json"

    done = run_script(f"repo_id={REPO}", "step=5000", f"checkpoint={dest}", f"provenance={provenance}")

    assert done.returncode == 0, done.stderr
    meta = json.loads((dest / CHECKPOINT_META).read_text())
    assert (meta["step"], meta["revision"]) == (5000, "step5000-tokens20B")
    assert json.loads(provenance.read_text()) == meta, "the provenance copy outlives a temp() folder"
    assert len(meta["commit"]) == 40


def test_workflow_script_reports_a_bad_revision_in_one_line(hub, tmp_path):
    hub.add_repo(REPO, branches={revision_name(5000): fake_checkpoint(tmp_path / "b")})

    done = run_script(
        f"repo_id={REPO}", "step=5000", "revision=step5000-tokens2B", f"checkpoint={tmp_path / 'c'}"
    )

    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert error_lines == [
        f"error: revision 'step5000-tokens2B' not found in {REPO}; closest: step5000-tokens20B"
    ]
