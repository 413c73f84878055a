"""Rule loss_baselines: training loss, its moving average and validation loss, tidy."""

import pandas as pd

from grokpath.entry import as_list, run
from grokpath.loss.baselines import loss_baselines
from grokpath.loss.sample_loss import LOSS_COLUMNS
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    losses = pd.concat([read_parquet(p, LOSS_COLUMNS) for p in as_list(args["losses"])], ignore_index=True)
    memorization = read_parquet(args["memorization"], ["domain", "sample_id", "t_star", "memorized"])
    write_parquet(loss_baselines(losses, memorization, int(args["window"])), args["baselines"])


run(main, globals())
