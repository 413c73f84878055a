# Python helpers shared by the rules: config validation, paths and input functions.
from grokpath.config import validate_config
from grokpath.errors import GrokpathError
from grokpath.hub import revision_name

try:
    validate_config(config)
except GrokpathError as exc:
    raise WorkflowError(str(exc)) from None

RUN = f"results/{config['run']}"
DOMAINS = list(config["domains"])
STEPS = list(config["checkpoints"]["steps"])
SPLITS = ["train", "valid", "test"]


wildcard_constraints:
    step=r"\d+",
    domain="|".join(DOMAINS),


def gpus():
    """GPU count a torch rule asks for; profiles map it to the cluster's own flags."""
    return 1 if config["device"] == "cuda" else 0


def corpus_files():
    return expand(f"{RUN}/corpus/{{domain}}/{{split}}.jsonl", domain=DOMAINS, split=SPLITS)


def checkpoint_dir(step):
    return f"{RUN}/checkpoints/step{step}"


def checkpoint_for_step(wildcards):
    return checkpoint_dir(wildcards.step)


def hub_revision(wildcards):
    step = int(wildcards.step)
    revisions = config["checkpoints"].get("hub", {}).get("revisions", {})
    return revisions.get(str(step), revisions.get(step, revision_name(step)))


def loss_tables():
    return expand(f"{RUN}/loss/step{{step}}.parquet", step=STEPS)


def eps_by_domain():
    return {name: domain["eps"] for name, domain in config["domains"].items()}


def is_lab(key):
    return config[key]["source"] == "lab"


def final_outputs():
    outputs = [
        f"{RUN}/memorization/samples.parquet",
        f"{RUN}/memorization/groups.parquet",
    ]
    if is_lab("checkpoints"):
        outputs.append(f"{RUN}/train/probe.parquet")
    return outputs
