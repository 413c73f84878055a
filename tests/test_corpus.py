import json
import re

import pytest

from grokpath.errors import GrokpathError
from grokpath.lab.corpus import GENERATORS, generate_domain, split_pairs, write_corpus
from grokpath.lab.tokenizer import build_tokenizer

SPEC = {"params": {"modulus": 13}, "train_fraction": 0.4, "n_valid": 20, "n_test": 20}
DOMAINS = {
    "math": {"generator": "modular_sum", **SPEC},
    "code": {"generator": "traced_program", **SPEC},
    "commonsense": {"generator": "ring_walk", **SPEC},
    "domain_specific": {"generator": "element_product", **SPEC},
}


def read_split(root, domain, split):
    return [json.loads(line) for line in (root / domain / f"{split}.jsonl").read_text().splitlines()]


def test_same_seed_gives_identical_files(tmp_path):
    write_corpus(DOMAINS, 7, tmp_path / "a")
    write_corpus(DOMAINS, 7, tmp_path / "b")
    for path in (tmp_path / "a").rglob("*.json*"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_other_seed_changes_the_split(tmp_path):
    a, _ = generate_domain("math", DOMAINS["math"], 1)
    b, _ = generate_domain("math", DOMAINS["math"], 2)
    assert [r["text"] for r in a["train"]] != [r["text"] for r in b["train"]]


def test_adding_a_domain_leaves_the_others_unchanged():
    alone, _ = generate_domain("math", DOMAINS["math"], 3)
    write_all = {name: generate_domain(name, spec, 3)[0] for name, spec in DOMAINS.items()}
    assert alone == write_all["math"]


def operands(prompt: str) -> tuple[int, ...]:
    """The operand pair a prompt encodes, whatever the template (numbers and names)."""
    return tuple(re.findall(r"\b\d+\b|\b\w+ium\b|(?<=from )\w+", prompt))


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_test_and_valid_pairs_never_occur_in_training(domain):
    rows, _ = generate_domain(domain, DOMAINS[domain], 11)
    seen = {canonical(domain, r["prompt"]) for r in rows["train"]}
    held_test = {canonical(domain, r["prompt"]) for r in rows["test"]}
    held_valid = {canonical(domain, r["prompt"]) for r in rows["valid"]}
    assert seen.isdisjoint(held_test)
    assert seen.isdisjoint(held_valid)
    assert held_test.isdisjoint(held_valid)
    assert len(held_test) == 20


def canonical(domain: str, prompt: str) -> tuple:
    """Operand pair (a, b) of an item: templates differ, the pair is what must be held out."""
    if domain == "code":
        # "u = a ; v = b ; print u - v" (statement order may be swapped)
        values = dict(re.findall(r"(\w) = (\d+)", prompt))
        u, v = re.search(r"print (\w) - (\w)", prompt).groups()
        return (values[u], values[v])
    return operands(prompt)


def test_answers_follow_the_rule():
    rows, _ = generate_domain("code", DOMAINS["code"], 5)
    for row in rows["test"]:
        a, b = map(int, canonical("code", row["prompt"]))
        assert int(row["answer"]) == (a - b) % 13


def test_multiple_choice_items_hold_their_answer():
    rows, _ = generate_domain("domain_specific", DOMAINS["domain_specific"], 5)
    for row in rows["test"]:
        assert row["choices"][row["label"]] == row["answer"]
        assert len(set(row["choices"])) == 4


def test_held_out_sets_larger_than_the_pool_are_rejected():
    import random

    with pytest.raises(GrokpathError, match="exceeds"):
        split_pairs(list(range(10)), 0.5, 4, 4, random.Random(0))


def test_unknown_generator_names_the_key():
    from grokpath.lab.corpus import build_task

    with pytest.raises(GrokpathError, match="domains.physics.generator"):
        build_task("physics", {"generator": "nope", "params": {}})


def test_tokenizer_round_trip(tmp_path):
    manifest = write_corpus(DOMAINS, 1, tmp_path)
    tokenizer = build_tokenizer(manifest["vocabulary"])
    for domain in DOMAINS:
        for row in read_split(tmp_path, domain, "train")[:20]:
            ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"]
            assert tokenizer.unk_token_id not in ids
            assert tokenizer.decode(ids) == row["text"]
    # answers are single words, which the probe and lm-eval's exact match rely on
    assert all(len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in manifest["vocabulary"])


def test_tokenizer_saves_and_reloads(tmp_path):
    from transformers import AutoTokenizer

    from grokpath.lab.tokenizer import save_tokenizer

    tokenizer = build_tokenizer(["1", "2", "+", "="])
    save_tokenizer(tokenizer, tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert again("1 + 2 =")["input_ids"] == tokenizer("1 + 2 =")["input_ids"]
    assert (again.pad_token, again.eos_token) == ("[PAD]", "[EOS]")


def test_every_generator_is_registered():
    assert set(GENERATORS) == {d["generator"] for d in DOMAINS.values()}
