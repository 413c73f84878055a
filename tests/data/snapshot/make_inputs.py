"""Write the snapshot's small input tables (tests/data/snapshot/*.parquet); run once, committed.

    python tests/data/snapshot/make_inputs.py

Everything is drawn from one generator with a fixed seed, so a rerun writes the same tables.
The tables are the workflow's inputs in their own layouts, small enough to read in a diff of
`expected.json`'s consequences: three domains (code and math rise, trivia does not), eight
checkpoints, eight training samples, four validation samples and ten test items per domain.

- losses.parquet (grokpath.loss.sample_loss.LOSS_COLUMNS): a training sample's loss sits near 2 until
  its planned t*, then at its group's floor (0.15 at t* 200, 0.25 at 300, 0.35 at 400, 0.55 at 500);
  one sample of code and math settles only at the last checkpoint (unconfirmed), others never.
- items.parquet (lm-eval's per-item table): code and math items turn right at a planned step and
  stay right (one item misses once afterwards); trivia stays flat.
- contamination_scores.parquet: Min-K%++ scores (the flag is computed from them in the test).
- routing_weights.parquet: per step and training sample, router weights w{layer}_{expert} over
  3 MoE layers x 4 experts; a sample's routing moves from its own random route towards its
  domain's route after its t*.
- routers.parquet: per step, each layer's router matrix (4 experts x 6 hidden) as h0..h5.
- texts.parquet: a text per training sample and test item (for the TF-IDF group matching).
- toy.parquet: a theory-toy table (edit distance against effective dimension).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
SEED = 12
STEPS = [100, 200, 300, 400, 500, 600, 700, 800]
DOMAINS = ["code", "math", "trivia"]
LAYERS, EXPERTS, HIDDEN = 3, 4, 6
# planned t* of each domain's eight training samples (None: never settles; 800: the last step)
PLANNED_T_STAR = {
    "code": [200, 200, 300, 300, 300, 400, 800, None],
    "math": [200, 300, 300, 400, 400, 500, 800, None],
    "trivia": [300, 300, 500, None, None, None, None, None],
}
FLOOR = {200: 0.15, 300: 0.25, 400: 0.35, 500: 0.55, 800: 0.05}
# the step each test item turns right from (None: never)
PLANNED_GEN = {
    "code": [300, 400, 400, 500, 500, 600, 600, 700, None, None],
    "math": [200, 400, 500, 500, 600, 600, 700, 700, 800, None],
}
WORDS = ["add", "sum", "loop", "list", "map", "digit", "carry", "prime", "city", "river",
         "king", "year", "def", "ret", "mul", "div"]  # fmt: skip


def losses(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for domain in DOMAINS:
        for i, t_star in enumerate(PLANNED_T_STAR[domain]):
            level = 2.0 + rng.normal(0, 0.1)
            for k, step in enumerate(STEPS):
                if t_star is not None and step >= t_star:
                    loss = FLOOR[t_star] + rng.normal(0, 0.004)
                else:
                    loss = level - 0.08 * k + rng.normal(0, 0.03)
                rows.append((domain, f"{domain}-t{i}", "train", step, loss, 6))
        for i in range(4):
            start = 2.4 + rng.normal(0, 0.1)
            for k, step in enumerate(STEPS):
                rows.append((domain, f"{domain}-v{i}", "valid", step,
                             start - 0.1 * k + rng.normal(0, 0.05), 6))  # fmt: skip
    return pd.DataFrame(rows, columns=["domain", "sample_id", "split", "step", "loss", "n_tokens"])


def items(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for domain in DOMAINS:
        for doc_id in range(10):
            gen = PLANNED_GEN.get(domain, [None] * 10)[doc_id]
            miss = int(rng.integers(1, 3)) if doc_id == 3 else None  # one later miss
            for k, step in enumerate(STEPS):
                if domain == "trivia":  # 4 of 10 right until step 400, then 3: no rise
                    correct = doc_id < 3 or (doc_id == 3 and step <= 400)
                elif gen is None or step < gen:
                    correct = bool(rng.random() < 0.1)
                else:
                    correct = not (miss is not None and step == gen + 100 * miss)
                rows.append((f"lab_{domain}", domain, doc_id, step, bool(correct), 0.0, ""))
    return pd.DataFrame(rows, columns=["task", "domain", "doc_id", "step", "correct", "score",
                                       "prediction"])  # fmt: skip


def contamination_scores(rng: np.random.Generator) -> pd.DataFrame:
    rows = [(d, i, f"lab_{d}", float(rng.normal()), 6) for d in DOMAINS for i in range(10)]
    return pd.DataFrame(rows, columns=["domain", "doc_id", "task", "min_k_pp", "n_tokens"])


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def routing_weights(rng: np.random.Generator) -> pd.DataFrame:
    domain_route = {d: rng.normal(0, 1.5, size=(LAYERS, EXPERTS)) for d in DOMAINS}
    rows = []
    for domain in DOMAINS:
        for i, t_star in enumerate(PLANNED_T_STAR[domain]):
            own = rng.normal(0, 1.5, size=(LAYERS, EXPERTS))
            for step in STEPS:
                if t_star is None:
                    mix = 0.1 * step / STEPS[-1]
                elif step < t_star:
                    mix = 0.2 * step / t_star
                else:
                    mix = min(1.0, 0.4 + (step - t_star) / 400)
                logits = (1 - mix) * own + mix * 2 * domain_route[domain]
                weights = softmax(logits + rng.normal(0, 0.05, size=logits.shape))
                rows.append({"step": step, "domain": domain, "sample_id": f"{domain}-t{i}",
                             **{f"w{l}_{e}": float(weights[l, e]) for l in range(LAYERS)
                                for e in range(EXPERTS)}})  # fmt: skip
    frame = pd.DataFrame(rows)
    weight_columns = [c for c in frame.columns if c.startswith("w")]
    return frame.astype({c: "float32" for c in weight_columns})


def routers(rng: np.random.Generator) -> pd.DataFrame:
    base = rng.normal(size=(LAYERS, EXPERTS, HIDDEN))
    drift = rng.normal(size=(LAYERS, EXPERTS, HIDDEN))
    rows = []
    for step in STEPS:
        matrix = base + 0.5 * step / STEPS[-1] * drift
        for layer in range(LAYERS):
            for expert in range(EXPERTS):
                hidden = {f"h{h}": float(matrix[layer, expert, h]) for h in range(HIDDEN)}
                rows.append({"step": step, "layer": layer, "expert": expert, **hidden})
    return pd.DataFrame(rows)


def texts(rng: np.random.Generator) -> pd.DataFrame:
    def text() -> str:
        return " ".join(rng.choice(WORDS, size=5))

    rows = [("train", d, f"{d}-t{i}", text()) for d in DOMAINS for i in range(8)]
    rows += [("test", d, str(i), text()) for d in DOMAINS for i in range(10)]
    return pd.DataFrame(rows, columns=["split", "domain", "key", "text"])


def toy(rng: np.random.Generator) -> pd.DataFrame:
    distance = rng.uniform(0, 6, size=12)
    return pd.DataFrame({
        "seed": np.arange(12), "routing_specificity": distance / 6, "edit_distance": distance,
        "effective_dim": 40 + 2 * distance + rng.normal(0, 1.0, size=12),
        "mean_path_length": 2.0, "n_samples": 50, "n_experts": 4, "dim": 6,
    })  # fmt: skip


def main() -> None:
    rng = np.random.default_rng(SEED)
    tables = {
        "losses": losses(rng), "items": items(rng),
        "contamination_scores": contamination_scores(rng),
        "routing_weights": routing_weights(rng), "routers": routers(rng), "texts": texts(rng),
        "toy": toy(rng),
    }  # fmt: skip
    for name, table in tables.items():
        # no pandas metadata and no column statistics: a third of the bytes
        table.to_parquet(HERE / f"{name}.parquet", index=False, compression="zstd",
                         write_statistics=False, store_schema=False)  # fmt: skip


if __name__ == "__main__":
    main()
