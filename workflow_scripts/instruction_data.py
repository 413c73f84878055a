"""Rule instruction_data: sample the paper's instruction-tuning sets into one JSONL file."""

from grokpath.entry import run
from grokpath.evaluation.instruction_data import sample_instructions
from grokpath.tableio import write_jsonl


def main(args: dict) -> None:
    records = sample_instructions(args["datasets"], args.get("subsample"), int(args["seed"]))
    write_jsonl(records, args["instructions"])


run(main, globals())
