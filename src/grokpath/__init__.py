"""grokpath: memorization-to-generalization monitoring from MoE router pathways.

All real logic of the workflow lives here; `workflow_scripts/` only adapts Snakemake's
`snakemake` object (or a command line) to these functions.
"""

__version__ = "0.1.0"
