"""LoRA instruction tuning on a tiny OLMoE: trains, saves an adapter, and lm-eval loads it."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from test_evaluation import LAB_TASKS, make_tiny_run  # noqa: E402

from grokpath.errors import GrokpathError  # noqa: E402
from grokpath.evaluation import harness as evaluation  # noqa: E402
from grokpath.evaluation import instruction_tuning as it  # noqa: E402
from grokpath.tableio import read_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, make_tiny_run(run_dir)


def test_lab_template_matches_the_instruct_task_yamls():
    from lm_eval.tasks._yaml_loader import load_yaml

    for domain in ["math", "code", "commonsense", "domain_specific"]:
        cfg = load_yaml(LAB_TASKS / f"lab_{domain}_instruct.yaml", resolve_func=False)
        assert cfg["doc_to_text"].replace("{{prompt}}", "{prompt}") == it.LAB_INSTRUCTION_TEMPLATE


def test_lab_instruction_rows_wrap_prompt_and_answer():
    rows = it.lab_instruction_rows([{"sample_id": "m-1", "prompt": "1 + 2 =", "answer": "3"}])
    assert rows == [{"prompt": "question: 1 + 2 = answer:", "response": "3"}]
    with pytest.raises(GrokpathError, match="m-2"):
        it.lab_instruction_rows([{"sample_id": "m-2", "text": "no prompt here"}])


def test_alpaca_rows_read_both_hub_layouts():
    rows = it.alpaca_rows(
        [
            {"query": "What is 2+2?", "response": "2+2=4. The answer is: 4"},
            {"instruction": "Add.", "input": "2 and 2", "output": "4"},
            {"instruction": "Say hi.", "input": "", "output": "hi"},
        ]
    )
    assert rows[0]["prompt"].endswith("### Instruction:\nWhat is 2+2?\n\n### Response:\n")
    assert "### Instruction:\nAdd.\n\n2 and 2\n\n### Response:" in rows[1]["prompt"]
    assert "### Instruction:\nSay hi.\n\n### Response:" in rows[2]["prompt"]
    assert [r["response"] for r in rows] == ["2+2=4. The answer is: 4", "4", "hi"]


def test_subsample_by_count_and_fraction():
    rows = [{"prompt": str(i), "response": "x"} for i in range(10)]
    assert len(it.subsample_rows(rows, 3, seed=1)) == 3
    assert len(it.subsample_rows(rows, 0.5, seed=1)) == 5
    assert it.subsample_rows(rows, 3, seed=1) == it.subsample_rows(rows, 3, seed=1)
    assert it.subsample_rows(rows, None, seed=1) == rows


def test_tokenize_rows_masks_the_prompt(tiny_run):
    from transformers import AutoTokenizer

    _, checkpoints = tiny_run
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[10])
    [(ids, labels)] = it.tokenize_rows(
        tokenizer, [{"prompt": "question: 1 + 2 = answer:", "response": "3"}], max_length=16
    )
    assert len(ids) == 8 and labels[:6] == [-100] * 6
    assert labels[6:] == [tokenizer.convert_tokens_to_ids("3"), tokenizer.eos_token_id]
    # A response cut away by max_length leaves nothing to learn: the row is dropped.
    assert (
        it.tokenize_rows(tokenizer, [{"prompt": "question: 1 + 2 = answer:", "response": "3"}], 6)
        == []
    )


def test_lora_trains_saves_and_loads_in_lm_eval(tiny_run, tmp_path):
    run_dir, checkpoints = tiny_run
    # Tune on the math test items themselves so that the adapter has a visible effect.
    rows = it.lab_instruction_rows(read_jsonl(run_dir / "corpus" / "math" / "test.jsonl"))
    base_before = {k: v.clone() for k, v in _state(checkpoints[10]).items()}
    summary = it.instruction_tune(
        checkpoints[10],
        rows,
        tmp_path / "adapter",
        rank=4,
        alpha=8,
        dropout=0.0,
        lr=5e-2,
        batch_size=3,
        max_length=32,
        epochs=40,
        seed=0,
    )
    print(f"LoRA: {summary['n_steps']} steps in {summary['seconds']} s")
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / it.ADAPTER_META).read_text())["rank"] == 4
    # The untrained model's small output weights cap its confidence (loss stays near 3), but
    # LoRA on q/k/v alone moves the greedy answer, which is what the evaluation needs.
    assert summary["final_loss"] < summary["first_loss"] - 0.5
    assert all(torch.equal(v, base_before[k]) for k, v in _state(checkpoints[10]).items())

    task_dir = evaluation.write_run_tasks(LAB_TASKS, run_dir, tmp_path / "tasks")
    items, aggregate = evaluation.evaluate_checkpoints(
        [(10, str(checkpoints[10]), None), (10, str(checkpoints[10]), str(adapter))],
        {"math": "lab_math_instruct"},
        task_dir,
        max_length=32,
    )
    without, with_adapter = aggregate.value.tolist()
    assert with_adapter == 1.0 and without < 1.0
    assert items.iloc[3:].prediction.tolist() == ["57", "7", "30"]


def test_unknown_target_module_is_named(tiny_run, tmp_path):
    _, checkpoints = tiny_run
    rows = [{"prompt": "question: 1 + 2 = answer:", "response": "3"}]
    with pytest.raises(GrokpathError, match="gate_proj"):
        it.instruction_tune(checkpoints[10], rows, tmp_path / "a", target_modules=["gate_proj"])
    assert not (tmp_path / "a").exists()


def _state(checkpoint_dir):
    from safetensors.torch import load_file

    return load_file(str(checkpoint_dir / "model.safetensors"))
