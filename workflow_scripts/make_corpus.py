"""Rule make_corpus: generate the lab corpus (see grokpath.corpus)."""

from grokpath.corpus import write_corpus
from grokpath.entry import corpus_dir, run


def main(args: dict) -> None:
    write_corpus(args["domains"], args["seed"], corpus_dir(args))


run(main, globals())
