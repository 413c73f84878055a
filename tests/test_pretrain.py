"""Lab pretraining options on a tiny model: answer-only loss span, the Grokfast filter, the
dense accuracy probe, the pathway monitor; and the memorization loss on the answer span."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from grokpath.errors import GrokpathError
from grokpath.lab.corpus import write_corpus
from grokpath.lab.model import init_lab_model
from grokpath.lab.pretrain import (
    StepReader, learning_rate, monitor_steps, pretrain, probe_steps, training_objective, training_tensors,
    weight_decay,
)
from grokpath.lab.sweep import apply_override
from grokpath.lab.tokenizer import build_tokenizer
from grokpath.loss.sample_loss import per_sample_nll
from grokpath.routing.monitor import MONITOR_TABLE_COLUMNS
from grokpath.sources.checkpoints import load_model
from grokpath.tokens import answer_starts, encode_samples

MODEL = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 2, "num_heads": 2, "num_experts": 4,
         "top_k": 2, "max_position_embeddings": 32, "router_aux_loss_coef": 0.01}
TRAIN = {"batch_size": 32, "lr": 0.002, "weight_decay": 1.0, "betas": [0.9, 0.98], "warmup_steps": 2,
         "grad_clip": 1.0, "log_every": 4, "probe_samples": 8, "loss_span": "all", "grokfast": None}
DOMAINS = {
    "math": {"generator": "modular_sum", "params": {"modulus": 7}, "train_fraction": 0.5, "n_valid": 4, "n_test": 4},
    "code": {"generator": "traced_program", "params": {"modulus": 7}, "train_fraction": 0.5, "n_valid": 4, "n_test": 4},
}
SAMPLE = {"sample_id": "math-train-00000", "text": "3 + 4 = 0", "prompt": "3 + 4 =", "answer": "0"}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([str(i) for i in range(7)] + ["+", "=", "x", "y", "z", "w", ";", "print", "-"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(DOMAINS, 5, root)
    return root


def test_answer_span_starts_after_the_prompt(tokenizer):
    assert answer_starts(tokenizer, [SAMPLE], 32, "all", "x") == [1]
    assert answer_starts(tokenizer, [SAMPLE], 32, "answer", "x") == [4]  # "3 + 4 =" is 4 tokens


def test_answer_span_needs_a_prompt(tokenizer):
    with pytest.raises(GrokpathError, match="corpus/x.jsonl: sample s1 has no 'prompt'"):
        answer_starts(tokenizer, [{"sample_id": "s1", "text": "a b"}], 32, "answer", "corpus/x.jsonl")
    with pytest.raises(GrokpathError, match="expected one of all, answer"):
        answer_starts(tokenizer, [SAMPLE], 32, "prompt", "x")


def test_answer_span_loss_is_the_mean_over_answer_and_eos(tokenizer):
    model = init_lab_model(MODEL, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, 0).eval()
    seq = encode_samples(tokenizer, [SAMPLE["text"]], 32, append_eos=True)[0]  # 3 + 4 = 0 [EOS]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([seq])).logits[0].float()
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(seq[1:]), reduction="none")
    # A second, longer sequence in the batch checks that padding stays out of the mean.
    other = encode_samples(tokenizer, ["1 + 1 = 2 + 3 = 5"], 32, append_eos=True)[0]
    answer, whole = (
        per_sample_nll(model, [seq, other], tokenizer.pad_token_id, 8, "cpu", starts)[0]
        for starts in ([4, 1], [1, 1])
    )
    assert answer == pytest.approx(nll[3:].mean().item(), abs=1e-5)  # targets "0" and EOS
    assert whole == pytest.approx(nll.mean().item(), abs=1e-5)


def test_training_labels_cover_only_the_answer_span(tokenizer):
    ids, attention, labels = training_tensors(tokenizer, [SAMPLE, {**SAMPLE, "text": "3 + 4 = 0 ;"}], 32, "answer")
    assert attention[0].tolist() == [1, 1, 1, 1, 1, 1, 0]  # 5 words + EOS, padded to 7
    assert labels[0].tolist()[:4] == [-100] * 4 and labels[0, 4:6].tolist() == ids[0, 4:6].tolist()
    assert labels[0, 6].item() == -100
    _, _, all_labels = training_tensors(tokenizer, [SAMPLE], 32, "all")
    assert (all_labels[0, 1:6] == ids[0, 1:6]).all()  # label 0 is never predicted (HF shifts by one)


def test_probe_runs_at_every_log_step_and_checkpoint():
    assert probe_steps({"log_every": 4}, [6, 10], 10) == {4, 8, 6, 10}


def test_monitor_runs_at_the_probe_steps_of_its_interval():
    assert monitor_steps({"log_every": 4, "monitor_every": 8}, [6, 10], 20) == {8, 16, 6, 10, 20}
    assert monitor_steps({"log_every": 4, "monitor_every": 8}, [6, 10], 20) <= probe_steps({"log_every": 4}, [6, 10], 20)
    with pytest.raises(GrokpathError, match=r"pretrain.monitor_every \(6\) must be a positive multiple of pretrain.log_every \(4\)"):
        monitor_steps({"log_every": 4, "monitor_every": 6}, [6, 10], 20)


def run_tiny(corpus, tokenizer, monitor_output=None, monitor_settings=None, **train):
    log_df, probe = pretrain(
        corpus_dir=str(corpus), tokenizer=tokenizer, domains=list(DOMAINS), model_cfg=MODEL,
        train_cfg={**TRAIN, **train}, save_steps=[6, 10], checkpoint_dirs={}, seed=3, device="cpu",
        monitor_output=monitor_output, monitor_settings=monitor_settings,
    )
    return log_df, probe


MONITOR = {"threshold": 0.7, "weights": "scores", "batch_size": 4, "max_length": 32, "max_pairs": 20,
           "consistency_min_cos": 0.05}


def test_monitor_leaves_training_identical_and_writes_its_table(corpus, tokenizer, tmp_path):
    # log every step: the losses compared step by step; the monitor every 4 steps and at the
    # checkpoints 6 and 10
    train = {"log_every": 1, "monitor_every": 4, "monitor_samples": 6, "loss_span": "answer"}
    plain_log, plain_probe = run_tiny(corpus, tokenizer, **train)
    output = tmp_path / "train" / "monitor.parquet"
    output.parent.mkdir()
    log_df, probe = run_tiny(corpus, tokenizer, monitor_output=output, monitor_settings=MONITOR, **train)
    columns = ["step", "loss", "aux_loss", "lr", "weight_decay", "tokens"]
    assert list(log_df["step"]) == list(range(1, 11))
    pd.testing.assert_frame_equal(log_df[columns], plain_log[columns])  # bit for bit
    pd.testing.assert_frame_equal(probe, plain_probe)

    table = pd.read_parquet(output)
    assert list(table.columns) == MONITOR_TABLE_COLUMNS
    assert sorted(table["step"].unique()) == [4, 6, 8, 10]
    assert set(table["step"]) <= set(probe["step"])  # every monitor step has probe accuracy
    assert set(table["domain"]) == {"math", "code", "all"} and set(table["group"]) == {"all"}
    assert set(table["layer"]) == {"all", "0", "1"}
    assert {"edit_distance_char", "consistency_norm_mean_cos", "routing_entropy", "probe_loss"} <= set(table["metric"])
    loss = table[(table["metric"] == "probe_loss") & (table["domain"] != "all")]
    assert (loss["n"] == 6).all() and loss["value"].gt(0).all()  # monitor_samples per domain
    assert not (tmp_path / "train" / ".monitor.parquet.parts").exists()
    with pytest.raises(GrokpathError, match="monitor settings: unknown dtype"):
        run_tiny(corpus, tokenizer, monitor_output=tmp_path / "x.parquet", monitor_settings={"dtype": "auto"}, **train)


def test_dense_probe_table(corpus, tokenizer):
    _, probe = run_tiny(corpus, tokenizer)
    assert list(probe.columns) == ["step", "domain", "split", "n", "accuracy", "checkpoint"]
    assert sorted(probe["step"].unique()) == [4, 6, 8, 10]
    assert probe.groupby("step")["checkpoint"].first().to_dict() == {4: False, 6: True, 8: False, 10: True}
    assert len(probe) == 4 * 2 * 2 and probe["accuracy"].between(0, 1).all()


def test_grokfast_and_answer_span_change_training_deterministically(corpus, tokenizer):
    plain, _ = run_tiny(corpus, tokenizer)
    again, _ = run_tiny(corpus, tokenizer)
    filtered, _ = run_tiny(corpus, tokenizer, grokfast={"alpha": 0.9, "lamb": 2.0})
    answer, _ = run_tiny(corpus, tokenizer, loss_span="answer")
    columns = ["step", "loss", "aux_loss", "tokens"]
    pd.testing.assert_frame_equal(plain[columns], again[columns])
    assert not math.isclose(plain["loss"].iloc[-1], filtered["loss"].iloc[-1], rel_tol=1e-6)
    assert not math.isclose(plain["loss"].iloc[-1], answer["loss"].iloc[-1], rel_tol=1e-6)


def test_sweep_overrides_set_nested_keys():
    config = {"pretrain": {"grokfast": None}, "domains": {"math": {"lab": {"train_fraction": 0.3}}}}
    apply_override(config, "domains.math.lab.train_fraction=0.5")
    apply_override(config, "pretrain.grokfast={alpha: 0.98, lamb: 1}")
    assert config["domains"]["math"]["lab"]["train_fraction"] == 0.5
    assert config["pretrain"]["grokfast"] == {"alpha": 0.98, "lamb": 1}
    with pytest.raises(SystemExit, match="'nope' is not a mapping"):
        apply_override(config, "nope.x=1")


def test_learning_rate_warms_up_then_follows_its_schedule():
    schedule = [{"step": 30, "lr": 0.5}, {"step": 20, "lr": 4.0}]
    assert [learning_rate(s, 2.0, 10, schedule) for s in (0, 5, 10, 19, 20, 29, 30, 99)] == [
        0.0, 1.0, 2.0, 2.0, 4.0, 4.0, 0.5, 0.5]
    assert learning_rate(50, 2.0, 10, None) == learning_rate(50, 2.0, 10) == 2.0


def test_weight_decay_schedule_switches_at_its_steps():
    cfg = {"weight_decay": 1.0, "weight_decay_schedule": [{"step": 20, "weight_decay": 0.5}, {"step": 10, "weight_decay": 3.0}]}
    assert [weight_decay(s, cfg) for s in (1, 9, 10, 19, 20, 99)] == [1.0, 1.0, 3.0, 3.0, 0.5, 0.5]
    assert weight_decay(50, {"weight_decay": 1.0, "weight_decay_schedule": None}) == 1.0


def test_weight_decay_schedule_reaches_the_optimizer(corpus, tokenizer):
    log_df, _ = run_tiny(corpus, tokenizer, weight_decay_schedule=[{"step": 6, "weight_decay": 3.0}])
    assert log_df.set_index("step")["weight_decay"].to_dict() == {4: 1.0, 8: 3.0, 10: 3.0}


def test_compiled_training_matches_eager(corpus, tokenizer):
    eager, eager_probe = run_tiny(corpus, tokenizer)
    compiled, compiled_probe = run_tiny(corpus, tokenizer, compile=True)
    # Fused kernels may round differently; the trajectory must be the same to float tolerance.
    assert compiled["loss"].to_numpy() == pytest.approx(eager["loss"].to_numpy(), rel=1e-3)
    assert (compiled_probe["accuracy"] - eager_probe["accuracy"]).abs().max() <= 0.125


def test_sweep_verdict_reads_the_probe_at_the_given_steps():
    from grokpath.lab.sweep import probe_verdict

    rows = [(100, "train", 0.5), (100, "test", 0.0), (200, "train", 0.95), (200, "test", 0.1),
            (250, "train", 1.0), (250, "test", 0.9), (300, "train", 1.0), (300, "test", 0.8)]
    probe = pd.DataFrame([{"step": s, "domain": "math", "split": sp, "accuracy": a} for s, sp, a in rows])
    verdict = probe_verdict(probe, {"math": 0.0}, [100, 200, 300]).iloc[0]
    assert (verdict["t_fit"], verdict["t_gen50"], verdict["final_gain"]) == (200, 300, 0.8)
    assert verdict["late"] and verdict["generalizes"]


def test_sweep_memorization_verdict_dates_memorization_from_the_checkpoint_losses():
    """Three training samples settle (loss <= eps 0.5, within delta of the final) at 100, 100 and
    200; one never does. t_mem50 = 100 (the 2nd of 3 sorted t*, ceil(3/2) = 2 -> 100); test
    accuracy reaches half its final 0.8 at 300 -> gap 200, criterion (c) holds."""
    from grokpath.lab.sweep import memorization_verdict

    rows = [(100, "train", 0.5), (100, "test", 0.0), (200, "train", 0.95), (200, "test", 0.1),
            (300, "train", 1.0), (300, "test", 0.5), (400, "train", 1.0), (400, "test", 0.8)]
    probe = pd.DataFrame([{"step": s, "domain": "math", "split": sp, "accuracy": a} for s, sp, a in rows])
    trajectories = {0: [0.1, 0.1, 0.1, 0.1], 1: [0.2, 0.2, 0.2, 0.2], 2: [2.0, 0.3, 0.3, 0.3],
                    3: [3.0, 2.0, 1.0, 0.6]}
    losses = pd.DataFrame([
        {"domain": "math", "sample_id": f"m{i}", "split": "train", "step": step, "loss": value, "n_tokens": 2}
        for i, values in trajectories.items() for step, value in zip([100, 200, 300, 400], values)
    ])  # fmt: skip
    config = {"memorization": {"delta": 0.05, "eps_step": 0.1, "target_fraction": 0.2},
              "domains": {"math": {"eps": 0.5}}}
    verdict, counts = memorization_verdict(probe, losses, config, {"math": 0.0})
    row = verdict.iloc[0]
    assert (row["t_mem50"], row["t_gen50"], row["gap"], row["n_memorized"]) == (100, 300, 200, 3)
    assert row["after_memorization"] and row["groks"] and row["eps"] == 0.5
    assert counts["math"].to_dict() == {100: 2, 200: 1}


def test_no_decay_parameters_keep_their_values_while_the_rest_decays():
    """One AdamW step with zero gradients: decay alone moves the weights, by the factor
    (1 - lr * wd) = 0.5 here; the RMSNorm gains (`no_decay: [norm]`) do not move."""
    import torch

    from grokpath.lab.pretrain import decay_groups

    model = init_lab_model(MODEL, 50, 0, 1, 7)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(decay_groups(model, ["norm"]), lr=0.5, weight_decay=1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    norms = [n for n in before if "norm" in n]
    assert norms and "model.norm.weight" in norms
    for name, p in model.named_parameters():
        expected = before[name] if name in norms else 0.5 * before[name]
        assert torch.allclose(p.detach(), expected), name
    with pytest.raises(GrokpathError, match="no_decay"):
        decay_groups(model, ["no_such_parameter"])


def test_a_diverging_loss_stops_pretraining_before_any_later_checkpoint(corpus, tokenizer, tmp_path, monkeypatch):
    """A NaN loss at step 7 (forced): the step-6 checkpoint exists, none after it, and the error
    names step 7 and the last finite loss (step 6's, from the log of an identical healthy run)."""
    import grokpath.lab.pretrain as pretrain_module

    healthy, _ = run_tiny(corpus, tokenizer, log_every=1)
    real = pretrain_module.compiled_for_training

    def nan_from_step_7(model, train_cfg):
        forward, calls = real(model, train_cfg), [0]

        def patched(**kwargs):
            out = forward(**kwargs)
            calls[0] += 1
            if calls[0] >= 7:
                out.loss = out.loss * float("nan")
            return out

        return patched

    monkeypatch.setattr(pretrain_module, "compiled_for_training", nan_from_step_7)
    dirs = {6: str(tmp_path / "step6"), 10: str(tmp_path / "step10")}
    last = healthy.set_index("step").loc[6, "loss"]
    with pytest.raises(GrokpathError, match=rf"non-finite loss at step 7 \(last finite loss {last:.4f} at step 6\)"):
        pretrain(corpus_dir=str(corpus), tokenizer=tokenizer, domains=list(DOMAINS), model_cfg=MODEL,
                 train_cfg=TRAIN, save_steps=[6, 10], checkpoint_dirs=dirs, seed=3, device="cpu")  # fmt: skip
    assert (tmp_path / "step6").is_dir() and not (tmp_path / "step10").exists()


def test_training_objective_is_the_causal_lm_loss_without_smoothing_and_smooths_the_target():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 3.0, 1.0]]])
    labels = torch.tensor([[-100, 2, 1]])  # position 0 is never a target (shift by one)
    log_p = torch.log_softmax(logits[0, :2], dim=-1)
    nll = -(log_p[0, 2] + log_p[1, 1]) / 2
    assert training_objective(logits, labels, 0.0).item() == pytest.approx(nll.item(), abs=1e-6)
    # smoothing s: the target is 1 - s on the label plus s / V on every token (V = 3)
    uniform = -log_p.mean(dim=-1).mean()
    assert training_objective(logits, labels, 0.3).item() == pytest.approx((0.7 * nll + 0.3 * uniform).item(), abs=1e-6)
    ignored = torch.tensor([[-100, -100, 1]])
    assert training_objective(logits, ignored, 0.0).item() == pytest.approx(-log_p[1, 1].item(), abs=1e-6)


def test_label_smoothing_changes_training_and_keeps_the_log_plain(corpus, tokenizer):
    plain_log, _ = run_tiny(corpus, tokenizer, log_every=1, loss_span="answer")
    zero_log, _ = run_tiny(corpus, tokenizer, log_every=1, loss_span="answer", label_smoothing=0.0)
    smooth_log, _ = run_tiny(corpus, tokenizer, log_every=1, loss_span="answer", label_smoothing=0.2)
    pd.testing.assert_frame_equal(zero_log.drop(columns="elapsed_s"), plain_log.drop(columns="elapsed_s"))
    # step 1's logged loss is the plain loss of the same initial model and batch either way
    assert smooth_log["loss"].iloc[0] == pytest.approx(plain_log["loss"].iloc[0], abs=1e-6)
    assert not np.allclose(smooth_log["loss"].iloc[1:], plain_log["loss"].iloc[1:])


def _saved_weights(path):
    return load_model(path, "cpu").state_dict()


def test_weight_ema_checkpoints_hold_the_average_of_the_trained_weights(corpus, tokenizer, tmp_path):
    # reference: the plain run saved after every step, averaged by hand (the first step's weights
    # start the average, as torch's AveragedModel does)
    decay, steps = 0.6, list(range(1, 11))
    plain_dirs = {s: str(tmp_path / "plain" / f"step{s}") for s in steps}
    common = dict(corpus_dir=str(corpus), tokenizer=tokenizer, domains=list(DOMAINS), model_cfg=MODEL,
                  seed=3, device="cpu")
    plain_log, _ = pretrain(train_cfg={**TRAIN, "log_every": 1}, save_steps=steps, checkpoint_dirs=plain_dirs, **common)
    ema_dirs = {s: str(tmp_path / "ema" / f"step{s}") for s in (6, 10)}
    ema_log, ema_probe = pretrain(train_cfg={**TRAIN, "log_every": 1, "weight_ema": decay}, save_steps=[6, 10],
                                  checkpoint_dirs=ema_dirs, **common)
    columns = ["step", "loss", "aux_loss", "tokens"]
    pd.testing.assert_frame_equal(ema_log[columns], plain_log[columns])  # training itself is unchanged
    average = None
    for step in steps:
        weights = _saved_weights(plain_dirs[step])
        average = weights if average is None else {
            name: decay * average[name] + (1 - decay) * weights[name] for name in weights}
        if step in ema_dirs:
            saved = _saved_weights(ema_dirs[step])
            assert saved.keys() == average.keys()
            for name in saved:
                torch.testing.assert_close(saved[name], average[name], rtol=1e-5, atol=1e-6)
    last = _saved_weights(plain_dirs[10])
    assert any(not torch.allclose(last[name], average[name]) for name in last)  # the average lags the weights
    assert sorted(ema_probe["step"].unique()) == steps


def test_step_reader_tasks_read_the_weights_of_their_own_step_and_raise_their_errors():
    """Each task sees the copy as it was at its submit, though training moves the source on at
    once; a failing task's exception comes out of the next submit (or close)."""
    import threading

    source = torch.nn.Linear(1, 1, bias=False)
    reader = StepReader(source, torch.nn.Linear(1, 1, bias=False))
    release, seen = threading.Event(), []

    def read(step):
        if step == 1:
            release.wait(5)  # hold the first task until the source has moved on
        seen.append((step, float(reader.copy.weight)))

    with torch.no_grad():
        source.weight.fill_(1.0)
        reader.submit(lambda: read(1))
        source.weight.fill_(2.0)  # training goes on while task 1 runs
        release.set()
        reader.submit(lambda: read(2))  # waits for task 1, then copies step 2's weights
    reader.wait()
    assert seen == [(1, 1.0), (2, 2.0)]

    reader.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        reader.submit(lambda: None)
    reader.close()
