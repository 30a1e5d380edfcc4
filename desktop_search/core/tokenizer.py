"""The BGE-M3 tokenizer without torch or transformers: a ``tokenizer.json`` read by the `tokenizers` library.

In int8 mode the app process runs the model through ONNX Runtime and needs nothing else from the torch stack
but the tokenizer. transformers' fast XLM-R tokenizer is a wrapper around a Rust `tokenizers` tokenizer, but
not the one in the model's ``tokenizer.json``: transformers 5 rebuilds it on load (a whitespace split before the
Metaspace step, among others), which changes the ids of some inputs (whitespace-only text, spaces around
``<s>``). So the int8 build child, which has transformers, saves the tokenizer FlagEmbedding actually uses
(``backend_tokenizer.to_str()``) and its special ids beside the int8 graph, checks that the saved copy gives the
same ids, and the app loads that copy here (tests compare both on multilingual text, truncation included).

The call signature is the subset of a Hugging Face tokenizer that the app uses (``tok(texts, truncation=True,
max_length=N)["input_ids"]``), so code that counts tokens works with either.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

TOKENIZER_FILE = "tokenizer.json"
SPECIALS_FILE = "tokenizer-specials.json"



class M3Tokenizer:
    """A serialized `tokenizers` tokenizer plus its padding id and the special ids the lexical weights skip;
    thread-safe (one truncating copy per max_length, made once)."""

    def __init__(self, tokenizer_json: str, pad_token_id: int, special_ids: Sequence[int]) -> None:
        from tokenizers import Tokenizer

        self._json = tokenizer_json
        self._Tokenizer = Tokenizer
        base = Tokenizer.from_str(self._json)
        base.no_padding()
        base.no_truncation()
        self._base = base
        self._by_length: dict[int, object] = {}
        self._lock = threading.Lock()
        self.pad_token_id = int(pad_token_id)
        self.special_ids: frozenset[int] = frozenset(int(i) for i in special_ids)

    @classmethod
    def load(cls, folder: Path) -> "M3Tokenizer":
        """The copy saved by :func:`save_from_transformers` in ``folder``."""
        folder = Path(folder)
        meta = json.loads((folder / SPECIALS_FILE).read_text("utf-8"))
        return cls((folder / TOKENIZER_FILE).read_text("utf-8"), meta["pad_token_id"], meta["special_ids"])

    def _truncating(self, max_length: int | None) -> Any:
        if max_length is None:
            return self._base
        tok = self._by_length.get(max_length)
        if tok is None:
            with self._lock:
                tok = self._by_length.get(max_length)
                if tok is None:
                    tok = self._Tokenizer.from_str(self._json)
                    tok.no_padding()
                    tok.enable_truncation(max_length)
                    self._by_length[max_length] = tok
        return tok

    def encode_ids(self, texts: Sequence[str], max_length: int | None = None,
                   add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids with <s> and </s>, cut to ``max_length`` tokens (specials included) as transformers does."""
        tok = self._truncating(max_length)
        return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._base.decode(list(ids))

    def __call__(self, texts: Sequence[str] | str, truncation: bool = False, max_length: int | None = None,
                 add_special_tokens: bool = True, **_ignored: Any) -> dict[str, list[Any]]:
        single = isinstance(texts, str)
        rows = self.encode_ids([texts] if isinstance(texts, str) else texts, max_length if truncation else None,
                               add_special_tokens)
        masks = [[1] * len(r) for r in rows]
        if single:
            return {"input_ids": rows[0], "attention_mask": masks[0]}
        return {"input_ids": rows, "attention_mask": masks}



def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays, padded on the right to the longest row (as XLM-R pads)."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), pad_id, np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def special_ids_of(hf_tokenizer: Any) -> list[int]:
    """The ids FlagEmbedding drops from the lexical weights: CLS, EOS, PAD and UNK."""
    return sorted({
        int(hf_tokenizer.convert_tokens_to_ids(hf_tokenizer.special_tokens_map[name]))
        for name in ("cls_token", "eos_token", "pad_token", "unk_token")
        if name in hf_tokenizer.special_tokens_map
    })


def save_from_transformers(hf_tokenizer: Any, folder: Path, check_texts: Sequence[str]) -> M3Tokenizer:
    """Save the Rust tokenizer inside a transformers fast tokenizer to ``folder``, and prove the saved copy gives
    the same ids on ``check_texts`` (with and without truncation); raises ValueError if it does not."""
    folder = Path(folder)
    copy = M3Tokenizer(hf_tokenizer.backend_tokenizer.to_str(), hf_tokenizer.pad_token_id, special_ids_of(hf_tokenizer))
    for max_length in (None, 16, 512):
        kw = {"truncation": True, "max_length": max_length} if max_length else {}
        expected = [list(r) for r in hf_tokenizer(list(check_texts), **kw)["input_ids"]]
        if copy.encode_ids(check_texts, max_length) != expected:
            raise ValueError("the saved tokenizer does not reproduce the transformers tokenizer's ids")
    (folder / TOKENIZER_FILE).write_text(copy._json, "utf-8")
    (folder / SPECIALS_FILE).write_text(
        json.dumps({"pad_token_id": copy.pad_token_id, "special_ids": sorted(copy.special_ids)}), "utf-8")
    return copy
