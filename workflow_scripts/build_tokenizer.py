"""Rule build_tokenizer: a word-level tokenizer over the lab corpus vocabulary."""

import json

from grokpath.entry import run
from grokpath.evaluation.instruction_tuning import LAB_TEMPLATE_WORDS
from grokpath.lab.tokenizer import build_tokenizer, save_tokenizer


def main(args: dict) -> None:
    manifest = json.loads(open(args["manifest"]).read())
    # The instruction-tuning template's words too, so the optional LoRA step never sees [UNK].
    vocabulary = manifest["vocabulary"] + list(LAB_TEMPLATE_WORDS)
    save_tokenizer(build_tokenizer(vocabulary), args["tokenizer"])


run(main, globals())
