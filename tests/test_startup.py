"""Start-up cost: modules that light jobs import keep heavy libraries out of their imports.

Every workflow job is a fresh Python process, so a library imported and never used costs each job
its import time (torch about 2 s, statsmodels.api 3 s, scipy.stats 1 s on the demo machine). The
modules below are imported by jobs that do not run a model (memorization, the metric and figure
jobs, the summary), so they import those libraries inside the functions that use them.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "statsmodels", "scipy.stats", "scipy.optimize")
LIGHT_MODULES = (
    "grokpath.loss.sample_loss",  # LOSS_COLUMNS, for memorization, loss_baselines and the ablations
    "grokpath.routing.pathways",  # the pathway table reader
    "grokpath.routing.routers",  # read_router_weights, for pathway_metrics
    "grokpath.routing.metrics",
    "grokpath.analysis.stats",
    "grokpath.evaluation.matching",  # MATCH_COLUMNS, for figures and the summary
    "grokpath.figures.render",
)


def test_light_modules_do_not_import_heavy_libraries():
    code = (
        f"import sys\nfor m in {LIGHT_MODULES!r}: __import__(m)\n"
        f"print(' '.join(h for h in {HEAVY!r} if h in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], (
        f"imported at start-up: {result.stdout.strip()} "
        "(find the importer with python -X importtime -c 'import <module>')"
    )
