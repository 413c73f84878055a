"""The lab corpus: four generated domains whose test items need a learned rule.

Every domain is a binary operation over a cyclic group, dressed up as a different kind of text.
Training samples use a seeded fraction of all operand pairs; test and validation items use pairs
that never occur in training, so a test item can only be answered by applying the rule the model
has (or has not yet) learned — which is what lets generalization lag memorization.

Generators (the `generator` key of a domain in the config):
- `modular_sum`      math, generate-until:     "12 + 45 =" -> "10" (mod P)
- `traced_program`   code, generate-until:     "y = 12 ; x = 45 ; print y - x" -> "14" (mod P)
- `ring_walk`        commonsense, multiple choice: "from kobe walk 12 stops" -> station name
- `element_product`  domain-specific, multiple choice: "mixing tanium with rubium yields"
                     -> element name (product in the multiplicative group mod P)
Adding a domain = adding a config entry naming one of these generators with its own params.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grokpath.errors import GrokpathError
from grokpath.tableio import write_json, write_jsonl

GENERATE = "generate_until"
CHOICE = "multiple_choice"
SPLITS = ("train", "valid", "test")

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def syllable_name(index: int, suffix: str = "") -> str:
    """A pronounceable, deterministic pseudo-word for an index (no randomness: names are stable)."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    n = len(syllables)
    head, tail = divmod(index, n)
    return syllables[head % n] + syllables[tail] + suffix


@dataclass(frozen=True)
class Item:
    """One operand pair rendered as text; `answer` is a single word."""

    prompt: str
    answer: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    output_type: str
    operand_pairs: list[tuple[int, int]]
    render: Callable[[tuple[int, int], random.Random], Item]
    vocabulary: list[str]


def _numbers(p: int) -> list[str]:
    return [str(i) for i in range(p)]


def _choices(answer: str, pool: list[str], n_choices: int, rng: random.Random) -> tuple[str, ...]:
    distractors = rng.sample([w for w in pool if w != answer], n_choices - 1)
    options = [answer, *distractors]
    rng.shuffle(options)
    return tuple(options)


def modular_sum(modulus: int, **_) -> Task:
    def render(pair, rng):
        a, b = pair
        return Item(f"{a} + {b} =", str((a + b) % modulus))

    pairs = [(a, b) for a in range(modulus) for b in range(modulus)]
    return Task(GENERATE, pairs, render, _numbers(modulus) + ["+", "="])


def traced_program(modulus: int, variables=("x", "y", "z", "w"), shuffle_statements=True, **_) -> Task:
    """`u = a ; v = b ; print u - v`: the model has to bind names to values to trace it."""

    def render(pair, rng):
        a, b = pair
        u, v = rng.sample(list(variables), 2)
        statements = [f"{u} = {a}", f"{v} = {b}"]
        if shuffle_statements and rng.random() < 0.5:
            statements.reverse()
        return Item(" ; ".join(statements) + f" ; print {u} - {v}", str((a - b) % modulus))

    pairs = [(a, b) for a in range(modulus) for b in range(modulus)]
    return Task(GENERATE, pairs, render, _numbers(modulus) + list(variables) + ["=", ";", "print", "-"])


def ring_walk(modulus: int, n_choices: int = 4, **_) -> Task:
    """Stations on a circular line: walking b stops from station a reaches station (a+b) mod P."""
    stations = [syllable_name(i, "") for i in range(modulus)]

    def render(pair, rng):
        a, b = pair
        answer = stations[(a + b) % modulus]
        return Item(
            f"from {stations[a]} walk {b} stops to", answer, _choices(answer, stations, n_choices, rng)
        )

    pairs = [(a, b) for a in range(modulus) for b in range(1, modulus)]
    return Task(CHOICE, pairs, render, stations + _numbers(modulus) + ["from", "walk", "stops", "to"])


def element_product(modulus: int, n_choices: int = 4, **_) -> Task:
    """Elements indexed 1..P-1 combine by multiplication mod P (a cyclic group of order P-1)."""
    elements = {i: syllable_name(i + 37, "ium") for i in range(1, modulus)}
    pool = list(elements.values())

    def render(pair, rng):
        a, b = pair
        answer = elements[(a * b) % modulus]
        return Item(
            f"mixing {elements[a]} with {elements[b]} yields",
            answer,
            _choices(answer, pool, n_choices, rng),
        )

    pairs = [(a, b) for a in range(1, modulus) for b in range(1, modulus)]
    return Task(CHOICE, pairs, render, pool + ["mixing", "with", "yields"])


GENERATORS: dict[str, Callable[..., Task]] = {
    "modular_sum": modular_sum,
    "traced_program": traced_program,
    "ring_walk": ring_walk,
    "element_product": element_product,
}


def build_task(domain: str, spec: dict) -> Task:
    name = spec.get("generator")
    if name not in GENERATORS:
        raise GrokpathError(
            f"domains.{domain}.generator: unknown generator {name!r}; expected one of "
            + ", ".join(sorted(GENERATORS))
        )
    return GENERATORS[name](**spec.get("params", {}))


def split_pairs(pairs, train_fraction: float, n_valid: int, n_test: int, rng: random.Random):
    """Seeded partition of operand pairs: train, then disjoint held-out valid and test sets."""
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    n_train = round(train_fraction * len(shuffled))
    held_out = shuffled[n_train:]
    if n_valid + n_test > len(held_out):
        raise GrokpathError(
            f"n_valid + n_test = {n_valid + n_test} exceeds the {len(held_out)} held-out pairs; "
            "lower them or the train_fraction"
        )
    return shuffled[:n_train], held_out[:n_valid], held_out[n_valid : n_valid + n_test]


def _sample_row(domain: str, split: str, index: int, item: Item) -> dict:
    row = {
        "sample_id": f"{domain}-{split}-{index:05d}",
        "domain": domain,
        "text": f"{item.prompt} {item.answer}",
        "prompt": item.prompt,
        "answer": item.answer,
    }
    if item.choices:
        # Not part of the text: lets the probe score training samples like test items.
        row["choices"] = list(item.choices)
    return row


def _test_row(domain: str, index: int, item: Item, output_type: str) -> dict:
    row = {"doc_id": index, "domain": domain, "prompt": item.prompt, "answer": item.answer}
    if output_type == CHOICE:
        row["choices"] = list(item.choices)
        row["label"] = item.choices.index(item.answer)
    return row


def generate_domain(domain: str, spec: dict, seed: int) -> tuple[dict[str, list[dict]], Task]:
    task = build_task(domain, spec)
    # One stream per domain, so adding a domain never changes the others' samples.
    rng = random.Random(f"{seed}:{domain}")
    train, valid, test = split_pairs(
        task.operand_pairs, spec["train_fraction"], spec["n_valid"], spec["n_test"], rng
    )
    rows = {
        "train": [_sample_row(domain, "train", i, task.render(p, rng)) for i, p in enumerate(train)],
        "valid": [_sample_row(domain, "valid", i, task.render(p, rng)) for i, p in enumerate(valid)],
        "test": [_test_row(domain, i, task.render(p, rng), task.output_type) for i, p in enumerate(test)],
    }
    return rows, task


def write_corpus(domains: dict, seed: int, corpus_dir: str | Path) -> dict:
    """Generate every domain into `corpus_dir/{domain}/{split}.jsonl` plus a manifest."""
    corpus_dir = Path(corpus_dir)
    manifest = {"seed": seed, "source": "lab", "domains": {}}
    vocabulary: set[str] = set()
    for domain, spec in domains.items():
        rows, task = generate_domain(domain, spec, seed)
        for split in SPLITS:
            write_jsonl(rows[split], corpus_dir / domain / f"{split}.jsonl")
        vocabulary.update(task.vocabulary)
        manifest["domains"][domain] = {
            "output_type": task.output_type,
            "generator": spec["generator"],
            **{f"n_{split}": len(rows[split]) for split in SPLITS},
        }
    manifest["vocabulary"] = sorted(vocabulary)
    write_json(manifest, corpus_dir / "manifest.json")
    return manifest
