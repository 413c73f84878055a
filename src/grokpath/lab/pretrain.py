"""Pretraining the lab model on the generated corpus, saving HF checkpoints along the way.

Tables: `train/log.parquet` (step, loss, aux_loss, lr, weight_decay, tokens, elapsed_s at every
log step),
`train/probe.parquet` (step, domain, split train|test, n, accuracy, checkpoint: whether the step
is a saved checkpoint), the accuracy probe at every log step and checkpoint, and, when
`pretrain()` gets a `monitor_output`, `train/monitor.parquet`: the pathway monitor
(`grokpath.routing.monitor`; `grokpath.routing.monitor.MONITOR_TABLE_COLUMNS`) on `pretrain.monitor_samples`
seeded training samples per domain, every `pretrain.monitor_every` steps and at every checkpoint
(the probe's schedule at that interval, so each monitor step has probe rows).

The schedule is linear warm-up then a constant learning rate: the paper's memorization rule
(loss within delta of the FINAL loss at every later checkpoint) needs a flat tail, and a
cool-down at the end would lower every final loss and leave nothing memorized before it.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from grokpath.errors import GrokpathError
from grokpath.lab.balance import RouterBalance
from grokpath.lab.model import init_lab_model
from grokpath.lab.probe import probe_accuracy
from grokpath.routing.monitor import DEFAULT_EVERY_N_STEPS, DEFAULT_PROBE_SAMPLES, PathwayMonitor, draw_probe_samples
from grokpath.sources.checkpoints import CHECKPOINT_META
from grokpath.tableio import atomic_dir, read_jsonl, write_parquet
from grokpath.tokens import answer_starts, encode_samples, resolve_device

log = logging.getLogger("grokpath.lab.pretrain")


@dataclass
class CorpusSplits:
    train: dict[str, list[dict]]
    test: dict[str, list[dict]]


def load_corpus(corpus_dir: str | Path, domains: list[str]) -> CorpusSplits:
    corpus_dir = Path(corpus_dir)
    train, test = {}, {}
    for domain in domains:
        train[domain] = read_jsonl(corpus_dir / domain / "train.jsonl")
        test[domain] = read_jsonl(corpus_dir / domain / "test.jsonl")
        if not train[domain]:
            raise GrokpathError(f"{corpus_dir / domain / 'train.jsonl'}: no training samples")
    return CorpusSplits(train, test)


def training_tensors(
    tokenizer, samples: list[dict], max_length: int, loss_span: str = "all"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All samples padded to one width once: (input ids, attention mask, labels).

    Labels are -100 on padding, and with `loss_span: answer` also on the prompt, so only the
    answer token(s) and EOS are trained on (the operands of a lab sample are random).
    """
    encoded = encode_samples(tokenizer, [s["text"] for s in samples], max_length, append_eos=True)
    starts = answer_starts(tokenizer, samples, max_length, loss_span, "pretrain.loss_span")
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, (seq, first) in enumerate(zip(encoded, starts)):
        ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
        # HF shifts labels by one inside the model: label j is predicted from position j - 1.
        labels[row, first : len(seq)] = torch.tensor(seq[first:])
    return ids, attention, labels


def learning_rate(step: int, peak: float, warmup_steps: int, schedule=None) -> float:
    """Linear warm-up to `peak`, then `peak`, replaced from each `lr_schedule` entry's step on.

    With AdamW a larger learning rate runs the same dynamics in fewer steps (the step size and
    the decoupled weight decay both scale with it), so raising it after the fit buys
    generalization time inside the demo's step budget.
    """
    value = peak * min(1.0, step / max(1, warmup_steps))
    for change in sorted(schedule or [], key=lambda c: c["step"]):
        if step >= change["step"]:
            value = change["lr"]
    return value


def training_objective(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Next-token cross-entropy over the labelled positions (labels -100 elsewhere), mean over
    them as transformers' causal-LM loss, with `label_smoothing` (torch's: the target puts
    1 - s on the label and s spread evenly over the vocabulary).

    Why smoothing is a lab option: with plain cross-entropy a fitted sample's loss keeps falling
    as its logit margin grows; with smoothing the margin has an optimum, so the (plain) loss of a
    fitted sample has a floor near -log(1 - s). It does not stop single samples' losses moving
    between checkpoints (README, "Tuning the lab", reading (7))."""
    vocab = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, vocab).float(), labels[:, 1:].reshape(-1),
        ignore_index=-100, label_smoothing=label_smoothing,
    )


def decay_groups(model, no_decay: list[str]) -> list[dict]:
    """AdamW parameter groups: parameters whose name contains one of `no_decay` (e.g. "norm": the
    RMSNorm gains, as most LLM recipes) are never decayed, so strong decay on the weight matrices
    does not also flatten the output distribution; the rest follow the weight-decay schedule."""
    kept, decayed = [], []
    for name, parameter in model.named_parameters():
        (kept if any(pattern in name for pattern in no_decay) else decayed).append(parameter)
    if no_decay and not kept:
        raise GrokpathError(f"pretrain.no_decay {no_decay}: no parameter name contains any of these")
    groups = [{"params": decayed, "decays": True}]
    return groups + ([{"params": kept, "decays": False, "weight_decay": 0.0}] if kept else [])


def weight_decay(step: int, train_cfg: dict) -> float:
    """`pretrain.weight_decay`, replaced from each `weight_decay_schedule` entry's step on.

    Weight decay is what moves a network from a memorizing to a generalizing solution (Liu et
    al., Omnigrok, 2023): low decay while the training set is fit, higher decay after it.
    """
    value = train_cfg["weight_decay"]
    for change in sorted(train_cfg.get("weight_decay_schedule") or [], key=lambda c: c["step"]):
        if step >= change["step"]:
            value = change["weight_decay"]
    return value


class DivergenceWatch:
    """Remembers, on the device, the first step with a non-finite loss and the last finite loss.

    Recording costs no host sync (a `.item()` every step would stall the step); `check()` syncs
    once and stops pretraining with one line, and is called before every log row and checkpoint,
    so nothing of a diverged model is written.
    """

    def __init__(self, device):
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.last_step = torch.zeros((), dtype=torch.long, device=device)
        self.last_loss = torch.full((), float("nan"), device=device)

    def record(self, step: int, loss: torch.Tensor, logged: torch.Tensor) -> None:
        """`loss` is what is trained on (checked); `logged` the training log's loss (reported)."""
        finite, healthy = torch.isfinite(loss.detach()), self.first_bad < 0
        self.first_bad = torch.where(healthy & ~finite, step, self.first_bad)
        keep = healthy & finite
        self.last_step = torch.where(keep, step, self.last_step)
        self.last_loss = torch.where(keep, logged.detach().float(), self.last_loss)

    def check(self) -> None:
        bad = int(self.first_bad)
        if bad >= 0:
            last = (f"last finite loss {float(self.last_loss):.4f} at step {int(self.last_step)}"
                    if int(self.last_step) > 0 else "no finite loss before it")  # fmt: skip
            raise GrokpathError(f"pretraining diverged: non-finite loss at step {bad} ({last}); "
                                "no checkpoint written from that step on")  # fmt: skip


def save_checkpoint(model, tokenizer, dest: Path, step: int) -> None:
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CHECKPOINT_META).write_text(json.dumps({"step": step, "source": "lab"}) + "\n")


def probe_rows(corpus: CorpusSplits, cap: int, seed: int) -> dict[tuple[str, str], list[dict]]:
    """A fixed seeded subset of training samples (probing all of them each time is wasteful)."""
    rng = random.Random(f"{seed}:probe")
    picked = {}
    for domain, rows in corpus.train.items():
        picked[(domain, "train")] = rng.sample(rows, min(cap, len(rows)))
        picked[(domain, "test")] = corpus.test[domain][:cap]
    return picked


def probe_steps(train_cfg: dict, save_steps: list[int], total: int) -> set[int]:
    """The accuracy probe runs at every log step (dense curves: where between checkpoints a
    jump happens) and at every checkpoint (the rows the grokking verdict reads)."""
    every = train_cfg["log_every"]
    return set(range(every, total + 1, every)) | set(save_steps) | {total}


def monitor_steps(train_cfg: dict, save_steps: list[int], total: int) -> set[int]:
    """The pathway monitor's steps: the accuracy probe's schedule (`probe_steps`) at
    `pretrain.monitor_every` instead of `log_every`, a subset of the probe's steps (monitor_every
    must be a multiple of log_every): every monitor step has train and test accuracy beside it."""
    every, log_every = train_cfg.get("monitor_every", DEFAULT_EVERY_N_STEPS), train_cfg["log_every"]
    if every < 1 or every % log_every:
        raise GrokpathError(
            f"pretrain.monitor_every ({every}) must be a positive multiple of pretrain.log_every "
            f"({log_every}): the monitor runs at the accuracy probe's steps"
        )
    return probe_steps({**train_cfg, "log_every": every}, save_steps, total)


# The PathwayMonitor arguments `pretrain(monitor_settings=...)` takes (config `pretrain.monitor_pathways`, the keys of `pathways:`).
MONITOR_SETTINGS = ("threshold", "weights", "batch_size", "max_length", "max_pairs", "consistency_min_cos")


def lab_monitor(model, tokenizer, corpus: CorpusSplits, train_cfg: dict, settings: dict, seed: int,
                output) -> PathwayMonitor:  # fmt: skip
    """The monitor of the lab pretraining: `pretrain.monitor_samples` training samples per domain
    drawn with the config seed, the probe's loss over `pretrain.loss_span`, the pathway settings
    of the offline rules (`settings`: MONITOR_SETTINGS, from `pretrain.monitor_pathways`)."""
    unknown = sorted(set(settings) - set(MONITOR_SETTINGS))
    if unknown:
        raise GrokpathError(f"monitor settings: unknown {', '.join(unknown)}; "
                            f"expected some of {', '.join(MONITOR_SETTINGS)}")  # fmt: skip
    samples = draw_probe_samples(corpus.train, train_cfg.get("monitor_samples", DEFAULT_PROBE_SAMPLES), seed)
    return PathwayMonitor(
        model, samples, tokenizer, every_n_steps=train_cfg.get("monitor_every", DEFAULT_EVERY_N_STEPS),
        output=output, seed=seed, loss_span=train_cfg.get("loss_span", "all"), **settings,
    )


class GradientFilter:
    """Grokfast-EMA (Lee et al. 2024): grad += lamb * EMA(grad), amplifying slow components.

    pytorch-optimizer's `gradfilter_ema` does the filtering; this only keeps its state.
    """

    def __init__(self, model, alpha: float, lamb: float):
        from pytorch_optimizer.optimizer.grokfast import gradfilter_ema

        self._filter, self.model, self.alpha, self.lamb, self.state = gradfilter_ema, model, alpha, lamb, None

    def __call__(self) -> None:
        self.state = self._filter(self.model, grads=self.state, alpha=self.alpha, lamb=self.lamb)


def gradient_filter(model, train_cfg: dict) -> GradientFilter | None:
    spec = train_cfg.get("grokfast")
    return GradientFilter(model, spec["alpha"], spec["lamb"]) if spec else None


def weight_average(model, train_cfg: dict):
    """The exponential moving average of the weights that checkpoints, probe and monitor read
    (`pretrain.weight_ema`: its decay per step; null: they read the trained weights).

    torch's `AveragedModel` keeps the average in a copy of the model; made before any hook is
    registered on `model`, so the copy carries none. Buffers are copied, not averaged (the lab
    model's only buffers are the rotary frequencies, fixed).
    """
    decay = train_cfg.get("weight_ema")
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(decay)))


def compiled_for_training(model, train_cfg: dict):
    """`torch.compile` for the training forward only (`pretrain.compile`).

    A step of the lab model is bound by per-op overhead, not arithmetic, which fusing removes;
    the probe keeps calling the eager module (same parameters), so switching to eval mode and
    to the probe's shapes never triggers a recompile.
    """
    return torch.compile(model) if train_cfg.get("compile") else model


class StepReader:
    """Reads the weights at a step (checkpoint, accuracy probe, pathway monitor) in a worker
    thread, so the one-thread training loop goes on meanwhile and the machine's other core does
    the reading.

    `submit` copies the weights the checkpoints hold (`source`) into `copy`, a hook-free module of
    the same shape, then hands the task to the worker, which reads `copy` only; it first waits for
    the previous task, so every task reads the weights of its own step. Training never waits on a
    task otherwise, and draws nothing from torch's global generator (the monitor saves and
    restores it), so its numbers are those of reading in line. A task's exception is raised by
    the next `submit` or by `close`.
    """

    def __init__(self, source, copy_module):
        self.source, self.copy = source, copy_module.requires_grad_(False)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="step-reader")
        self._pending = None

    def submit(self, task) -> None:
        self.wait()
        self.copy.load_state_dict(self.source.state_dict())
        self._pending = self._pool.submit(task)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()


def pretrain(
    *,
    corpus_dir: str,
    tokenizer,
    domains: list[str],
    model_cfg: dict,
    train_cfg: dict,
    save_steps: list[int],
    checkpoint_dirs: dict[int, str],
    seed: int,
    device: str = "auto",
    threads: int = 1,
    on_probe=None,
    monitor_output: str | Path | None = None,
    monitor_settings: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train to the last of `save_steps`, saving a checkpoint at every step in `checkpoint_dirs`;
    returns (log, probe) tables. `on_probe(rows)` sees each probe's rows as they come (sweeps).

    With `monitor_output`, the pathway monitor (`lab_monitor`, `monitor_settings`) runs on an
    eager copy of the weights at `monitor_steps` and its table is written there when training
    ends; it does not change training (same losses step by step; tests/test_pretrain.py).
    Checkpoints, probe and monitor read that copy in a worker thread (`StepReader`). With
    `pretrain.weight_ema` they read the weights' moving average."""
    torch.set_num_threads(max(1, threads))
    dev = resolve_device(device)
    corpus = load_corpus(corpus_dir, domains)
    samples = [row for domain in domains for row in corpus.train[domain]]
    max_length = model_cfg["max_position_embeddings"]
    ids, attention, labels = training_tensors(tokenizer, samples, max_length, train_cfg.get("loss_span", "all"))
    model = init_lab_model(model_cfg, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed).to(dev)
    log.info("lab model: %d parameters, %d training samples, device %s, %d threads",
             sum(p.numel() for p in model.parameters()), len(samples), dev, torch.get_num_threads())
    optimizer = torch.optim.AdamW(
        decay_groups(model, train_cfg.get("no_decay") or []), lr=train_cfg["lr"],
        weight_decay=train_cfg["weight_decay"], betas=tuple(train_cfg["betas"]),
    )
    slow_gradients = gradient_filter(model, train_cfg)
    averaged = weight_average(model, train_cfg)
    # what a checkpoint holds: the averaged weights when configured; read at each step from a
    # copy made before any hook is registered on `model`
    reader = StepReader(averaged.module if averaged is not None else model, copy.deepcopy(model))
    smoothing = float(train_cfg.get("label_smoothing") or 0.0)
    train_forward = compiled_for_training(model, train_cfg)
    balance = RouterBalance(model, model_cfg["top_k"], model_cfg["num_experts"])
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(train_cfg["batch_size"], len(samples))
    probes = probe_rows(corpus, train_cfg["probe_samples"], seed)
    total = max(save_steps)
    probe_at = probe_steps(train_cfg, save_steps, total)
    monitor, monitor_at = None, set()
    if monitor_output is not None:
        monitor_at = monitor_steps(train_cfg, save_steps, total)
        # the eager copy: a compiled training forward keeps its graphs (no recompiles)
        monitor = lab_monitor(reader.copy, tokenizer, corpus, train_cfg, dict(monitor_settings or {}), seed,
                              monitor_output)  # fmt: skip
    log_rows, probe_table = [], []
    order = torch.randperm(len(samples), generator=generator)
    cursor, tokens_seen, start = 0, 0, time.perf_counter()
    bar = tqdm(range(1, total + 1), desc="pretrain", unit="step", mininterval=2.0)
    divergence = DivergenceWatch(dev)

    def read_step(step: int, loss: float, steps_per_s: float, tokens_per_s: float) -> None:
        """What is read at `step`, in the reader's thread: checkpoint, probe, monitor."""
        if step in checkpoint_dirs:
            save_checkpoint(reader.copy, tokenizer, Path(checkpoint_dirs[step]), step)
        if step in probe_at:
            rows = _probe(reader.copy, tokenizer, probes, dev, max_length, step, step in save_steps)
            probe_table.extend(rows)
            if on_probe:
                on_probe(rows)
            if step in checkpoint_dirs:
                summary = " ".join(f"{r['domain']}/{r['split']}={r['accuracy']:.2f}" for r in rows)
                log.info("step %d: loss %.4f, %.1f steps/s, %.0f tokens/s; probe %s", step, loss, steps_per_s,
                         tokens_per_s, summary)  # fmt: skip
        if monitor is not None and step in monitor_at:
            monitor.measure(step)

    try:
        for step in bar:
            if cursor + batch_size > len(order):
                order, cursor = torch.randperm(len(samples), generator=generator), 0
            index = order[cursor : cursor + batch_size]
            cursor += batch_size
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, train_cfg["lr"], train_cfg["warmup_steps"],
                                            train_cfg.get("lr_schedule"))  # fmt: skip
                group["weight_decay"] = weight_decay(step, train_cfg) if group["decays"] else 0.0
            model.train()
            batch_ids, batch_mask, batch_labels = ids[index].to(dev), attention[index].to(dev), labels[index].to(dev)
            balance.reset()
            out = train_forward(input_ids=batch_ids, attention_mask=batch_mask, labels=batch_labels)
            aux_loss = balance.loss(batch_mask)
            # out.loss (plain cross-entropy) is what the log reports; smoothing only changes the objective
            objective = training_objective(out.logits, batch_labels, smoothing) if smoothing else out.loss
            loss = objective + model_cfg["router_aux_loss_coef"] * aux_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if slow_gradients:
                slow_gradients()
            if train_cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            divergence.record(step, loss, out.loss)
            tokens_seen += int(batch_mask.sum())
            if step % train_cfg["log_every"] == 0 or step == total or step in checkpoint_dirs:
                divergence.check()  # before anything of a diverged model is logged or saved
                elapsed = time.perf_counter() - start
                log_rows.append({
                    "step": step, "loss": out.loss.item(), "aux_loss": aux_loss.item(),
                    "lr": optimizer.param_groups[0]["lr"], "weight_decay": optimizer.param_groups[0]["weight_decay"],
                    "tokens": tokens_seen, "elapsed_s": elapsed,
                })
                bar.set_postfix(loss=f"{out.loss.item():.3f}", tok_s=f"{tokens_seen / elapsed:.0f}")
            if step in checkpoint_dirs or step in probe_at or step in monitor_at:
                elapsed = time.perf_counter() - start
                reader.submit(partial(read_step, step, out.loss.item(), step / elapsed, tokens_seen / elapsed))
    finally:
        reader.close()
    balance.remove()
    if monitor is not None:
        monitor.close()
        elapsed = time.perf_counter() - start
        log.info("monitor: %d steps, %.1f s of %.1f s (%.1f %%) -> %s", len(monitor_at), monitor.seconds,
                 elapsed, 100 * monitor.seconds / max(elapsed, 1e-9), monitor_output)  # fmt: skip
    return pd.DataFrame(log_rows), pd.DataFrame(probe_table, columns=PROBE_COLUMNS)


PROBE_COLUMNS = ["step", "domain", "split", "n", "accuracy", "checkpoint"]


def _probe(model, tokenizer, probes, device, max_length, step, at_checkpoint: bool) -> list[dict]:
    return [
        {"step": step, "domain": domain, "split": split, "n": len(rows),
         "accuracy": probe_accuracy(model, tokenizer, rows, device, max_length), "checkpoint": at_checkpoint}
        for (domain, split), rows in probes.items()
    ]


def write_logs(log_df: pd.DataFrame, probe_df: pd.DataFrame, log_path: str, probe_path: str) -> None:
    write_parquet(log_df, log_path)
    write_parquet(probe_df, probe_path)
