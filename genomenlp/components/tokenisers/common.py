"""What every tokeniser shares: special tokens, the CLS-style post-processor, loading and encoding."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from enum import StrEnum

from genomenlp.components.errors import InputError
from genomenlp.components.storage import read_text

BOS, EOS, UNK, PAD, MASK = "<s>", "</s>", "<unk>", "<pad>", "<mask>"
# Order fixes the ids 0..4 in every vocabulary we build.
SPECIAL_TOKENS = [BOS, EOS, UNK, PAD, MASK]


class TokenizerKind(StrEnum):
    """How a sequence becomes the tokeniser's input text."""

    UNIGRAM = "unigram"  # the raw sequence; the model segments it
    KMER = "kmer"  # overlapping k-mers joined by spaces, looked up in a fixed vocabulary


def add_cls_post_processor(tokenizer) -> None:
    """Wrap every encoding as ``<s> … </s>`` so the classifier pools a real summary token."""
    from tokenizers.processors import TemplateProcessing

    bos_id, eos_id = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS)
    tokenizer.post_processor = TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} $B:1 {EOS}:1",
        special_tokens=[(BOS, bos_id), (EOS, eos_id)],
    )


def kmerise(sequence: str, k: int, stride: int = 1) -> list[str]:
    """Overlapping k-mers of ``sequence`` starting every ``stride`` bases (U read as T).

    A sequence shorter than ``k`` yields itself, so no record becomes empty.
    """
    sequence = sequence.replace("U", "T")
    if len(sequence) <= k:
        return [sequence]
    return [sequence[i : i + k] for i in range(0, len(sequence) - k + 1, stride)]


@dataclass
class SequenceTokenizer:
    """A HF ``tokenizers`` tokeniser plus how to turn a sequence into its input text.

    Attributes:
        tokenizer: The ``tokenizers.Tokenizer``.
        kind: Unigram (raw sequence in) or k-mer (space-joined k-mers in).
        k: k-mer length (k-mer tokenisers only).
        stride: Step between k-mer starts (k-mer tokenisers only).
    """

    tokenizer: object
    kind: TokenizerKind
    k: int | None = None
    stride: int = 1

    def to_text(self, sequence: str) -> str:
        """The text the tokeniser reads for one upper-case sequence."""
        if self.kind is TokenizerKind.KMER:
            return " ".join(kmerise(sequence, self.k, self.stride))
        return sequence

    def encode_batch(self, sequences: list[str], max_length: int | None = None) -> list:
        """Encode sequences (with ``<s>``/``</s>``), truncated to ``max_length`` tokens if given."""
        if max_length:
            self.tokenizer.enable_truncation(max_length)
        else:
            self.tokenizer.no_truncation()
        return self.tokenizer.encode_batch([self.to_text(s) for s in sequences])

    def to_json(self) -> str:
        """The tokeniser as HF ``tokenizers`` JSON."""
        self.tokenizer.no_truncation()
        return self.tokenizer.to_str()

    def sha256(self) -> str:
        """Content hash of the tokeniser, recorded in manifests to tie data to vocabulary.

        Unigram scores are rounded first: a save/load round trip may move a score by one unit in
        the last digit, which must not make the same vocabulary look like another.
        """
        content = json.loads(self.to_json())
        model = content["model"]
        if model["type"] == "Unigram":
            model["vocab"] = [[token, round(score, 6)] for token, score in model["vocab"]]
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def describe(self) -> dict:
        """Plain settings for manifests and model metadata."""
        info = {"kind": str(self.kind), "vocab_size": self.tokenizer.get_vocab_size()}
        if self.kind is TokenizerKind.KMER:
            info.update(k=self.k, stride=self.stride)
        return info


def _infer_kind(tokenizer, source: str) -> tuple[TokenizerKind, int | None]:
    model = json.loads(tokenizer.to_str())["model"]
    if model["type"] == "Unigram":
        return TokenizerKind.UNIGRAM, None
    if model["type"] == "WordLevel":
        lengths = {len(token) for token in model["vocab"] if token not in SPECIAL_TOKENS}
        if len(lengths) == 1:
            return TokenizerKind.KMER, lengths.pop()
    raise InputError(source, f"unsupported tokeniser model {model['type']!r}: expected Unigram or k-mer")


def sequence_tokenizer_from_json(text: str, source: str = "tokeniser", stride: int = 1) -> SequenceTokenizer:
    """Rebuild a :class:`SequenceTokenizer` from tokeniser JSON text."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as error:  # the Rust parser raises a bare Exception on malformed JSON
        raise InputError(source, f"not a tokenizers JSON file ({error})") from None
    missing = [token for token in SPECIAL_TOKENS if tokenizer.token_to_id(token) is None]
    if missing:
        raise InputError(source, f"tokeniser lacks special tokens {missing}")
    kind, k = _infer_kind(tokenizer, source)
    return SequenceTokenizer(tokenizer, kind, k, stride)


def load_sequence_tokenizer(path: str | os.PathLike, stride: int = 1) -> SequenceTokenizer:
    """Load a tokeniser JSON written by ``tokenise_bio`` or ``kmerise_bio`` (local or ``s3://``)."""
    return sequence_tokenizer_from_json(read_text(path), str(path), stride)


def as_pretrained_tokenizer(sequence_tokenizer: SequenceTokenizer):
    """The same tokeniser as a ``transformers.PreTrainedTokenizerFast`` with its special roles set."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(sequence_tokenizer.to_json()),
        bos_token=BOS,
        eos_token=EOS,
        cls_token=BOS,
        sep_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=MASK,
    )
