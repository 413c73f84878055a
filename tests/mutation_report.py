"""Print mutmut's kill rate per mutated module and overall (`make mutation` runs it after mutmut).

Reads mutmut's per-file results (mutants/<path>.meta, written by `mutmut run`). Kill rate =
(killed + timed out) / mutants checked, as mutmut's own badge counts it; mutants not checked yet
(a run limited to some names, or interrupted) are counted apart and left out of the rate.

    python tests/mutation_report.py [--min RATE]   # exit 1 when the overall rate is below RATE
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check"}


def statuses(meta: Path) -> Counter:
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return Counter(status_by_exit_code[code] for code in codes.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=None, help="fail below this overall rate")
    parser.add_argument("--root", default="mutants", help="mutmut's working folder")
    args = parser.parse_args()
    metas = sorted(Path(args.root).rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {args.root}/: run `mutmut run` first")
        return 1
    total = Counter()
    print(f"{'module':<40} {'killed':>7} {'survived':>8} {'other':>6} {'unchecked':>9} {'rate':>7}")
    for meta in metas:
        counts = statuses(meta)
        total += counts
        print(_line(str(meta.relative_to(args.root))[: -len(".meta")], counts))
    print(_line("all", total))
    checked = sum(total.values()) - total["not checked"] - total["skipped"]
    rate = sum(total[s] for s in KILLED) / checked if checked else float("nan")
    if args.min is not None and not rate >= args.min:
        print(f"kill rate {rate:.1%} is below {args.min:.0%}")
        return 1
    return 0


def _line(name: str, counts: Counter) -> str:
    killed = sum(counts[s] for s in KILLED)
    unchecked = counts["not checked"] + counts["skipped"]
    other = sum(counts.values()) - killed - counts["survived"] - unchecked  # no tests, suspicious
    checked = sum(counts.values()) - unchecked
    rate = f"{killed / checked:.1%}" if checked else "-"
    return f"{name:<40} {killed:>7} {counts['survived']:>8} {other:>6} {unchecked:>9} {rate:>7}"


if __name__ == "__main__":
    sys.exit(main())
