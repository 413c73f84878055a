"""grokpath: memorization-to-generalization monitoring from MoE router pathways.

All real logic of the workflow lives here; `workflow_scripts/` only adapts Snakemake's
`snakemake` object (or a command line) to these functions. The package is grouped by DAG stage
(`lab`, `sources`, `loss`, `routing`, `evaluation`, `analysis`; `figures` only draws): see the
README's "Package layout".

The documented entry points are re-exported here (`from grokpath import PathwayMonitor`). They
are resolved on first use (PEP 562), so `import grokpath` stays light: every workflow job imports
the package, and most of them never need torch or transformers.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    # the online monitor (README "Monitor your own training run")
    "PathwayMonitor": "grokpath.routing.monitor",
    "PathwayMonitorCallback": "grokpath.routing.monitor",
    "draw_probe_samples": "grokpath.routing.monitor",
    # pathways and the two metrics
    "extract_pathways": "grokpath.routing.extract",
    "ADAPTERS": "grokpath.routing.routers",
    "PathwayTable": "grokpath.routing.pathways",
    "id_pathways": "grokpath.routing.pathways",
    "load_pathway_table": "grokpath.routing.pathways",
    "read_extraction_metadata": "grokpath.routing.pathways",
    "edit_distance_table": "grokpath.routing.metrics",
    "consistency_table": "grokpath.routing.metrics",
    "baselines_table": "grokpath.routing.metrics",
    # the lab: pretraining and the grokking verdict
    "pretrain": "grokpath.lab.pretrain",
    "grokking_verdict": "grokpath.analysis.verdict",
    "GrokpathError": "grokpath.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grokpath' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
