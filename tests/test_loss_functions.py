"""Per-sample loss and the loss baselines on hand-computed cases (values worked out by hand)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from grokpath.errors import GrokpathError
from grokpath.loss.baselines import loss_baselines
from grokpath.routing.metrics import memorization_groups
from grokpath.routing.pathways import PathwayTable

LN2 = math.log(2)

# ---------------------------------------------------------------- per_sample_nll

# next-token probabilities given the current token x (vocabulary of 3): -log p is ln2 or 2 ln2
NEXT = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]])


class BigramModel:
    """logits[b, t] = log NEXT[ids[b, t]]: the NLL of y after x is -log NEXT[x, y]."""

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.log(torch.tensor(NEXT, dtype=torch.float32))[input_ids]
        return SimpleNamespace(logits=logits)


def nll(sequences, pad_id=2, batch_size=3, starts=None):
    import torch

    from grokpath.loss.sample_loss import per_sample_nll

    return per_sample_nll(
        BigramModel(), sequences, pad_id, batch_size, torch.device("cpu"), starts
    )


def test_per_sample_nll_is_the_mean_over_the_scored_tokens():
    sequences = [[0, 1, 1, 2], [2, 0], [1, 1]]
    # [0,1,1,2] from position 2: 1->1 (ln2), 1->2 (2 ln2)       -> 1.5 ln2
    # [2,0]     from position 1: 2->0 (2 ln2); padding 0->2, 2->2 would pull it to 5/3 ln2
    # [1,1]     from position 1: 1->1 (ln2)
    losses = nll(sequences, starts=[2, 1, 1])
    assert losses == pytest.approx([1.5 * LN2, 2 * LN2, LN2], rel=1e-6)


def test_per_sample_nll_defaults_to_every_token_after_the_first():
    # 0->1 (2 ln2), 1->1 (ln2), 1->2 (2 ln2): mean 5/3 ln2
    assert nll([[0, 1, 1, 2]]) == pytest.approx([5 / 3 * LN2], rel=1e-6)


def test_per_sample_nll_does_not_depend_on_batching():
    sequences = [[0, 1, 1, 2, 0], [2, 0], [1, 1, 0]]
    together = nll(sequences, batch_size=3)
    alone = nll(sequences, batch_size=1)
    assert together == pytest.approx(alone, rel=1e-6)


def test_n_tokens_counts_the_scored_tokens(monkeypatch):
    """sample_loss_table's n_tokens = len(sequence) - start: the tokens per_sample_nll averages."""
    import grokpath.loss.sample_loss as sample_loss
    import grokpath.tokens as tokens

    samples = [
        {"domain": "math", "sample_id": "a", "split": "train", "text": "a"},
        {"domain": "math", "sample_id": "b", "split": "valid", "text": "b"},
    ]
    tokenizer = SimpleNamespace(pad_token_id=2)
    monkeypatch.setattr(
        sample_loss, "load_checkpoint", lambda path, dev, **loading: (BigramModel(), tokenizer)
    )
    monkeypatch.setattr(sample_loss, "corpus_samples", lambda corpus, domains: samples)
    monkeypatch.setattr(tokens, "encode_samples", lambda *args: [[0, 1, 1, 2], [1, 1]])
    monkeypatch.setattr(tokens, "answer_starts", lambda *args: [2, 1])
    table = sample_loss.sample_loss_table(
        "ckpt", "corpus", ["math"], 100, 4, 8, True, "answer", "cpu"
    )
    assert table["n_tokens"].tolist() == [2, 1]
    assert table["loss"].tolist() == pytest.approx([1.5 * LN2, LN2], rel=1e-6)
    assert table["split"].tolist() == ["train", "valid"] and (table["step"] == 100).all()


def test_sample_loss_table_passes_each_setting_to_its_stage(monkeypatch, caplog):
    """Checkpoint, corpus, tokenizer, length, EOS, span and device reach the stage that uses them."""
    import torch

    import grokpath.loss.sample_loss as sample_loss
    import grokpath.tokens as tokens

    samples = [
        {"domain": "math", "sample_id": "a", "split": "train", "text": "x y"},
        {"domain": "code", "sample_id": "b", "split": "valid", "text": "z"},
    ]
    tokenizer = SimpleNamespace(pad_token_id=2)
    calls = {}

    def record(name, result):
        def stage(*args, **kwargs):
            calls[name] = (args, kwargs)
            return result
        return stage

    monkeypatch.setattr(sample_loss, "load_checkpoint", record("load", (BigramModel(), tokenizer)))
    monkeypatch.setattr(sample_loss, "corpus_samples", record("corpus", samples))
    monkeypatch.setattr(tokens, "resolve_device", record("device", torch.device("cpu")))
    monkeypatch.setattr(tokens, "encode_samples", record("encode", [[0, 1, 1, 2], [1, 1]]))
    monkeypatch.setattr(tokens, "answer_starts", record("starts", [1, 1]))
    clock = iter([10.0, 10.5])  # scoring takes 0.5 s
    monkeypatch.setattr(sample_loss, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    with caplog.at_level("INFO", logger="grokpath.loss.sample_loss"):
        table = sample_loss.sample_loss_table(
            "ckpt", "corpus", ["math", "code"], 300, 4, 8, False, tokenizer="tok", device_map="auto"
        )
    assert calls["device"] == (("auto",), {})  # the default device
    assert calls["load"] == (("ckpt", torch.device("cpu")), {"tokenizer": "tok", "device_map": "auto"})
    assert calls["corpus"] == (("corpus", ["math", "code"]), {})
    assert calls["encode"] == ((tokenizer, ["x y", "z"], 8, False), {})
    assert calls["starts"] == ((tokenizer, samples, 8, "all", "corpus"), {})  # span defaults to all
    assert table.columns.tolist() == ["domain", "sample_id", "split", "step", "loss", "n_tokens"]
    assert table.to_dict("list") == {
        "domain": ["math", "code"], "sample_id": ["a", "b"], "split": ["train", "valid"],
        "step": [300, 300], "loss": pytest.approx([5 / 3 * LN2, LN2], rel=1e-6), "n_tokens": [3, 1],
    }  # fmt: skip
    # throughput is logged per step: 2 samples and 4 + 2 tokens in 0.5 s
    assert caplog.records[-1].getMessage() == (
        "step 300: 2 samples, 6 tokens in 0.5 s (4 samples/s, 12 tokens/s)"
    )


def test_sample_loss_table_refuses_a_sample_too_short_to_score(monkeypatch):
    import grokpath.loss.sample_loss as sample_loss
    import grokpath.tokens as tokens

    samples = [{"domain": "math", "sample_id": f"s{i}", "split": "train", "text": "t"} for i in range(3)]
    monkeypatch.setattr(
        sample_loss, "load_checkpoint", lambda *a, **k: (BigramModel(), SimpleNamespace(pad_token_id=2))
    )
    monkeypatch.setattr(sample_loss, "corpus_samples", lambda *a: samples)
    monkeypatch.setattr(tokens, "encode_samples", lambda *a: [[0, 1], [1], [2]])
    with pytest.raises(GrokpathError, match=r"^corpus: sample s1 has fewer than 2 tokens; no loss to score$"):
        sample_loss.sample_loss_table("ckpt", "corpus", ["math"], 100, 4, 8, True, "all", "cpu")


def test_corpus_samples_reads_train_then_valid_per_domain(tmp_path):
    from grokpath.loss.sample_loss import corpus_samples
    from grokpath.tableio import write_jsonl

    for domain in ("math", "code"):
        for split in ("train", "valid"):
            write_jsonl([{"sample_id": f"{domain}-{split}-{i}", "domain": domain, "text": "t"}
                         for i in range(2)], tmp_path / domain / f"{split}.jsonl")
    samples = corpus_samples(str(tmp_path), ["code", "math"])
    assert [(s["sample_id"], s["split"]) for s in samples] == [
        (f"{d}-{split}-{i}", split) for d in ("code", "math") for split in ("train", "valid")
        for i in range(2)
    ]  # fmt: skip


def test_corpus_samples_refuses_an_empty_split(tmp_path):
    from grokpath.loss.sample_loss import corpus_samples
    from grokpath.tableio import write_jsonl

    write_jsonl([{"sample_id": "a", "domain": "math", "text": "t"}], tmp_path / "math" / "train.jsonl")
    (tmp_path / "math" / "valid.jsonl").write_text("\n")
    with pytest.raises(GrokpathError, match=rf"^{tmp_path}/math/valid.jsonl: empty sample set$"):
        corpus_samples(tmp_path, ["math"])


def test_read_loss_tables_joins_chunk_folders_and_files(tmp_path):
    from grokpath.loss.sample_loss import read_loss_tables
    from grokpath.tableio import write_parquet

    def step_table(step):
        return pd.DataFrame({"domain": ["math"], "sample_id": ["a"], "split": ["train"], "step": [step],
                             "loss": [1.0 / step], "n_tokens": [3]})

    for step in (100, 200):
        write_parquet(step_table(step), tmp_path / "steps100-200" / f"step{step}.parquet")
    write_parquet(step_table(300), tmp_path / "single.parquet")
    table = read_loss_tables([tmp_path / "steps100-200", tmp_path / "single.parquet"])
    assert table.columns.tolist() == ["domain", "sample_id", "split", "step", "loss", "n_tokens"]
    assert table["step"].tolist() == [100, 200, 300] and table.index.tolist() == [0, 1, 2]


# ---------------------------------------------------------------- loss_baselines

STEPS = [100, 200, 300]
TRAIN = {  # (domain, sample_id): losses at STEPS
    ("math", "a"): [3, 2, 1],
    ("math", "b"): [5, 4, 3],
    ("math", "c"): [1, 1, 1],
    ("code", "d"): [2, 2, 2],
}
VALID = {("math", "v"): [6, 4, 2], ("code", "w"): [4, 4, 4]}


def losses_table() -> pd.DataFrame:
    rows = [
        {"domain": d, "sample_id": s, "split": split, "step": step, "loss": float(loss),
         "n_tokens": 4}
        for split, table in (("train", TRAIN), ("valid", VALID))
        for (d, s), values in table.items()
        for step, loss in zip(STEPS, values)
    ]  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1, random_state=1)  # row order must not matter


def memorization_table() -> pd.DataFrame:
    # a: t* 200; c: t* 100; b: t* 300 = the last step, unconfirmed; d: never
    return pd.DataFrame(
        {
            "domain": ["math", "math", "math", "code"],
            "sample_id": ["a", "b", "c", "d"],
            "t_star": pd.array([200, 300, 100, None], dtype="Int64"),
            "memorized": [True, False, True, False],
        }
    )


def series(table: pd.DataFrame, metric: str, domain: str, group: str) -> list[float]:
    rows = table[(table.metric == metric) & (table.domain == domain) & (table.group == group)]
    return rows.sort_values("step")["value"].tolist()


@pytest.fixture
def baselines() -> pd.DataFrame:
    return loss_baselines(losses_table(), memorization_table(), window=2)


def test_training_loss_is_the_group_mean(baselines):
    assert series(baselines, "training_loss", "math", "all") == pytest.approx([3, 7 / 3, 5 / 3])
    assert series(baselines, "training_loss", "math", "memorized") == pytest.approx([2, 1.5, 1])
    assert series(baselines, "training_loss", "math", "200") == pytest.approx([3, 2, 1])
    # domain "all" pools the samples: step 100 = (3 + 5 + 1 + 2) / 4
    assert series(baselines, "training_loss", "all", "all")[0] == pytest.approx(11 / 4)


def test_training_loss_se_and_n(baselines):
    row = baselines.query(
        "metric == 'training_loss' and domain == 'math' and group == 'all' and step == 100"
    )
    # 3, 5, 1: sd (ddof 1) = 2, se = 2 / sqrt(3)
    assert row["se"].item() == pytest.approx(2 / math.sqrt(3)) and row["n"].item() == 3


def test_moving_average_spans_the_window(baselines):
    # math all: 3, 7/3, 5/3 -> 3, (3 + 7/3) / 2, (7/3 + 5/3) / 2
    assert series(baselines, "training_loss_ma", "math", "all") == pytest.approx([3, 8 / 3, 2])
    assert series(baselines, "training_loss_ma", "math", "memorized") == pytest.approx(
        [2, 1.75, 1.25]
    )


def test_window_one_is_the_training_loss():
    table = loss_baselines(losses_table(), memorization_table(), window=1)
    assert series(table, "training_loss_ma", "math", "all") == pytest.approx([3, 7 / 3, 5 / 3])


def test_validation_loss_per_domain_and_pooled(baselines):
    assert series(baselines, "validation_loss", "math", "all") == pytest.approx([6, 4, 2])
    assert series(baselines, "validation_loss", "code", "all") == pytest.approx([4, 4, 4])
    assert series(baselines, "validation_loss", "all", "all") == pytest.approx([5, 4, 3])
    assert set(baselines.query("metric == 'validation_loss'")["group"]) == {"all"}


def test_groups_drop_the_unconfirmed_last_step(baselines):
    # b's t* (300, the last step) is unconfirmed: no group "300", and b is not "memorized"
    assert set(baselines["group"]) == {"all", "memorized", "100", "200"}
    memorized = baselines.query(
        "metric == 'training_loss' and domain == 'math' and group == 'memorized'"
    )
    assert (memorized["n"] == 2).all()


def test_pathway_groups_drop_the_unconfirmed_last_step():
    table = PathwayTable(
        step=100,
        domains=np.array(["math", "math", "math", "code"], dtype=object),
        sample_ids=np.array(["a", "b", "c", "d"], dtype=object),
        layers=np.array([0, 1]),
        n_tokens=np.full(4, 4),
        weights=np.full((4, 2, 2), 0.5),
        entropy=np.zeros((4, 2)),
    )
    assert memorization_groups(table, memorization_table()).tolist() == ["200", None, "100", None]


def test_a_sample_missing_from_the_memorization_table_counts_only_in_all():
    # e.g. a sample added to the corpus after memorization ran: no t*, so in no memorized group
    memorization = memorization_table().query("sample_id != 'a'")
    table = loss_baselines(losses_table(), memorization, window=2)
    assert series(table, "training_loss", "math", "memorized") == pytest.approx([1, 1, 1])
    assert series(table, "training_loss", "math", "all") == pytest.approx([3, 7 / 3, 5 / 3])


def test_baseline_table_types_match_the_pathway_metric_tables(baselines):
    # n is an integer count, se a float column: NaN for the moving average (no sampling error)
    assert str(baselines["n"].dtype) == "int64" and str(baselines["se"].dtype) == "float64"
    ma = baselines[baselines.metric == "training_loss_ma"]
    assert ma["se"].isna().all() and (baselines["layer"] == "all").all()
