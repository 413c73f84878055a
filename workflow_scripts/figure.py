"""One paper figure from tidy tables (every figure rule): params.figure names it (fig1 ... fig13,
table1); the other named inputs, outputs and params are what that figure reads (see
grokpath.figures.render). Command line: python workflow_scripts/figure.py figure=fig8 toy=... png=... pdf=...
"""

from grokpath.entry import run
from grokpath.figures.render import render


def main(args: dict) -> None:
    render(str(args["figure"]), args)


run(main, globals())
