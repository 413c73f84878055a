"""Rule theory_toy: one (edit distance, effective dimension) point per seed (paper App. C.4).

Output: toy (parquet, columns in grokpath.analysis.theory). Params: seed (base), n_seeds, and the
ToySetup fields (n_samples, dim, n_experts, n_clusters, cluster_noise, sharpness,
routing_specificity, ridge, threshold, expert_kernel).
"""

from grokpath.analysis.theory import ToySetup, toy_table
from grokpath.entry import log, run
from grokpath.errors import GrokpathError
from grokpath.tableio import write_parquet

SETUP_KEYS = ("n_samples", "dim", "n_experts", "n_clusters", "cluster_noise", "sharpness",
              "routing_specificity", "ridge", "threshold", "expert_kernel")  # fmt: skip


def main(args: dict) -> None:
    missing = [k for k in SETUP_KEYS if k not in args]
    if missing:
        raise GrokpathError(f"theory toy: missing parameter(s) {', '.join(missing)}")
    values = {k: args[k] for k in SETUP_KEYS}
    values["routing_specificity"] = tuple(float(v) for v in values["routing_specificity"])
    setup = ToySetup(**values)
    base = int(args["seed"])
    seeds = range(base, base + int(args["n_seeds"]))
    log.info("theory toy: %d seeds from %d", len(seeds), base)
    write_parquet(toy_table(seeds, setup), args["toy"])


run(main, globals())
