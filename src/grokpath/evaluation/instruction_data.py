"""Paper-scale instruction data: a seeded sample of each configured instruction dataset.

Records are written as they come (alpaca-style `instruction/input/output` or MetaMathQA's
`query/response`); `grokpath.evaluation.instruction_tuning.alpaca_rows` turns them into prompt/response
rows. The mix is split evenly over the datasets, so one large set cannot crowd out the others.
"""

from __future__ import annotations

import logging

from grokpath.errors import GrokpathError

log = logging.getLogger("grokpath.evaluation.instruction_data")


def _load(name: str, spec: dict):
    import datasets

    kwargs = {k: spec[k] for k in ("name", "data_files", "data_dir", "revision") if spec.get(k)}
    try:
        return datasets.load_dataset(spec["path"], split=spec["split"], streaming=spec.get("streaming", False), **kwargs)
    except Exception as exc:  # datasets raises many types for a missing or unreachable set
        raise GrokpathError(f"instruction_tuning.datasets.{name}: cannot load {spec['path']!r} ({exc})") from None


def sample_instructions(datasets_spec: dict, total: int | None, seed: int) -> list[dict]:
    if not datasets_spec:
        raise GrokpathError("instruction_tuning.datasets: needed when format is 'alpaca'")
    per_set = None if total is None else max(1, int(total) // len(datasets_spec))
    records = []
    for name, spec in datasets_spec.items():
        dataset = _load(name, spec)
        if spec.get("streaming", False):
            dataset = dataset.shuffle(seed=seed, buffer_size=spec.get("buffer_size", 10000))
            taken = list(dataset.take(per_set)) if per_set else list(dataset)
        else:
            dataset = dataset.shuffle(seed=seed)
            taken = list(dataset.select(range(min(per_set or len(dataset), len(dataset)))))
        if not taken:
            raise GrokpathError(f"instruction_tuning.datasets.{name}: {spec['path']!r} gave no rows")
        log.info("%s: %d instruction records from %s", name, len(taken), spec["path"])
        records.extend({**row, "source": name} for row in taken)
    return records
