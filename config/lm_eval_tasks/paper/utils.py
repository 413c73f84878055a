"""Hooks for the paper-scale task YAMLs in this folder (loaded by lm-eval via `!function`)."""


def one_row_per_query(dataset):
    """Keep the first pool row of every query: the pool repeats each query with many solutions."""
    key = "query_id" if "query_id" in dataset.column_names else "query"
    seen = set()
    keep = []
    for index, value in enumerate(dataset[key]):
        if value not in seen:
            seen.add(value)
            keep.append(index)
    return dataset.select(keep)
