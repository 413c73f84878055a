# Python helpers shared by the rules: config validation, paths and input functions.
import os
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from grokpath.config import validate_config
from grokpath.dependencies import check_dependencies
from grokpath.errors import GrokpathError
from grokpath.sources.hub import revision_name
from grokpath.sources.local_checkpoints import local_checkpoints

try:
    config.update(validate_config(config))  # every optional key filled with its default
except GrokpathError as exc:
    raise WorkflowError(str(exc)) from None

# envs/*.yaml install grokpath with `-e ${GROKPATH_ROOT}` (pip expands it): Snakemake creates each
# env from a copy of its file under .snakemake/conda/, so a path relative to envs/ would miss.
os.environ.setdefault("GROKPATH_ROOT", workflow.basedir)
# Jobs copy their progress bars into their log files (grokpath.entry): one update per 30 s keeps
# a long job's log readable. tqdm reads this when a job imports it; set it yourself to override.
os.environ.setdefault("TQDM_MININTERVAL", "30")


def uses_conda():
    settings = workflow.deployment_settings
    return settings is not None and DeploymentMethod.CONDA in settings.deployment_method


try:
    # Checkpoints of your own run (checkpoints.source local): found and checked here, so a bad
    # folder stops the dry run; they are read where they lie, never written or deleted.
    LOCAL = (
        local_checkpoints(
            config["checkpoints"]["local"], config["checkpoints"].get("steps")
        )
        if config["checkpoints"]["source"] == "local"
        else None
    )
    # Optional packages the config needs (sentence-transformers for a MiniLM matching), in the
    # venv the jobs run in; with --sdm conda the rules' envs list them.
    if not uses_conda():
        check_dependencies(config)
except GrokpathError as exc:
    raise WorkflowError(str(exc)) from None

RUN = f"results/{config['run']}"
DOMAINS = list(config["domains"])
STEPS = LOCAL.steps if LOCAL else list(config["checkpoints"]["steps"])
# The torch rules' env: PyPI's torch (a CUDA build) with device cuda, the CPU wheel otherwise.
CUDA_ENVS = config["device"] == "cuda"
TORCH_ENV = "../envs/torch-cuda.yaml" if CUDA_ENVS else "../envs/torch.yaml"
LMEVAL_ENV = "../envs/lmeval-cuda.yaml" if CUDA_ENVS else "../envs/lmeval.yaml"
SPLITS = ["train", "valid", "test"]


wildcard_constraints:
    step=r"\d+",
    chunk=r"\d+(-\d+)?",
    domain="|".join(DOMAINS),


def gpus():
    """GPU count a torch rule asks for; profiles map it to the cluster's own flags.

    From the config alone (`device: cuda`), never from resolving `auto` here: the submit host
    need not have a GPU. A profile's set-resources (profiles/slurm: gpu per rule) overrides it,
    e.g. gpu: N for a `device_map: auto` model spread over N GPUs.
    """
    return 1 if config["device"] == "cuda" else 0


def corpus_files():
    return expand(
        f"{RUN}/corpus/{{domain}}/{{split}}.jsonl", domain=DOMAINS, split=SPLITS
    )


def checkpoint_dir(step):
    """A step's checkpoint folder: results/{run}/checkpoints/step{S} (written by pretrain_lab or
    download_checkpoint), or a local run's own folder, which no rule writes."""
    if LOCAL:
        return LOCAL.folders[int(step)]
    return f"{RUN}/checkpoints/step{step}"


def checkpoint_params(step=None, steps=None):
    """Params of a rule that loads checkpoints, beyond the usual ones; each is present only
    where it is needed, so the params of runs made without them stay as they were (no rerun):
    - local checkpoints carry no grokpath_checkpoint.json: `step` (or `steps`, a chunk's, in
      order) and, when checkpoints.local.tokenizer names one, `tokenizer`;
    - `device_map` when the config sets one.
    """
    params = {}
    if LOCAL:
        if step is not None:
            params["step"] = step
        if steps is not None:
            params["steps"] = steps
        if LOCAL.tokenizer:
            params["tokenizer"] = LOCAL.tokenizer
    if config.get("device_map"):
        params["device_map"] = config["device_map"]
    return params


def checkpoint_for_step(wildcards):
    return checkpoint_dir(wildcards.step)


def hub_revision(wildcards):
    step = int(wildcards.step)
    revisions = config["checkpoints"].get("hub", {}).get("revisions", {})
    return revisions.get(str(step), revisions.get(step, revision_name(step)))


def loss_tables():
    """sample_loss's outputs: one folder per chunk of checkpoints, `step{S}.parquet` inside."""
    return [f"{RUN}/loss/steps{name}" for name in step_chunks("loss")]


def eps_by_domain():
    return {name: domain["eps"] for name, domain in config["domains"].items()}


def is_lab(key):
    return config[key]["source"] == "lab"


def model_threads(hub_threads):
    """Threads of a job whose work grows with the model: torch forwards, pathway distances.

    A lab job is mostly single-threaded start-up (imports, loading) around a second or two of
    tiny matmuls, so one thread each lets two jobs share two cores, which finishes the lab's
    per-checkpoint jobs in about half the wall time of one two-thread job after another (and
    gives the same numbers). Hub checkpoints get `hub_threads`; --set-threads overrides both.
    """
    return 1 if is_lab("checkpoints") else hub_threads


def final_outputs():
    outputs = [
        f"{RUN}/memorization/samples.parquet",
        f"{RUN}/memorization/groups.parquet",
        f"{metrics_dir()}/edit_distance.parquet",
        f"{RUN}/metrics/loss_baselines.parquet",
        f"{RUN}/eval/items.parquet",
        f"{RUN}/eval/generalization.parquet",
        f"{RUN}/eval/matches.parquet",
        f"{RUN}/versions.json",
    ]
    if is_lab("checkpoints"):
        outputs.append(f"{RUN}/train/probe.parquet")
    return outputs + analysis_outputs()


def threshold_of(wildcards):
    return float(wildcards.threshold)


def metrics_dir(threshold=None):
    threshold = config["pathways"]["threshold"] if threshold is None else threshold
    return f"{RUN}/metrics/thr{threshold}"


def pathway_tables():
    """extract_pathways' outputs: one folder per chunk of checkpoints, holding `step{S}.parquet`
    (pathways) and `step{S}.routers.parquet` (router matrices)."""
    return [f"{RUN}/pathways/steps{name}" for name in step_chunks("pathways")]


def step_chunks(block):
    """The per-checkpoint rules (sample_loss, extract_pathways, evaluate) take checkpoints in
    chunks of their config block's `checkpoints_per_job`, one process each: at lab scale a job
    is seconds of imports around a second of work.

    A chunk is named by its first and last step, never by its position: a step added to the
    config then leaves the other chunks' names, and so their finished jobs, alone.
    """
    size = config[block]["checkpoints_per_job"]
    chunks = [STEPS[i : i + size] for i in range(0, len(STEPS), size)]
    return {chunk_name(chunk): chunk for chunk in chunks}


def eval_chunks():
    return step_chunks("evaluation")


def chunk_name(steps):
    return str(steps[0]) if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"


def chunk_steps(block):
    """Input function: the steps of a `{chunk}` job of the rule that `block` configures."""
    return lambda wildcards: step_chunks(block)[wildcards.chunk]


def chunk_checkpoints(block):
    """Input function: the checkpoint folders of a `{chunk}` job, in step order."""
    steps = chunk_steps(block)
    return lambda wildcards: [checkpoint_dir(step) for step in steps(wildcards)]


def eval_chunk_adapters(wildcards):
    if not config["instruction_tuning"]["enabled"]:
        return []
    return [
        f"{RUN}/adapters/step{step}" for step in chunk_steps("evaluation")(wildcards)
    ]


def eval_chunk_tables(kind):
    return [f"{RUN}/eval/chunks/steps{name}.{kind}.parquet" for name in eval_chunks()]


def task_template_dir(wildcards=None):
    """Task YAML folder: relative paths in the config are relative to the repo, not the workdir."""
    return str(Path(workflow.basedir) / config["evaluation"]["task_dir"])


def task_template_files():
    folder = Path(task_template_dir())
    return sorted(
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def instruction_inputs():
    if config["instruction_tuning"]["format"] == "lab":
        return expand(f"{RUN}/corpus/{{domain}}/train.jsonl", domain=DOMAINS)
    return [f"{RUN}/instructions/instructions.jsonl"]


def final_step_checkpoint():
    return checkpoint_dir(STEPS[-1])


def step_of(wildcards):
    return int(wildcards.step)
