"""Rule loss_baselines: training loss, its moving average and validation loss, tidy."""

from grokpath.entry import as_list, run
from grokpath.loss.baselines import loss_baselines
from grokpath.loss.sample_loss import read_loss_tables
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    losses = read_loss_tables(as_list(args["losses"]))
    memorization = read_parquet(args["memorization"], ["domain", "sample_id", "t_star", "memorized"])
    write_parquet(loss_baselines(losses, memorization, int(args["window"])), args["baselines"])


run(main, globals())
