"""Min-K%++ against hand-computed values, and the table on a tiny checkpoint."""

from __future__ import annotations

import math
import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from grokpath.errors import GrokpathError  # noqa: E402
from grokpath.evaluation import contamination as cm  # noqa: E402
from grokpath.tableio import read_jsonl  # noqa: E402


def _logits(*distributions):
    return torch.log(torch.tensor(distributions, dtype=torch.float64))


# Next-token distributions over a 3-word vocabulary at positions 0, 1, 2 of a 4-token text
# whose tokens 1..3 are [1, 0, 2]:
#  pos 0: p = (.5, .25, .25), token 1. log p takes log .5 or log .25 with probability 1/2
#         each, so sigma is half their gap and token 1 sits exactly one sigma low: -1.
#  pos 1: p = (.7, .2, .1), token 0. mu = -0.801819, E[(log p)^2] = 1.137300,
#         sigma = sqrt(1.137300 - 0.642914) = 0.703126, score = (-0.356675 + 0.801819)
#         / 0.703126 = 0.633093.
#  pos 2: uniform, token 2: sigma = 0, scored 0.
#  pos 3: anything (nothing follows the last token).
HAND_LOGITS = _logits((0.5, 0.25, 0.25), (0.7, 0.2, 0.1), (1 / 3, 1 / 3, 1 / 3), (0.2, 0.3, 0.5))
HAND_IDS = torch.tensor([0, 1, 0, 2])
HAND_SCORES = [-1.0, 0.633093, 0.0]


def test_token_scores_match_hand_computation():
    scores = cm.token_scores(HAND_LOGITS, HAND_IDS)
    assert scores.tolist() == pytest.approx(HAND_SCORES, abs=1e-5)


def test_min_k_keeps_the_lowest_fraction():
    assert cm.min_k_plus_plus(HAND_SCORES, k=0.5) == pytest.approx(-1.0)  # floor(1.5) = 1 token
    assert cm.min_k_plus_plus(HAND_SCORES, k=0.7) == pytest.approx(-0.5)  # 2 tokens
    assert cm.min_k_plus_plus(HAND_SCORES, k=1.0) == pytest.approx((-1 + 0.633093) / 3, abs=1e-6)
    assert cm.min_k_plus_plus(HAND_SCORES, k=0.1) == pytest.approx(-1.0)  # at least one token
    assert math.isnan(cm.min_k_plus_plus([], k=0.2))
    with pytest.raises(GrokpathError):
        cm.min_k_plus_plus(HAND_SCORES, k=0)


def test_top_fraction_is_flagged_per_domain():
    scores = pd.DataFrame(
        {
            "domain": ["math"] * 10 + ["code"] * 3,
            "doc_id": list(range(10)) + [0, 1, 2],
            "min_k_pp": [0.1 * i for i in range(10)] + [1.0, float("nan"), 3.0],
        }
    )
    flagged = cm.flag_top_fraction(scores, 0.1)
    assert scores[flagged].set_index("domain").doc_id.to_dict() == {"math": 9, "code": 2}
    assert not cm.flag_top_fraction(scores, 0.0).any()


def test_table_on_a_tiny_checkpoint_matches_a_manual_forward(tmp_path):
    from test_evaluation import make_tiny_run
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoints = make_tiny_run(tmp_path)
    items = {d: read_jsonl(tmp_path / "corpus" / d / "test.jsonl") for d in ["math", "commonsense"]}
    table = cm.contamination_table(
        str(checkpoints[20]),
        items,
        {"math": "lab_math", "commonsense": "lab_commonsense"},
        k=0.5,
        fraction=0.3,
        batch_size=2,
    )
    assert list(table.columns) == cm.CONTAMINATION_COLUMNS
    assert len(table) == 6 and table.contaminated.sum() == 2  # ceil(.3 * 3) = 1 per domain

    # Batched, right-padded scoring equals scoring the one text alone.
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[20])
    model = AutoModelForCausalLM.from_pretrained(checkpoints[20]).eval()
    text = cm.item_text(items["math"][0])
    assert text == "12 + 45 = 57"
    ids = torch.tensor(tokenizer(text)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids[None]).logits[0]
    expected = cm.min_k_plus_plus(cm.token_scores(logits, ids).tolist(), k=0.5)
    row = table[(table.domain == "math") & (table.doc_id == 0)].iloc[0]
    assert row.min_k_pp == pytest.approx(expected, abs=1e-5)
    assert row.n_tokens == 4 and row.task == "lab_math"
