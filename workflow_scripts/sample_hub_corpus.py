"""Rule `sample_hub_corpus`: draw the paper-scale corpus from configured datasets.

Args:
- domains: {name: {train, valid, test, output_type?}} (shape: grokpath.sources.hub_corpus docstring)
- counts: {n_train, n_valid, n_test}
- seed: run seed
- corpus_dir: output directory; gets {domain}/{train,valid,test}.jsonl and manifest.json
- cache_dir: optional datasets cache (default: the datasets library's own, HF_DATASETS_CACHE)
"""

from grokpath.entry import run
from grokpath.errors import GrokpathError
from grokpath.sources.hub_corpus import write_hub_corpus


def required(args: dict, key: str):
    if args.get(key) in (None, ""):
        raise GrokpathError(f"missing argument {key!r} (expected {key}=...)")
    return args[key]


def main(args: dict) -> None:
    write_hub_corpus(
        domains=required(args, "domains"),
        counts=required(args, "counts"),
        seed=required(args, "seed"),
        outdir=required(args, "corpus_dir"),
        cache_dir=args.get("cache_dir") or None,
    )


run(main, globals())
