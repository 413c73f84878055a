"""A word-level tokenizer for the lab corpus, built offline with `tokenizers`.

Saved as a `transformers.PreTrainedTokenizerFast`, so checkpoints load with AutoTokenizer and
lm-eval treats them like any hub model. No special token is added automatically: the EOS that
ends a pretraining sample is appended by `encode_samples`, because an automatic one would also
land at the end of every lm-eval context.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from grokpath.tableio import atomic_dir

PAD, UNK, EOS = "[PAD]", "[UNK]", "[EOS]"


def build_tokenizer(vocabulary: list[str]) -> PreTrainedTokenizerFast:
    words = [PAD, UNK, EOS] + sorted(set(vocabulary) - {PAD, UNK, EOS})
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Word pieces are whole words: decoding re-joins them with single spaces.
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, unk_token=UNK, eos_token=EOS, padding_side="right"
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, dest: str | Path) -> None:
    with atomic_dir(dest) as tmp:
        tokenizer.save_pretrained(tmp)
