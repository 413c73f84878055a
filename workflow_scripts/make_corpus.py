"""Rule make_corpus: generate the lab corpus (see grokpath.lab.corpus)."""

from grokpath.entry import corpus_dir, run
from grokpath.lab.corpus import write_corpus


def main(args: dict) -> None:
    write_corpus(args["domains"], args["seed"], corpus_dir(args))


run(main, globals())
