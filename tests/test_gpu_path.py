"""The GPU path, checked on the CPU: device_map reaches from_pretrained, bf16 on CUDA for
instruction tuning and contamination, lm-eval's model arguments, and optional packages checked
when the DAG is built (a missing sentence-transformers stops `snakemake -n` in one line).

No GPU here: accelerate's `device_map="auto"` on a CPU-only machine places the whole model on the
CPU, which runs the same code path (hf_device_map set, batches to the first device) as on GPUs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from grokpath.dependencies import check_dependencies, module_available, needed_packages
from grokpath.errors import GrokpathError
from grokpath.sources import checkpoints as ck
from tiny_runs import TINY
from workflow_utils import script, snakemake

MODEL = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 2, "num_heads": 2, "num_experts": 4,
         "top_k": 2, "max_position_embeddings": 32, "router_aux_loss_coef": 0.01}  # fmt: skip
DOMAINS = {"math": {"generator": "modular_sum", "params": {"modulus": 5}, "train_fraction": 0.5, "n_valid": 3, "n_test": 3}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A lab corpus and one saved tiny OLMoE checkpoint (step 7) with its tokenizer."""
    from grokpath.lab.corpus import write_corpus
    from grokpath.lab.model import init_lab_model
    from grokpath.lab.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("gpu_path")
    manifest = write_corpus(DOMAINS, 0, root / "corpus")
    tokenizer = build_tokenizer(manifest["vocabulary"])
    model = init_lab_model(MODEL, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed=0)
    checkpoint = root / "step7"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    (checkpoint / ck.CHECKPOINT_META).write_text(json.dumps({"step": 7, "source": "lab"}))
    return root, checkpoint


@pytest.fixture
def from_pretrained_calls(monkeypatch):
    """The keyword arguments of every AutoModelForCausalLM.from_pretrained call (which still loads)."""
    from transformers import AutoModelForCausalLM

    calls = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def recording(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(recording))
    return calls


def test_device_map_auto_reaches_from_pretrained_in_the_loss_and_changes_nothing(tiny, from_pretrained_calls):
    from grokpath.loss.sample_loss import sample_loss_table

    root, checkpoint = tiny
    kwargs = dict(checkpoint_dir=str(checkpoint), corpus_dir=str(root / "corpus"), domains=["math"], step=7,
                  batch_size=4, max_length=16, append_eos=True, span="all", device="cpu")  # fmt: skip
    plain = sample_loss_table(**kwargs)
    mapped = sample_loss_table(**kwargs, device_map="auto")
    assert [call.get("device_map") for call in from_pretrained_calls] == [None, "auto"]
    pd.testing.assert_frame_equal(plain, mapped)


def test_a_device_mapped_model_is_left_where_accelerate_put_it(tiny, tmp_path):
    """On one device transformers places the model without hooks; across several, accelerate
    dispatches it and sets hf_device_map: extraction must then never move it."""
    from grokpath.routing.extract import extract_pathways

    model = ck.load_model(tiny[1], "cpu", device_map="auto")
    assert ck.input_device(model, "cuda") == torch.device("cpu")  # where the model is, not the config
    with pytest.raises(GrokpathError, match="device_map 'balanced': expected null or 'auto'"):
        ck.load_model(tiny[1], "cpu", device_map="balanced")
    model.hf_device_map = {"": "cpu"}  # as dispatch_model leaves it

    def no_move(*args, **kwargs):
        raise AssertionError("a dispatched model was moved")

    model.to = no_move
    tokenizer = ck.load_tokenizer(tiny[1])
    samples = [{"sample_id": "a", "domain": "math", "text": "1 + 2 = 3"}]
    stats = extract_pathways(model, tokenizer, samples, tmp_path / "p.parquet", step=7, device="cuda", progress=False)
    assert stats.n_samples == 1


def test_extraction_script_passes_device_map_and_writes_the_same_table(tiny, tmp_path):
    root, checkpoint = tiny
    tables = {}
    for name, extra in (("plain", []), ("mapped", ["device_map=auto"])):
        result = script(
            "extract_pathways", f"checkpoints={checkpoint}", f"manifest={root / 'corpus' / 'manifest.json'}",
            "domains=[math]", "batch_size=4", "max_length=16", "device=cpu", f"pathways={tmp_path / name}",
            *extra,
        )  # fmt: skip
        (tables[name],) = (tmp_path / name).glob("step*[0-9].parquet")
        assert result.returncode == 0, result.stderr[-2000:]
    assert "device_map auto: the model lies on cpu" in result.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tables["plain"]), pd.read_parquet(tables["mapped"]))


def test_lm_eval_gets_the_tokenizer_and_parallelize_for_device_map_auto():
    from grokpath.evaluation.harness import _model_args

    assert _model_args("ck", None, 32, "float32") == {"pretrained": "ck", "dtype": "float32", "max_length": 32}
    args = _model_args("ck", "ad", None, "bfloat16", tokenizer="/tok", device_map="auto")
    assert args == {"pretrained": "ck", "dtype": "bfloat16", "peft": "ad", "tokenizer": "/tok", "parallelize": True}


def test_auto_dtype_is_bf16_on_cuda_and_fp32_on_cpu():
    assert ck.torch_dtype("auto", "cuda") is torch.bfloat16 and ck.torch_dtype(None, torch.device("cuda:1")) is torch.bfloat16
    assert ck.torch_dtype("auto", "cpu") is torch.float32 and ck.torch_dtype("float16", "cuda") is torch.float16
    with pytest.raises(GrokpathError, match="dtype 'fp8'"):
        ck.torch_dtype("fp8", "cpu")


class Loaded(Exception):
    """Stops a job right after it chose how to load its model."""


@pytest.fixture
def on_cuda(monkeypatch):
    """What instruction tuning and contamination ask load_model for when their device is CUDA."""
    import grokpath.tokens

    asked = {}

    def load_model(checkpoint_dir, device, dtype=None, device_map=None):
        asked.update(device=device, dtype=dtype, device_map=device_map)
        raise Loaded

    monkeypatch.setattr(grokpath.tokens, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(ck, "load_model", load_model)
    return asked


def test_instruction_tuning_loads_bf16_on_cuda(tiny, on_cuda, tmp_path):
    from grokpath.evaluation.instruction_tuning import instruction_tune

    rows = [{"prompt": "1 + 2 =", "response": "3"}] * 4
    with pytest.raises(Loaded):
        instruction_tune(str(tiny[1]), rows, tmp_path / "adapter", max_length=16, device="cuda")
    assert on_cuda["dtype"] is torch.bfloat16 and on_cuda["device_map"] is None


def test_contamination_loads_bf16_on_cuda_unless_the_config_names_a_dtype(tiny, on_cuda):
    from grokpath.evaluation.contamination import contamination_table

    items = {"math": [{"doc_id": 0, "prompt": "1 + 2 =", "answer": "3"}]}
    with pytest.raises(Loaded):
        contamination_table(str(tiny[1]), items, {"math": "lab_math"}, device="cuda", device_map="auto")
    assert on_cuda["dtype"] is torch.bfloat16 and on_cuda["device_map"] == "auto"
    with pytest.raises(Loaded):
        contamination_table(str(tiny[1]), items, {"math": "lab_math"}, device="cuda", dtype="float32")
    assert on_cuda["dtype"] is torch.float32


# ---------------------------------------------------------------- optional packages


def tiny_config(**changes) -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["matching"]["embedding"] = changes.pop("embedding", "tfidf")
    return {**config, **changes}


def test_packages_a_config_needs():
    assert needed_packages(tiny_config()) == []
    minilm = tiny_config(embedding="sentence-transformers/all-MiniLM-L6-v2", device_map="auto")
    assert [module for _, module, _ in needed_packages(minilm)] == ["sentence_transformers", "accelerate"]
    assert module_available("sentence_transformers")  # pinned in requirements.lock, so in the venv


def test_a_missing_package_is_one_line_naming_the_key(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # how Python blocks an import
    assert not module_available("sentence_transformers")
    with pytest.raises(GrokpathError) as caught:
        check_dependencies(tiny_config(embedding="sentence-transformers/all-MiniLM-L6-v2"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "config key evaluation.matching.embedding: 'sentence-transformers/all-MiniLM-L6-v2' needs the "
        "sentence-transformers package, which is not installed"
    )


def test_dry_run_stops_when_sentence_transformers_is_missing(tmp_path):
    """`snakemake -n` in a Python where `import sentence_transformers` fails (a sitecustomize on
    PYTHONPATH blocks it, as `sys.modules[name] = None` does) stops before any job, in one line;
    the same dry run with the package plans the match_groups job."""
    configfile = tmp_path / "minilm.yaml"
    configfile.write_text(yaml.safe_dump(tiny_config(embedding="sentence-transformers/all-MiniLM-L6-v2")))
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['sentence_transformers'] = None\n")
    result = snakemake(tmp_path / "work", configfile, "-n", env={"PYTHONPATH": str(blocker)}, timeout=300)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "sentence-transformers package" in line]
    assert len(lines) == 1 and lines[0].startswith("config key evaluation.matching.embedding:"), result.stderr[-2000:]
    assert "rule match_groups" not in result.stdout and not (tmp_path / "work" / "results").exists()
    result = snakemake(tmp_path / "work", configfile, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rule match_groups:" in result.stdout
