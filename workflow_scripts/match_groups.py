"""Match memorized training groups to generalized test groups (Hungarian, per domain).

Inputs:  memorization    memorization/samples.parquet
         generalization  Parquet of the generalization step
         corpus_dir      results/{run}/corpus ({domain}/train.jsonl texts, test.jsonl items)
Params:  embedding ("tfidf" | "sentence-transformers/all-MiniLM-L6-v2"), device ("auto")
Outputs: matches         Parquet (grokpath.evaluation.matching.MATCH_COLUMNS)
"""

from pathlib import Path

from grokpath.entry import corpus_dir, run


def main(args):
    from grokpath.evaluation import matching
    from grokpath.evaluation.contamination import item_text
    from grokpath.tableio import read_jsonl, read_parquet, write_parquet

    memorization = read_parquet(
        args["memorization"], ["domain", "sample_id", "t_star", "memorized"]
    )
    generalization = read_parquet(
        args["generalization"], ["domain", "doc_id", "gen_step", "generalized"]
    )
    corpus = Path(corpus_dir(args))
    domains = sorted(set(memorization.domain) & set(generalization.domain))
    train_texts = {
        d: {r["sample_id"]: r["text"] for r in read_jsonl(corpus / d / "train.jsonl")}
        for d in domains
    }
    # A test item is embedded as the text it is scored on: prompt followed by its answer.
    test_texts = {
        d: {int(r["doc_id"]): item_text(r) for r in read_jsonl(corpus / d / "test.jsonl")}
        for d in domains
    }
    table = matching.match_groups(
        memorization,
        generalization,
        train_texts,
        test_texts,
        embedding=args.get("embedding", matching.TFIDF),
        device=args.get("device", "auto"),
    )
    write_parquet(table, args["matches"])


run(main, globals())
