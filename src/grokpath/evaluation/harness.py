"""Per-item test accuracy of checkpoints through lm-evaluation-harness, in one process.

Task YAMLs live in `config/lm_eval_tasks/{lab,paper}/`. The lab YAMLs read the run's test items
with `dataset_path: json` and a `data_files` path relative to the run directory
(`results/{run}/`), so two ways run them:
- the lm-eval CLI started in `results/{run}/` with `--include_path` on the template folder;
- `write_run_tasks`, which copies the templates into the run (`results/{run}/eval/tasks/`) with
  the paths made absolute. The copy records exactly what was evaluated and works from any
  directory (`lm_eval --include_path results/{run}/eval/tasks --tasks lab_math ...`).
Overriding `data_files` in memory instead is not possible in lm-eval 0.4.13: a dict task spec
replaces the registered YAML rather than merging into it.

`evaluate_checkpoints` calls `lm_eval.simple_evaluate` once per checkpoint with one shared
TaskManager, so lm-eval's start-up (~20 s per separate CLI process) is paid once. Measured on
2 shared cores: ~1 s per further checkpoint for a 10-item test set on a 2-layer toy model;
~8-11 s per checkpoint for the default lab (4 x 200 items, hidden 64, 4 layers, batch 64).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import yaml

from grokpath.errors import GrokpathError
from grokpath.tableio import atomic_dir

log = logging.getLogger("grokpath.evaluation.harness")

ITEM_COLUMNS = ["task", "domain", "doc_id", "step", "correct", "score", "prediction"]
AGGREGATE_COLUMNS = [
    "task",
    "domain",
    "step",
    "metric",
    "filter",
    "value",
    "stderr",
    "n",
    "version",
]

# (step, checkpoint dir, LoRA adapter dir or None)
Checkpoint = tuple[int, str, "str | None"]


# ---------------------------------------------------------------- per-run task YAMLs


class _FunctionRef(str):
    """A `!function module.name` value, kept as text so a YAML can be rewritten and stay valid."""


class _TaskYamlLoader(yaml.SafeLoader):
    pass


class _TaskYamlDumper(yaml.SafeDumper):
    pass


_TaskYamlLoader.add_constructor(
    "!function", lambda loader, node: _FunctionRef(loader.construct_scalar(node))
)
_TaskYamlDumper.add_representer(
    _FunctionRef, lambda dumper, value: dumper.represent_scalar("!function", str(value))
)


def _resolve_data_files(data_files, run_dir: Path):
    """Make every relative path in a `data_files` value (str, list or split dict) absolute."""
    if isinstance(data_files, Mapping):
        return {split: _resolve_data_files(v, run_dir) for split, v in data_files.items()}
    if isinstance(data_files, (list, tuple)):
        return [_resolve_data_files(v, run_dir) for v in data_files]
    path = Path(data_files)
    resolved = path if path.is_absolute() else (run_dir / path).resolve()
    if not any(ch in str(path) for ch in "*?[") and not resolved.exists():
        raise GrokpathError(f"task data file {resolved} does not exist (from data_files {path})")
    return str(resolved)


def _rewrite_data_files(yaml_path: Path, run_dir: Path, template: Path) -> None:
    text = yaml_path.read_text()
    cfg = yaml.load(text, Loader=_TaskYamlLoader)  # noqa: S506 - SafeLoader plus one tag
    data_files = (cfg or {}).get("dataset_kwargs", {}).get("data_files")
    if data_files is None:
        return
    cfg["dataset_kwargs"]["data_files"] = _resolve_data_files(data_files, run_dir)
    header = (
        f"# Written by grokpath.evaluation.harness.write_run_tasks from {template}\n"
        f"# with data_files resolved against {run_dir}.\n"
    )
    body = yaml.dump(cfg, Dumper=_TaskYamlDumper, sort_keys=False, allow_unicode=True)
    yaml_path.write_text(header + body)


def write_run_tasks(template_dir: str | Path, run_dir: str | Path, dest_dir: str | Path) -> Path:
    """Copy a task-YAML folder into `dest_dir`, with `data_files` resolved against `run_dir`.

    Files without `dataset_kwargs.data_files` (shared bases, utils.py) are copied unchanged, so
    `include:` and `!function` references keep working inside the copy.
    """
    template_dir, run_dir = Path(template_dir).resolve(), Path(run_dir).resolve()
    if not template_dir.is_dir():
        raise GrokpathError(f"task template folder {template_dir} does not exist")
    with atomic_dir(dest_dir) as tmp:
        for src in sorted(template_dir.rglob("*")):
            if "__pycache__" in src.parts or src.is_dir():
                continue
            dst = tmp / src.relative_to(template_dir)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            if dst.suffix == ".yaml":
                _rewrite_data_files(dst, run_dir, src)
    return Path(dest_dir)


# ---------------------------------------------------------------- task manager and checks


# Full indexes kept per include_path: building one costs ~18 s, and a process may need it twice
# (an offline check, then the evaluation).
_MANAGERS_WITH_BUILTINS: dict = {}


def make_task_manager(task_names: Iterable[str], include_path: str | Path | None):
    """A TaskManager that knows `task_names`; built-in tasks are indexed only when needed.

    Indexing lm-eval's built-in tasks (~14.7k names) takes ~15-18 s on 2 cores, so the lab
    (whose tasks all live in `include_path`) skips it.
    """
    from lm_eval.tasks import TaskManager

    names = list(task_names)
    paths = [str(include_path)] if include_path else None
    if paths:
        manager = TaskManager(include_path=paths, include_defaults=False)
        if all(name in manager.all_tasks for name in names):
            return manager
    key = str(Path(include_path).resolve()) if include_path else None
    if key not in _MANAGERS_WITH_BUILTINS:
        _MANAGERS_WITH_BUILTINS[key] = TaskManager(include_path=paths, include_defaults=True)
    manager = _MANAGERS_WITH_BUILTINS[key]
    missing = [name for name in names if name not in manager.all_tasks]
    if missing:
        where = f"lm-eval's built-in tasks or {include_path}" if include_path else "lm-eval"
        raise GrokpathError(f"unknown lm-eval task(s) {', '.join(missing)} (not in {where})")
    return manager


@dataclass
class TaskCheck:
    """What could be checked about one task without network access."""

    name: str
    yaml_path: str
    output_type: str
    dataset_path: str
    unsafe_code: bool
    functions_resolved: bool


def _check_one_task(manager, name: str, include_path: Path | None) -> TaskCheck:
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = manager.task_index[name]
    if entry.yaml_path is None:
        raise GrokpathError(f"task {name} has no YAML (a group or tag, not one task)")
    cfg = load_yaml(entry.yaml_path, resolve_func=False, recursive=True)
    for key in ("output_type", "dataset_path"):
        if key not in cfg:
            raise GrokpathError(f"task {name} ({entry.yaml_path}): no {key}")
    # Our own hooks are imported to catch typos; built-in ones are not, because some import
    # hub resources (humaneval's utils.py loads the `code_eval` metric at import time).
    ours = include_path is not None and Path(entry.yaml_path).resolve().is_relative_to(
        include_path.resolve()
    )
    if ours:
        load_yaml(entry.yaml_path, resolve_func=True, recursive=True)
    return TaskCheck(
        name=name,
        yaml_path=str(entry.yaml_path),
        output_type=str(cfg["output_type"]),
        dataset_path=str(cfg["dataset_path"]),
        unsafe_code=bool(cfg.get("unsafe_code", False)),
        functions_resolved=ours,
    )


def check_tasks_offline(
    task_names: Sequence[str], include_path: str | Path | None = None
) -> list[TaskCheck]:
    """Check that tasks are registered and their YAMLs parse, without downloading anything.

    Offline, this covers: the name is in the TaskManager index, the YAML (with its includes)
    parses, it names an output type and a dataset, and our own `!function` hooks import. It
    cannot cover the dataset itself (building a Task downloads it) or hub-side metrics.
    """
    manager = make_task_manager(task_names, include_path)
    root = Path(include_path) if include_path else None
    return [_check_one_task(manager, name, root) for name in task_names]


def _require_unsafe_confirmation(manager, task_names: Iterable[str], confirm_unsafe: bool):
    unsafe = [n for n in task_names if manager.task_index[n].cfg.get("unsafe_code", False)]
    if unsafe and not confirm_unsafe:
        raise GrokpathError(
            f"task(s) {', '.join(unsafe)} execute model-written code; set the config key that "
            "passes confirm_unsafe=True (lm-eval's --confirm_run_unsafe_code) to run them"
        )
    if unsafe:
        # HF `evaluate`'s code_eval metric (humaneval*) has its own opt-in; the config's
        # confirmation stands for both.
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"


# ---------------------------------------------------------------- evaluation


def _model_args(
    checkpoint_dir: str, adapter_dir: str | None, max_length, dtype, tokenizer=None, device_map=None
) -> dict:
    """lm-eval's HFLM arguments. `tokenizer`: a folder or hub name instead of the checkpoint's
    own (local checkpoints); `device_map` 'auto': HFLM's parallelize (accelerate's device_map
    auto over every visible GPU)."""
    args: dict = {"pretrained": str(checkpoint_dir), "dtype": dtype}
    if max_length:
        args["max_length"] = int(max_length)
    if adapter_dir:
        args["peft"] = str(adapter_dir)
    if tokenizer:
        args["tokenizer"] = str(tokenizer)
    if device_map == "auto":
        args["parallelize"] = True
    elif device_map not in (None, ""):
        raise GrokpathError(f"device_map {device_map!r}: expected null or 'auto'")
    return args


def _primary_metric(results: dict, task: str, sample: dict) -> str:
    for metric in results["higher_is_better"][task]:
        if metric in sample:
            return metric
    raise GrokpathError(f"task {task}: no per-sample metric among {list(sample)}")


def _prediction(sample: dict, output_type: str) -> str:
    if output_type == "multiple_choice":
        # filtered_resps holds (loglikelihood, is_greedy) per choice; acc takes the argmax.
        lls = [resp[0] for resp in sample["filtered_resps"]]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        return str(sample["arguments"][best][1]).strip()
    resp = sample["filtered_resps"]
    while isinstance(resp, (list, tuple)):
        resp = resp[0] if resp else ""
    return str(resp)


def _first_filter(config: dict) -> str:
    filters = config.get("filter_list") or []
    return filters[0]["name"] if filters else "none"


def item_rows(results: dict, step: int, domains: Mapping[str, str]) -> list[dict]:
    """Per-item rows from one `simple_evaluate` result (run with log_samples=True)."""
    rows = []
    for task, samples in results["samples"].items():
        config = results["configs"][task]
        wanted_filter = _first_filter(config)
        for sample in samples:
            if sample.get("filter", "none") != wanted_filter:
                continue
            metric = _primary_metric(results, task, sample)
            score = float(sample[metric])
            doc = sample.get("doc") or {}
            rows.append(
                {
                    "task": task,
                    "domain": domains[task],
                    # The corpus's own doc_id when the doc has one (lab test.jsonl), so the
                    # tables join with contamination scores; lm-eval's index otherwise.
                    "doc_id": int(doc.get("doc_id", sample["doc_id"])),
                    "step": int(step),
                    "correct": score == 1.0,
                    "score": score,
                    "prediction": _prediction(sample, config["output_type"]),
                }
            )
    return rows


def _stderr(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # lm-eval writes "N/A" for a single item
        return math.nan


def aggregate_rows(results: dict, step: int, domains: Mapping[str, str]) -> list[dict]:
    """Aggregate rows (one per task, metric and filter) from one `simple_evaluate` result."""
    rows = []
    for task, metrics in results["results"].items():
        if task not in domains:  # groups and tags
            continue
        for key, value in metrics.items():
            if "," not in key or "_stderr," in key:
                continue
            metric, filter_name = key.split(",", 1)
            rows.append(
                {
                    "task": task,
                    "domain": domains[task],
                    "step": int(step),
                    "metric": metric,
                    "filter": filter_name,
                    "value": float(value),
                    "stderr": _stderr(metrics.get(f"{metric}_stderr,{filter_name}")),
                    "n": int(results["n-samples"][task]["effective"]),
                    "version": str(results["versions"][task]),
                }
            )
    return rows


def evaluate_checkpoints(
    checkpoints: Sequence[Checkpoint],
    tasks: Mapping[str, str],
    task_dir: str | Path | None,
    *,
    max_length: int | None = None,
    dtype: str = "float32",
    batch_size: int | str = 8,
    device: str = "auto",
    limit: int | float | None = None,
    confirm_unsafe: bool = False,
    tokenizer: str | None = None,
    device_map: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate each (step, checkpoint dir, adapter dir or None) on `tasks` = {domain: task}.

    Returns (items, aggregate) with ITEM_COLUMNS and AGGREGATE_COLUMNS. `task_dir` is the
    folder of our task YAMLs (a `write_run_tasks` copy for the lab); built-in tasks need none.
    `tokenizer` and `device_map`: see `_model_args`.
    """
    import lm_eval

    from grokpath.tokens import resolve_device

    # lm-eval takes a device string; "auto" is ours (cuda when available).
    device = str(resolve_device(device))
    if dtype in (None, "", "auto"):  # ours too: lm-eval's auto would mean the checkpoint's dtype
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    domains = {task: domain for domain, task in tasks.items()}
    manager = make_task_manager(domains, task_dir)
    _require_unsafe_confirmation(manager, domains, confirm_unsafe)
    items: list[dict] = []
    aggregate: list[dict] = []
    for step, checkpoint_dir, adapter_dir in checkpoints:
        started = time.perf_counter()
        results = lm_eval.simple_evaluate(
            model="hf",
            model_args=_model_args(
                checkpoint_dir, adapter_dir, max_length, dtype, tokenizer, device_map
            ),
            tasks=list(domains),
            task_manager=manager,
            batch_size=batch_size,
            device=device,
            limit=limit,
            log_samples=True,
            confirm_run_unsafe_code=confirm_unsafe,
        )
        if results is None:  # only on non-zero ranks of a distributed run
            continue
        items += item_rows(results, step, domains)
        aggregate += aggregate_rows(results, step, domains)
        log.info(
            "step %s%s: %d tasks in %.1f s",
            step,
            " + adapter" if adapter_dir else "",
            len(domains),
            time.perf_counter() - started,
        )
    return _typed(pd.DataFrame(items, columns=ITEM_COLUMNS)), pd.DataFrame(
        aggregate, columns=AGGREGATE_COLUMNS
    )


def _typed(items: pd.DataFrame) -> pd.DataFrame:
    return items.astype({"doc_id": "int64", "step": "int64", "correct": "bool", "score": "float64"})
