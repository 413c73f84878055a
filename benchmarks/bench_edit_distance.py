"""All-pairs pathway edit distance: ours vs a pure-Python DP and vs raw rapidfuzz cdist.

Prints ratios measured in this run (no assertions). Goals: >= 100x faster than the pure-Python
dynamic programme, within 1.3x of raw `rapidfuzz.process.cdist` on the same strings.

Pathways come from Dirichlet(alpha) router weights run through our pathway code; alpha 0.4 with
16 layers x 64 experts gives strings of ~600 characters, the size the paper's distances
(~500-690) imply. The DP is timed on `--dp-pairs` pairs and scaled to all pairs (it would take
hours on all of them); the scale factor is printed.

    python benchmarks/bench_edit_distance.py --n 1500 --workers 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from grokpath.routing.metrics import mean_pairwise_distance
from grokpath.routing.pathways import id_pathways, id_token_string, pathway_string


def dp_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="accepted for a uniform interface; edit distances always run on the CPU",
    )
    parser.add_argument("--n", type=int, default=1500, help="pathways (all n(n-1)/2 pairs)")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--experts", type=int, default=64)
    parser.add_argument(
        "--alpha", type=float, default=0.4, help="Dirichlet concentration of router weights"
    )
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument(
        "--dp-pairs", type=int, default=30, help="pairs timed with the pure-Python DP"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    weights = rng.dirichlet(np.full(args.experts, args.alpha), size=(args.n, args.layers))
    paths = id_pathways(weights, args.threshold)
    strings = [pathway_string(p) for p in paths]
    id_strings = [id_token_string(p) for p in paths]
    n_pairs = args.n * (args.n - 1) // 2
    print(
        f"{args.n} pathways, {n_pairs:,} pairs, mean length {np.mean([len(s) for s in strings]):.0f} chars "
        f"/ {np.mean([len(s) for s in id_strings]):.0f} id tokens; workers={args.workers} (device ignored: CPU)"
    )

    big = n_pairs + 1
    t_ours, ours = best_of(
        args.repeats, lambda: mean_pairwise_distance(strings, max_pairs=big, workers=args.workers)
    )
    t_raw, matrix = best_of(
        args.repeats,
        lambda: process.cdist(
            strings, strings, scorer=Levenshtein.distance, dtype=np.int32, workers=args.workers
        ),
    )
    t_ours_id, _ = best_of(
        args.repeats,
        lambda: mean_pairwise_distance(id_strings, max_pairs=big, workers=args.workers),
    )
    assert ours.exact  # a benchmark of the sampled path would not be all pairs

    dp_i, dp_j = np.triu_indices(args.n, k=1)
    pick = rng.choice(n_pairs, size=min(args.dp_pairs, n_pairs), replace=False)
    start = time.perf_counter()
    dp_values = [dp_levenshtein(strings[dp_i[k]], strings[dp_j[k]]) for k in pick]
    t_dp_sample = time.perf_counter() - start
    t_dp = t_dp_sample / len(pick) * n_pairs
    if dp_values != [int(matrix[dp_i[k], dp_j[k]]) for k in pick]:
        print("WARNING: DP and rapidfuzz disagree")

    print(
        f"ours (char, exact mean {ours.mean:.1f}):  {t_ours:8.3f} s  ({n_pairs / t_ours:,.0f} pairs/s)"
    )
    print(f"ours (id level):                {t_ours_id:8.3f} s")
    print(f"raw rapidfuzz cdist (char):     {t_raw:8.3f} s")
    print(
        f"pure-Python DP (char):          {t_dp:8.1f} s  (timed {len(pick)} pairs in {t_dp_sample:.2f} s, "
        f"scaled x{n_pairs / len(pick):,.0f})"
    )
    print(f"ratio ours / raw cdist:   {t_ours / t_raw:.2f}   (goal <= 1.3)")
    print(f"speed-up over pure DP:    {t_dp / t_ours:,.0f}x   (goal >= 100x)")


if __name__ == "__main__":
    main()
