"""Monitor memorization-to-generalization while training: router-pathway metrics of a fixed probe
set, every N steps, from inside any MoE training loop.

    monitor = PathwayMonitor(model, draw_probe_samples(train_rows, 64, seed=0), tokenizer,
                             every_n_steps=50, output="monitor.parquet")
    values = monitor.step(global_step)   # a custom loop, after optimizer.step(): {} off-schedule
    monitor.attach(trainer)              # or a transformers.Trainer: values reach its loggers
    monitor.close()                      # writes monitor.parquet (the Trainer callback does this)

What a monitor step computes, with the functions the offline rules use (no second
implementation): the probe samples' router weights are captured with `grokpath.routing.extract`'s
`RouterCapture` (same tokenisation, batching, padding and position ids as `extract_pathways`),
put in a `grokpath.routing.pathways.PathwayTable`, and passed to `grokpath.routing.metrics`'
`edit_distance_table`, `consistency_table` and `baselines_table` (routing entropy; router
saturation needs the final checkpoint and is left out) with an empty memorization table: while
training runs no t* is known, so every set is a domain's whole probe set (group "all"). On a
saved checkpoint with the same samples and threshold the values equal the offline tables'. The
probe's loss (metric `probe_loss`: mean next-token NLL of each sample, averaged per domain) comes
from the same forward pass.

The table (`output`) has the columns of the offline metric tables (`METRIC_TABLE_COLUMNS`:
step, domain, group, layer, metric, value, se, n, plus the consistency table's n_excluded, 0 on
other rows) and their conventions: domain a domain or "all", group "all", layer "all" or a
decoder layer index as a string, se and n the Monte Carlo se and pair count of edit distances,
the between-sample se and sample count of per-sample metrics. Rows
are buffered, written as Parquet parts (`.<output name>.parts/` beside it) every `flush_rows`,
and combined into `output` atomically by `close()`, so a crash leaves the parts of the steps done.

Training is not disturbed:
- the probe runs under `torch.inference_mode` (no autograd graph, gradients untouched) with every
  module in eval mode; each module's own train/eval flag is restored afterwards;
- the torch CPU and CUDA RNG states are saved and restored around the step (eval mode draws
  nothing, and the pair sampling of the edit distance uses its own seeded numpy generator; the
  restore makes that a guarantee for any model);
- the router hooks exist only during the probe's forward pass;
- `grokpath.lab.balance.RouterBalance` records only passes with gradients enabled, so the lab's
  load-balancing loss never sees the probe's passes (other balance hooks should do the same).

The monitor runs the model as it is (its device and dtype: on a GPU trained in float32 the
offline extraction's default bfloat16 gives slightly different values). Under DDP the callback
runs it on the main process only; sharded models (FSDP, ZeRO-3) are not supported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from transformers import TrainerCallback

from grokpath.errors import GrokpathError
from grokpath.routing.extract import (
    RouterCapture,
    check_samples,
    length_sorted_batches,
    pad_batch,
    select_samples,
    tokenize_window,
)
from grokpath.routing.metrics import (
    DEFAULT_CONSISTENCY_MIN_COS,
    DEFAULT_MAX_PAIRS,
    METRIC_TABLE_COLUMNS,
    baselines_table,
    consistency_table,
    edit_distance_table,
)
from grokpath.routing.pathways import PAPER_THRESHOLD, PathwayTable
from grokpath.routing.routers import backbone_of, find_routers
from grokpath.tableio import write_parquet

log = logging.getLogger("grokpath.routing.monitor")

DEFAULT_PROBE_SAMPLES = 64  # per domain
DEFAULT_EVERY_N_STEPS = 50
LOG_PREFIX = "pathways"
PROBE_LOSS = "probe_loss"
# The metrics of the flat dict that `step` returns (group "all", layer "all"); every row, per
# layer included, goes to the table.
LOGGED_METRICS = (
    "edit_distance_char",
    "edit_distance_id",
    "consistency_norm_mean_cos",
    "inconsistency_paper_formula",
    "consistency_mean_cos",
    "routing_entropy",
    PROBE_LOSS,
)
# The offline metric tables' columns, plus the consistency table's n_excluded (samples left out
# of the normalised consistency by its min_cos guard; 0 on every other row).
MONITOR_TABLE_COLUMNS = [*METRIC_TABLE_COLUMNS, "n_excluded"]
SORT_WINDOW = 1024  # extract_pathways' default: the same batches, so the same values
_MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]
_EMPTY_MEMORIZATION = pd.DataFrame(
    {"domain": [], "sample_id": [], "t_star": pd.Series([], dtype="Int64"), "memorized": []}
)[_MEMORIZATION_COLUMNS]


# ---------------------------------------------------------------- the probe set


def draw_probe_samples(
    rows: Mapping[str, Sequence[dict | str]] | Iterable[dict],
    per_domain: int | None = DEFAULT_PROBE_SAMPLES,
    seed: int = 0,
) -> list[dict]:
    """A seeded uniform sample of training samples, at most `per_domain` of each domain.

    `rows`: {domain: [rows or texts]} or an iterable of rows with a "domain" key. A row needs
    "text"; its "sample_id" defaults to its position in its domain; other fields (e.g. "prompt")
    are kept. The draw is `grokpath.routing.extract.select_samples`'s, so the same corpus and seed give
    the offline extraction's samples when its `max_per_domain` is the same.
    """
    by_domain: dict[str, list[dict]] = {}
    if isinstance(rows, Mapping):
        items = ((domain, row) for domain, domain_rows in rows.items() for row in domain_rows)
    else:
        items = []
        for position, row in enumerate(rows):
            if not isinstance(row, Mapping) or "domain" not in row:
                raise GrokpathError(
                    f"probe row #{position}: expected a dict with a 'domain' key "
                    "(or pass {domain: rows})"
                )
            items.append((str(row["domain"]), row))
    for domain, row in items:
        domain_rows = by_domain.setdefault(str(domain), [])
        row = {"text": row} if isinstance(row, str) else dict(row)
        if "text" not in row:
            raise GrokpathError(f"probe row {len(domain_rows)} of domain {domain!r}: no 'text'")
        row.setdefault("sample_id", str(len(domain_rows)))
        row["sample_id"], row["domain"] = str(row["sample_id"]), str(domain)
        domain_rows.append(row)
    if not by_domain:
        raise GrokpathError("draw_probe_samples: no rows")
    chosen = select_samples(by_domain, per_domain, seed)
    full = {(row["domain"], row["sample_id"]): row for rows_ in by_domain.values() for row in rows_}
    return [full[(row["domain"], row["sample_id"])] for row in chosen]


# ---------------------------------------------------------------- not disturbing training


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore the torch CPU and (initialised) CUDA generators on exit."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Every module in eval mode; each module's own flag restored on exit."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


# ---------------------------------------------------------------- the monitor


class PathwayMonitor:
    """Router-pathway metrics of a fixed probe set every `every_n_steps` (module docstring).

    model: an MoE *ForCausalLM (any family `grokpath.routing.routers` has an adapter for; anything else
        fails at construction with the adapters' one-line error).
    probe_samples: dicts with sample_id, domain, text (see `draw_probe_samples`); tokenised once.
    threshold: the pathway's cumulative-weight cut (paper 0.7).
    output: Parquet path of the tidy table (None: rows kept in memory, see `table()`).
    batch_size, max_length: the probe's batching and truncation (as `extract_pathways`').
    max_pairs, seed, workers, cross_domain: as `pathway_metrics.edit_distance_table`'s.
    consistency_min_cos: `pathway_metrics.consistency_table`'s min_cos (config
        pathways.consistency_min_cos).
    weights: `scores` or `topk`, as extraction's (config pathways.weights; grokpath.routing.routers).
    loss_span: "all" (every token after the first) or "answer" (from the end of each sample's
        "prompt", via `grokpath.tokens.answer_starts`); None skips the loss and runs only the
        backbone, as extraction does.
    inference_mode: False runs the probe under `torch.no_grad` instead, for models that cache
        buffers lazily in their forward (an inference tensor cannot be saved for backward).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        probe_samples: Sequence[dict],
        tokenizer,
        every_n_steps: int = DEFAULT_EVERY_N_STEPS,
        threshold: float = PAPER_THRESHOLD,
        *,
        output: str | os.PathLike | None = None,
        batch_size: int = 16,
        max_length: int = 512,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        seed: int = 0,
        workers: int = 1,
        cross_domain: bool = False,
        consistency_min_cos: float = DEFAULT_CONSISTENCY_MIN_COS,
        weights: str = "scores",
        loss_span: str | None = "all",
        log_prefix: str = LOG_PREFIX,
        flush_rows: int = 10_000,
        inference_mode: bool = True,
    ):
        if int(every_n_steps) < 1:
            raise GrokpathError(f"every_n_steps must be >= 1, got {every_n_steps}")
        if batch_size < 1 or max_length < 1:
            raise GrokpathError(
                f"batch_size and max_length must be >= 1 (got {batch_size}, {max_length})"
            )
        spec = find_routers(model)  # the adapters' one-line error for a dense / unknown model
        self.model = model
        self.every_n_steps = int(every_n_steps)
        self.threshold = float(threshold)
        self.max_pairs, self.seed, self.workers = int(max_pairs), int(seed), int(workers)
        self.cross_domain = cross_domain
        self.consistency_min_cos = float(consistency_min_cos)
        self.weights = weights
        spec.weights_kind(weights)  # fails early on an unknown kind
        self.loss_span = loss_span
        self.log_prefix = log_prefix
        self.inference_mode = inference_mode
        self._spec = spec
        self._routers = spec.modules
        self._layers = np.asarray(spec.layers)
        self._top_k = spec.top_k
        self._samples, self._batches = self._prepare(
            list(probe_samples), tokenizer, batch_size, max_length
        )
        self._domains = np.array([s["domain"] for s in self._samples], dtype=object)
        self._sample_ids = np.array([str(s["sample_id"]) for s in self._samples], dtype=object)
        self._device_batches: dict[torch.device, list] = {}
        self._table = _TidyParts(output, flush_rows)
        self._last: tuple[int, dict] | None = None
        self.seconds = 0.0  # time spent in monitor steps, for overhead reports

    # ------------------------------------------------------------ set-up

    def _prepare(self, samples, tokenizer, batch_size, max_length, sort_window=SORT_WINDOW):
        check_samples(samples)
        if not samples:
            raise GrokpathError("PathwayMonitor: no probe samples")
        keys = [(s["domain"], str(s["sample_id"])) for s in samples]
        if len(set(keys)) != len(keys):
            raise GrokpathError("PathwayMonitor: duplicate (domain, sample_id) among probe samples")
        token_ids = tokenize_window(tokenizer, [s["text"] for s in samples], max_length)
        kept = [i for i, ids in enumerate(token_ids) if len(ids) > 0]
        if len(kept) < len(samples):
            log.warning("monitor: skipped %d probe sample(s) with no tokens", len(samples) - len(kept))
        samples = [samples[i] for i in kept]
        token_ids = [token_ids[i] for i in kept]
        starts = self._loss_starts(tokenizer, samples, max_length)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        padding_side = getattr(tokenizer, "padding_side", "right")
        batches = []
        # the batches `extract_pathways` forms for these samples: length-sorted per sort window
        for first in range(0, len(token_ids), sort_window):
            lengths = [len(ids) for ids in token_ids[first : first + sort_window]]
            for window_batch in length_sorted_batches(lengths, batch_size):
                batch = [first + i for i in window_batch]
                input_ids, mask, positions = pad_batch(
                    [token_ids[i] for i in batch], pad_id, padding_side
                )
                loss_from = torch.tensor([starts[i] for i in batch])
                batches.append((batch, input_ids, mask, positions, loss_from))
        return samples, batches

    def _loss_starts(self, tokenizer, samples, max_length) -> list[int]:
        if self.loss_span is None:
            return [1] * len(samples)
        from grokpath.tokens import answer_starts

        return answer_starts(tokenizer, samples, max_length, self.loss_span, "monitor probe samples")

    def _on_device(self, device: torch.device) -> list:
        if device not in self._device_batches:
            self._device_batches = {
                device: [
                    (batch, *(t.to(device) for t in tensors))
                    for batch, *tensors in self._batches
                ]
            }
        return self._device_batches[device]

    # ------------------------------------------------------------ one probe

    def _forward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(weights (N, L, E), entropy (N, L), n_tokens (N,), loss (N,)) in sample order."""
        device = next(self.model.parameters()).device
        n = len(self._samples)
        weights = entropy = None
        n_tokens = np.zeros(n, dtype=np.int32)
        losses = np.full(n, np.nan)
        grad_mode = torch.inference_mode() if self.inference_mode else torch.no_grad()
        run = self.model if self.loss_span is not None else backbone_of(self.model)
        with RouterCapture(self._spec, self.weights) as capture, grad_mode:
            for batch, input_ids, mask, positions, starts in self._on_device(device):
                capture.start_batch(mask)
                out = run(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=False,
                )
                probs, ent = capture.collect()
                if weights is None:
                    weights = np.zeros((n, *probs.shape[1:]), dtype=np.float32)
                    entropy = np.zeros((n, ent.shape[1]), dtype=np.float32)
                weights[batch], entropy[batch] = probs, ent
                n_tokens[batch] = mask.sum(dim=1).cpu().numpy()
                if self.loss_span is not None:
                    losses[batch] = _sample_nll(out.logits, input_ids, mask, starts)
        return weights, entropy, n_tokens, losses

    def compute(self, step: int) -> pd.DataFrame:
        """Run the probe now and return its tidy rows (not recorded; see `measure`)."""
        with preserved_rng_state(), eval_mode(self.model):
            weights, entropy, n_tokens, losses = self._forward()
        table = PathwayTable(
            step=int(step),
            domains=self._domains,
            sample_ids=self._sample_ids,
            layers=self._layers,
            n_tokens=n_tokens,
            weights=weights,
            entropy=entropy,
        )
        # read fresh each time: `model.to(device)` replaces the parameters' storage
        router_weights = torch.stack(
            [m.weight.detach().to("cpu", torch.float32) for m in self._routers]
        ).numpy()
        frames = [
            edit_distance_table(
                [table],
                _EMPTY_MEMORIZATION,
                self.threshold,
                self.max_pairs,
                self.seed,
                self.workers,
                cross_domain=self.cross_domain,
            )
        ]
        if len(self._layers) >= 2:  # consistency compares adjacent MoE layers
            frames.append(
                consistency_table(
                    [table], {table.step: router_weights}, _EMPTY_MEMORIZATION,
                    min_cos=self.consistency_min_cos,
                )
            )
        routing = baselines_table([table], table, self._top_k, _EMPTY_MEMORIZATION)
        frames.append(routing[routing["metric"] == "routing_entropy"])
        if self.loss_span is not None:
            frames.append(self._loss_rows(table.step, losses))
        frames = [_typed(f) for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else _empty_table()

    def _loss_rows(self, step: int, losses: np.ndarray) -> pd.DataFrame:
        rows = []
        for domain in sorted(set(self._domains.tolist())) + ["all"]:
            members = np.ones(len(losses), bool) if domain == "all" else self._domains == domain
            values = losses[members & np.isfinite(losses)]
            if len(values):
                se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
                rows.append([step, domain, "all", "all", PROBE_LOSS, values.mean(), se, len(values)])
        return pd.DataFrame(rows, columns=METRIC_TABLE_COLUMNS)

    def measure(self, step: int) -> dict[str, float]:
        """Run the probe at `step`, record its rows and return the flat dict of `step`."""
        step = int(step)
        if self._last is not None and self._last[0] == step:
            return dict(self._last[1])
        start = time.perf_counter()
        frame = self.compute(step)
        self._table.add(frame)
        values = self.flat(frame)
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        values[f"{self.log_prefix}/monitor_seconds"] = elapsed
        self._last = (step, values)
        return dict(values)

    def step(self, global_step: int) -> dict[str, float]:
        """Call after each optimizer step: the metrics every `every_n_steps` steps, else {}.

        Keys are `<log_prefix>/<domain>/<metric>` (domain a domain or "all") for the metrics of
        `LOGGED_METRICS` over all layers, plus `<log_prefix>/monitor_seconds`.
        """
        if int(global_step) % self.every_n_steps:
            return {}
        return self.measure(global_step)

    def flat(self, frame: pd.DataFrame) -> dict[str, float]:
        whole = frame[(frame["group"] == "all") & (frame["layer"] == "all")]
        whole = whole[whole["metric"].isin(LOGGED_METRICS) | whole["domain"].str.contains("|", regex=False)]
        return {
            f"{self.log_prefix}/{row.domain}/{row.metric}": float(row.value)
            for row in whole.itertuples(index=False)
        }

    # ------------------------------------------------------------ the table

    def table(self) -> pd.DataFrame:
        """Every row recorded so far (parts on disk and the buffer)."""
        return self._table.read()

    def flush(self) -> None:
        self._table.flush()

    def close(self) -> Path | None:
        """Combine the parts into `output` atomically (an empty table if nothing was measured)."""
        return self._table.close()

    def __enter__(self) -> "PathwayMonitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    # ------------------------------------------------------------ Trainer

    def attach(self, trainer) -> "PathwayMonitorCallback":
        """Add a `PathwayMonitorCallback` to a `transformers.Trainer` and return it."""
        callback = PathwayMonitorCallback(self, trainer)
        trainer.add_callback(callback)
        return callback


def _sample_nll(logits, input_ids, mask, starts) -> np.ndarray:
    """Mean next-token NLL per row over scored targets: real tokens whose predecessor is real and
    whose position within the sample is >= its start (as `sample_loss.per_sample_nll`; padding
    on either side)."""
    mask = mask.bool()
    relative = mask.long().cumsum(dim=1) - 1  # position within the sample
    scored = mask[:, 1:] & mask[:, :-1] & (relative[:, 1:] >= starts[:, None])
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none"
    )
    count = scored.sum(dim=1)
    mean = torch.where(scored, nll, 0.0).sum(dim=1) / count.clamp(min=1)
    return torch.where(count > 0, mean, float("nan")).double().cpu().numpy()


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The monitor's columns and types; n_excluded is 0 where the source table has none."""
    frame = frame.reindex(columns=MONITOR_TABLE_COLUMNS)
    frame["n_excluded"] = frame["n_excluded"].fillna(0)
    return frame.astype(
        {
            "step": "int64",
            "domain": "object",
            "group": "object",
            "layer": "object",
            "metric": "object",
            "value": "float64",
            "se": "float64",
            "n": "int64",
            "n_excluded": "int64",
        }
    )


def _empty_table() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=MONITOR_TABLE_COLUMNS))


class _TidyParts:
    """Rows buffered in memory, written as Parquet parts, combined into `dest` by `close()`."""

    def __init__(self, dest, flush_rows: int):
        self.dest = Path(dest) if dest is not None else None
        self.flush_rows = max(1, int(flush_rows))
        self._buffer: list[pd.DataFrame] = []
        self._rows = 0
        self._parts: list[Path] = []
        self.closed = False
        if self.dest is not None:
            self.parts_dir = self.dest.parent / f".{self.dest.name}.parts"
            if self.parts_dir.exists():
                log.warning("monitor: removing the parts of an earlier run in %s", self.parts_dir)
                shutil.rmtree(self.parts_dir)

    def add(self, frame: pd.DataFrame) -> None:
        if self.closed:
            raise GrokpathError(f"monitor table {self.dest}: already closed")
        self._buffer.append(frame)
        self._rows += len(frame)
        if self.dest is not None and self._rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.dest is None or not self._buffer:
            return
        part = self.parts_dir / f"part-{len(self._parts):05d}.parquet"
        write_parquet(_typed(pd.concat(self._buffer, ignore_index=True)), part)
        self._parts.append(part)
        self._buffer, self._rows = [], 0

    def read(self) -> pd.DataFrame:
        frames = [pd.read_parquet(p) for p in self._parts] + self._buffer
        frames = [f for f in frames if len(f)]
        if not frames:
            return _empty_table()
        return _typed(pd.concat(frames, ignore_index=True))

    def close(self) -> Path | None:
        if self.closed or self.dest is None:
            self.closed = True
            return self.dest
        frame = self.read()
        write_parquet(frame, self.dest)  # temp name then rename (grokpath.tableio)
        if self.parts_dir.exists():
            shutil.rmtree(self.parts_dir)
        self._buffer, self._parts, self.closed = [], [], True
        log.info("monitor: %d rows -> %s", len(frame), self.dest)
        return self.dest


# ---------------------------------------------------------------- transformers.Trainer


class PathwayMonitorCallback(TrainerCallback):
    """Runs `monitor.step` at the end of every optimizer step and logs through `trainer.log`.

    Why through the trainer: `Trainer.log` appends to `state.log_history` and then calls every
    callback's `on_log`, the `report_to` loggers (TensorBoard, W&B, ...) first. A callback that
    adds keys to `logs` in its own `on_log` runs after them, too late; calling `trainer.log`
    from `on_step_end` (after the optimizer step and `zero_grad`, with `state.global_step`
    already counting this step) gives the values their own log entry at this step, seen by every
    logger. Hence the trainer reference: use `monitor.attach(trainer)`. (`Trainer.log` also
    clears `control.should_log`; the flag is put back, so the trainer's own entry at a logging
    step is kept.)

    `on_train_end` closes the monitor (writes its table). Under DDP only the main process
    measures; the others train on.
    """

    def __init__(self, monitor: PathwayMonitor, trainer):
        if trainer is None or not hasattr(trainer, "log"):
            raise GrokpathError(
                "PathwayMonitorCallback needs the Trainer (its values are logged through "
                "trainer.log); use monitor.attach(trainer)"
            )
        self.monitor = monitor
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return control
        values = self.monitor.step(state.global_step)
        if values:
            # Trainer.log's on_log clears control.should_log, which DefaultFlowCallback has just
            # set for this step: keep it, or the trainer's own loss entry would be dropped.
            should_log = control.should_log
            self.trainer.log(dict(values))
            control.should_log = self.trainer.control.should_log = should_log
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.monitor.close()
        return control
