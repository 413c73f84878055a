"""Retune the lab: pretrain variants of a config in-process and watch the accuracy probe.

The tool the lab settings were chosen with (issue "The lab groks"), kept so the next person can
retune. Each variant is the config plus `key.path=value` overrides (values parsed as YAML); it
generates the corpus and tokenizer as the workflow does, pretrains without saving checkpoints,
prints the dense probe (train/test accuracy per domain) as it goes, and writes it to Parquet.

    python -m grokpath.lab.sweep --config config/config.yaml --steps 2000 \\
        --set pretrain.grokfast.lamb=1.0 --set domains.math.lab.train_fraction=0.5 \\
        --out results/sweeps/lamb1.parquet

The probe is a guide, not the judge: the judge is the workflow's verdict (rule `grokking`),
which reads lm-eval's test accuracy and the memorization table of a full run. `--memorization`
comes closer: it saves the config's checkpoints, scores every training sample's loss there as
rule `sample_loss` does (config `loss`), dates memorization as rule `memorization` does (config
`memorization`, each domain's eps) and gives the verdict with t_mem50 — criterion (c) — still
with the probe's test accuracy in place of lm-eval's.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from grokpath.config import load_config
from grokpath.evaluation.instruction_tuning import LAB_TEMPLATE_WORDS
from grokpath.lab.corpus import write_corpus
from grokpath.lab.tokenizer import build_tokenizer
from grokpath.tableio import write_parquet


def apply_override(config: dict, assignment: str) -> dict:
    """`a.b.c=value` sets config[a][b][c] (value parsed as YAML); the path must exist up to c's parent."""
    path, _, raw = assignment.partition("=")
    if not raw and "=" not in assignment:
        raise SystemExit(f"--set {assignment!r}: expected key.path=value")
    keys = path.split(".")
    node = config
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise SystemExit(f"--set {assignment!r}: {key!r} is not a mapping in the config")
        node = node[key]
    node[keys[-1]] = yaml.safe_load(raw)
    return config


def probe_line(rows: list[dict]) -> str:
    cells = {}
    for row in rows:
        cells.setdefault(row["domain"], {})[row["split"]] = row["accuracy"]
    return "  ".join(f"{d[:6]:>6} {c.get('train', float('nan')):.2f}/{c.get('test', float('nan')):.2f}"
                     for d, c in cells.items())


def probe_accuracies(probe: pd.DataFrame, steps) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): domain, step, accuracy of the probe at `steps`."""
    at = probe[probe["step"].isin(steps)]
    columns = ["domain", "step", "accuracy"]
    return at.loc[at["split"] == "train", columns], at.loc[at["split"] == "test", columns]


def probe_verdict(probe: pd.DataFrame, chance: dict[str, float], steps: list[int]) -> pd.DataFrame:
    """The grokking verdict with the probe's test accuracy in place of lm-eval's, at `steps`;
    memorization is unknown here, so `after_memorization` stays open (no t_mem50)."""
    from grokpath.analysis.verdict import grokking_verdict

    train, test = probe_accuracies(probe, steps)
    empty = pd.DataFrame({"domain": pd.Series(dtype=str), "t_star": pd.Series(dtype="Int64")})
    columns = ["domain", "t_fit", "gain_at_fit", "final_gain", "t_gen50", "fits", "generalizes", "late"]
    return grokking_verdict(train, test, empty, chance)[columns]


def memorization_verdict(probe: pd.DataFrame, losses: pd.DataFrame, config: dict,
                         chance: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(verdict with t_mem50, memorized samples per t* and domain) from the checkpoint losses of
    the training samples, with the config's memorization settings; test accuracy from the probe."""
    from grokpath.analysis.verdict import grokking_verdict
    from grokpath.loss.memorization import memorization_table

    settings = config["memorization"]
    eps = {name: spec.get("eps", "auto") for name, spec in config["domains"].items()}
    samples, groups, _ = memorization_table(
        losses, eps, settings["delta"], settings["eps_step"], settings["target_fraction"])
    steps = sorted(losses["step"].unique())
    train, test = probe_accuracies(probe, steps)
    memorized = samples.loc[samples["memorized"], ["domain", "t_star"]]
    verdict = grokking_verdict(train, test, memorized, chance)
    eps_used = samples.groupby("domain")["eps"].first()
    verdict = verdict.assign(eps=verdict["domain"].map(eps_used))
    counts = groups.pivot_table(index="t_star", columns="domain", values="n_samples", fill_value=0)
    return verdict, counts


def checkpoint_losses(config: dict, checkpoint_dirs: dict[int, Path], corpus_dir: Path,
                      threads: int) -> pd.DataFrame:  # fmt: skip
    from grokpath.loss.sample_loss import sample_loss_table

    loss = config["loss"]
    tables = [
        sample_loss_table(
            checkpoint_dir=str(path), corpus_dir=str(corpus_dir), domains=list(config["domains"]),
            step=step, batch_size=loss["batch_size"], max_length=loss["max_length"],
            append_eos=loss["append_eos"], span=loss.get("span", "all"), device="cpu")
        for step, path in sorted(checkpoint_dirs.items())
    ]  # fmt: skip
    return pd.concat(tables, ignore_index=True)


def loss_trend_line(losses: pd.DataFrame) -> str:
    """Median training loss per domain at each checkpoint: how far the losses still move."""
    train = losses[losses["split"] == "train"]
    table = train.groupby(["step", "domain"])["loss"].median().unstack("domain")
    return "median training loss per checkpoint\n" + table.round(3).to_string()


def run_variant(config: dict, steps: int, threads: int, workdir: Path,
                checkpoints: list[int] | None = None) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame | None]:  # fmt: skip
    """(probe, chance levels, training-sample losses at `checkpoints` or None)."""
    from grokpath.analysis.verdict import chance_levels
    from grokpath.lab.pretrain import pretrain

    domains = {name: spec["lab"] for name, spec in config["domains"].items()}
    manifest = write_corpus(domains, config["seed"], workdir / "corpus")
    tokenizer = build_tokenizer(manifest["vocabulary"] + list(LAB_TEMPLATE_WORDS))
    start = time.perf_counter()

    def show(rows):
        elapsed = time.perf_counter() - start
        print(f"step {rows[0]['step']:>6} {elapsed:6.0f}s  {probe_line(rows)}", flush=True)

    checkpoint_dirs = {step: workdir / f"step{step}" for step in checkpoints or []}
    _, probe = pretrain(
        corpus_dir=str(workdir / "corpus"), tokenizer=tokenizer, domains=list(domains),
        model_cfg=config["model"], train_cfg=config["pretrain"], save_steps=sorted({steps, *checkpoint_dirs}),
        checkpoint_dirs={s: str(p) for s, p in checkpoint_dirs.items()}, seed=config["seed"], device="cpu",
        threads=threads, on_probe=show,
    )  # fmt: skip
    losses = checkpoint_losses(config, checkpoint_dirs, workdir / "corpus", threads) if checkpoint_dirs else None
    return probe, chance_levels(manifest, workdir / "corpus"), losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, help="train this long (default: the config's last checkpoint); "
                        "the closing verdict then reads every probe step instead of the checkpoints")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the probe table here (Parquet); with --memorization the "
                        "training-sample losses go beside it (<out>.losses.parquet)")
    parser.add_argument("--memorization", action="store_true",
                        help="also save the config's checkpoints (up to --steps), score the training "
                        "samples there and give the verdict with t_mem50 (criterion c)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = copy.deepcopy(load_config(args.config))
    for assignment in args.overrides:
        apply_override(config, assignment)
    steps = args.steps or max(config["checkpoints"]["steps"])
    print(f"# {args.config} {' '.join(args.overrides)} steps={steps}", flush=True)
    saved = [s for s in config["checkpoints"]["steps"] if s <= steps]
    with tempfile.TemporaryDirectory() as tmp:
        probe, chance, losses = run_variant(config, steps, args.threads, Path(tmp),
                                            saved if args.memorization else None)  # fmt: skip
    checkpoints = saved if not args.steps else sorted(probe["step"].unique())
    print(probe_verdict(probe, chance, checkpoints).to_string(index=False))
    variant = " ".join(args.overrides) or "base"
    if losses is not None:
        verdict, counts = memorization_verdict(probe, losses, config, chance)
        print(loss_trend_line(losses))
        print("memorized samples per t*\n" + counts.to_string())
        print(verdict.to_string(index=False), flush=True)
    if args.out:
        write_parquet(probe.assign(variant=variant), args.out)
        if losses is not None:
            write_parquet(losses.assign(variant=variant), str(Path(args.out).with_suffix(".losses.parquet")))


if __name__ == "__main__":
    main(sys.argv[1:])
