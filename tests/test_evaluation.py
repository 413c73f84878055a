"""Lab task YAMLs through lm-eval on a tiny OLMoE checkpoint, offline.

The helpers that build a tiny run (corpus, word-level tokenizer, checkpoints) are plain
functions so that other test modules can import them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

from grokpath.errors import GrokpathError  # noqa: E402
from grokpath.evaluation import harness as evaluation  # noqa: E402
from grokpath.evaluation.instruction_tuning import LAB_TEMPLATE_WORDS  # noqa: E402
from grokpath.lab.model import init_lab_model  # noqa: E402
from grokpath.lab.tokenizer import build_tokenizer  # noqa: E402
from grokpath.tableio import write_jsonl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAB_TASKS = REPO / "config" / "lm_eval_tasks" / "lab"
PAPER_TASKS = REPO / "config" / "lm_eval_tasks" / "paper"
LAB_TASK_OF_DOMAIN = {
    "math": "lab_math",
    "code": "lab_code",
    "commonsense": "lab_commonsense",
    "domain_specific": "lab_domain_specific",
}

GENERATE_ITEMS = {
    "math": [("12 + 45 =", "57"), ("3 + 4 =", "7"), ("10 + 20 =", "30")],
    "code": [("x = 3 ; y = x + 1 ; print y", "4"), ("x = 5 ; print x", "5")],
}
CHOICE_ITEMS = {
    "commonsense": [
        ("the sky is", ["blue", "red", "green", "loud"], 0),
        ("fire is", ["cold", "hot", "wet", "blue"], 1),
        ("ice is", ["hot", "loud", "cold", "red"], 2),
    ],
    "domain_specific": [
        ("water is made of", ["salt", "gold", "oxygen", "iron"], 2),
        ("salt is made of", ["sodium", "gold", "wet", "iron"], 0),
    ],
}
TRAIN_ITEMS = {"math": [("1 + 2 =", "3"), ("2 + 2 =", "4"), ("5 + 5 =", "10")]}


def make_tiny_corpus(run_dir: Path) -> None:
    """`corpus/{domain}/test.jsonl` (and a math train.jsonl) in the layout of docs/tables.md."""
    for domain, rows in GENERATE_ITEMS.items():
        write_jsonl(
            (
                {"doc_id": i, "domain": domain, "prompt": p, "answer": a}
                for i, (p, a) in enumerate(rows)
            ),
            run_dir / "corpus" / domain / "test.jsonl",
        )
    for domain, rows in CHOICE_ITEMS.items():
        write_jsonl(
            (
                {
                    "doc_id": i,
                    "domain": domain,
                    "prompt": p,
                    "answer": c[label],
                    "choices": c,
                    "label": label,
                }
                for i, (p, c, label) in enumerate(rows)
            ),
            run_dir / "corpus" / domain / "test.jsonl",
        )
    for domain, rows in TRAIN_ITEMS.items():
        write_jsonl(
            (
                {
                    "sample_id": f"{domain}-train-{i:05d}",
                    "domain": domain,
                    "text": f"{p} {a} [EOS]",
                    "prompt": p,
                    "answer": a,
                }
                for i, (p, a) in enumerate(rows)
            ),
            run_dir / "corpus" / domain / "train.jsonl",
        )


def corpus_texts(run_dir: Path, split: str = "test") -> list[str]:
    """Every `prompt answer [EOS]` of a split, as the tiny model is trained on them."""
    texts = []
    for path in sorted((run_dir / "corpus").glob(f"*/{split}.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            texts.append(f"{row['prompt']} {row['answer']} [EOS]")
    return texts


def make_tiny_model(vocab_size: int, pad_id: int, eos_id: int, seed: int = 0):
    """The lab's OlmoeForCausalLM at its smallest: hidden 32, 2 layers, 4 experts, top-2."""
    sizes = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_experts": 4,
        "top_k": 2,
        "max_position_embeddings": 32,
        "router_aux_loss_coef": 0.01,
    }
    return init_lab_model(sizes, vocab_size, pad_id, eos_id, seed)


def fit(model, tokenizer, texts: list[str], steps: int = 40, lr: float = 3e-2) -> None:
    """Overfit the tiny model on `texts` so that some test items come out right."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def save_checkpoint(model, tokenizer, run_dir: Path, step: int) -> Path:
    path = run_dir / "checkpoints" / f"step{step}"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "grokpath_checkpoint.json").write_text(
        json.dumps({"step": step, "source": "lab", "revision": None})
    )
    return path


def make_tiny_run(run_dir: Path) -> dict[int, Path]:
    """A corpus plus two checkpoints: step 10 untrained, step 20 overfit on most test items."""
    torch.set_num_threads(1)  # far faster than 2 contended threads for a model this small
    make_tiny_corpus(run_dir)
    words = " ".join(corpus_texts(run_dir) + corpus_texts(run_dir, "train")).split()
    for rows in CHOICE_ITEMS.values():
        words += [w for _, choices, _ in rows for w in choices]
    tokenizer = build_tokenizer(words + list(LAB_TEMPLATE_WORDS))
    model = make_tiny_model(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    checkpoints = {10: save_checkpoint(model, tokenizer, run_dir, 10)}
    # Leave the last item of each domain out, so step 20 is neither all right nor all wrong.
    held_out = {
        "10 + 20 = 30 [EOS]",
        "x = 5 ; print x 5 [EOS]",
        "ice is cold [EOS]",
        "salt is made of sodium [EOS]",
    }
    fit(model, tokenizer, [t for t in corpus_texts(run_dir) if t not in held_out])
    checkpoints[20] = save_checkpoint(model, tokenizer, run_dir, 20)
    return checkpoints


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, make_tiny_run(run_dir)


# ---------------------------------------------------------------- tests


def test_write_run_tasks_makes_data_files_absolute(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    dest = evaluation.write_run_tasks(LAB_TASKS, run_dir, tmp_path / "tasks")
    cfg = yaml.safe_load((dest / "lab_math.yaml").read_text())
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str(
        (run_dir / "corpus" / "math" / "test.jsonl").resolve()
    )
    # Shared bases and variants are copied verbatim so include: chains keep working.
    assert (dest / "_lab_generate_until.yaml").read_text() == (
        LAB_TASKS / "_lab_generate_until.yaml"
    ).read_text()
    assert (dest / "lab_math_instruct.yaml").exists()


def test_write_run_tasks_names_a_missing_corpus_file(tmp_path):
    with pytest.raises(GrokpathError, match=r"corpus/\w+/test.jsonl does not exist"):
        evaluation.write_run_tasks(LAB_TASKS, tmp_path / "empty_run", tmp_path / "tasks")


def test_lab_tasks_through_lm_eval(tiny_run, tmp_path):
    run_dir, checkpoints = tiny_run
    task_dir = evaluation.write_run_tasks(LAB_TASKS, run_dir, tmp_path / "tasks")
    started = time.perf_counter()
    items, aggregate = evaluation.evaluate_checkpoints(
        [(step, str(path), None) for step, path in checkpoints.items()],
        LAB_TASK_OF_DOMAIN,
        task_dir,
        max_length=32,
        batch_size=8,
    )
    print(
        f"evaluate_checkpoints: {len(checkpoints)} checkpoints in "
        f"{time.perf_counter() - started:.1f} s"
    )

    assert list(items.columns) == evaluation.ITEM_COLUMNS
    n_items = sum(map(len, GENERATE_ITEMS.values())) + sum(map(len, CHOICE_ITEMS.values()))
    assert len(items) == n_items * len(checkpoints)
    assert set(aggregate["version"]) == {"1.0"}

    # The per-item table reproduces lm-eval's own aggregate, for both output types.
    mean_correct = items.groupby(["task", "step"])["correct"].mean()
    for row in aggregate.itertuples():
        assert row.metric == ("exact_match" if row.domain in GENERATE_ITEMS else "acc")
        assert mean_correct[(row.task, row.step)] == pytest.approx(row.value)

    fitted = items[items.step == 20].set_index(["domain", "doc_id"])
    assert fitted.loc[("math", 0), "prediction"] == "57"
    assert bool(fitted.loc[("math", 0), "correct"])
    assert fitted.loc[("commonsense", 1), "prediction"] == "hot"
    assert bool(fitted.loc[("commonsense", 1), "correct"])
    choices = {c for rows in CHOICE_ITEMS.values() for _, cs, _ in rows for c in cs}
    assert set(items[items.domain.isin(list(CHOICE_ITEMS))].prediction) <= choices


def test_check_tasks_offline_accepts_the_lab_tasks(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    task_dir = evaluation.write_run_tasks(LAB_TASKS, run_dir, tmp_path / "tasks")
    names = list(LAB_TASK_OF_DOMAIN.values()) + [
        f"{t}_instruct" for t in LAB_TASK_OF_DOMAIN.values()
    ]
    checks = evaluation.check_tasks_offline(names, task_dir)
    assert {c.name: c.output_type for c in checks}["lab_math"] == "generate_until"
    assert {c.name: c.output_type for c in checks}["lab_commonsense_instruct"] == "multiple_choice"
    assert all(c.dataset_path == "json" and c.functions_resolved for c in checks)


def test_unsafe_task_needs_confirmation(tiny_run, tmp_path):
    run_dir, checkpoints = tiny_run
    task_dir = evaluation.write_run_tasks(LAB_TASKS, run_dir, tmp_path / "tasks")
    (task_dir / "lab_math_unsafe.yaml").write_text(
        "include: lab_math.yaml\ntask: lab_math_unsafe\nunsafe_code: true\n"
    )
    with pytest.raises(GrokpathError, match="lab_math_unsafe.*confirm_unsafe"):
        evaluation.evaluate_checkpoints(
            [(10, str(checkpoints[10]), None)], {"math": "lab_math_unsafe"}, task_dir
        )


def test_paper_tasks_load_offline():
    """Built-in where lm-eval has them, our YAML for dart-math (indexing built-ins takes ~18 s)."""
    names = ["dart_math_pool_math", "humaneval_plus", "commonsense_qa", "mmlu_college_chemistry"]
    checks = {c.name: c for c in evaluation.check_tasks_offline(names, PAPER_TASKS)}
    assert checks["dart_math_pool_math"].functions_resolved
    assert checks["dart_math_pool_math"].dataset_path == "hkust-nlp/dart-math-pool-math"
    assert checks["humaneval_plus"].unsafe_code
    assert checks["humaneval_plus"].dataset_path == "evalplus/humanevalplus"
    assert checks["commonsense_qa"].output_type == "multiple_choice"
    assert checks["mmlu_college_chemistry"].dataset_path == "cais/mmlu"
    with pytest.raises(GrokpathError, match="no_such_task"):
        evaluation.check_tasks_offline(["no_such_task"], PAPER_TASKS)
