"""Rule build_tokenizer: a word-level tokenizer over the lab corpus vocabulary."""

import json

from grokpath.entry import run
from grokpath.tokenizer import build_tokenizer, save_tokenizer


def main(args: dict) -> None:
    manifest = json.loads(open(args["manifest"]).read())
    save_tokenizer(build_tokenizer(manifest["vocabulary"]), args["tokenizer"])


run(main, globals())
