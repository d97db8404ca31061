#!/usr/bin/env python3
"""Regenerate hearth's GGUF tokenizer fixtures.

    python3 test/oracle/make_gguf_fixtures.py

Writes, and nothing else:
    test/fixtures/gguf/spm-tiny.gguf          a SentencePiece-BPE vocabulary as GGUF tokenizer
                                              metadata (tokenizer.ggml.model = "llama"), no tensors
    test/fixtures/gguf/spm-tiny.golden.json   ids for the corpus (+ cases with control tokens)

The vocabulary is trained here with the `sentencepiece` library (BPE, byte fallback, digits split,
identity normalisation, whitespace kept, dummy prefix) on the text below, then written with `gguf`
(gguf-py) the way llama.cpp's converter writes a SentencePiece vocabulary: tokens, scores,
token_type (1 normal, 2 unknown, 3 control, 5 unused, 6 byte), bos/eos/unk ids, add_bos_token,
add_space_prefix. Goldens come from SentencePiece itself:

- plain text: `sp.encode(text)` with BOS in front (add_bos_token is true), and `sp.decode(ids)`;
- text containing control tokens (<|im_start|>, <|im_end|>): the text is split on them and each
  piece of text between them is encoded by SentencePiece on its own (so each gets the "▁" dummy
  prefix), which is how llama.cpp and Hugging Face's (legacy) Llama tokenizer treat special tokens.

Needs: sentencepiece, gguf, numpy (pip install sentencepiece gguf). Training uses one thread; the
output is identical between runs with the same sentencepiece version.
"""

from __future__ import annotations

import io
import json
import platform
import re
import tempfile
from pathlib import Path

import gguf
import numpy as np
import sentencepiece as spm

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test" / "fixtures" / "gguf"
CORPUS = REPO / "test" / "fixtures" / "tokenizer" / "corpus.json"

VOCAB_SIZE = 700
CONTROL = ["<|im_start|>", "<|im_end|>"]

TRAINING_TEXT = """\
The sun rose slowly over the quiet harbour, and the fishing boats began to move out.
Nobody on the pier said very much; they had all seen this a thousand times before.
A language model reads a sequence of tokens and predicts the next one, again and again.
The quality of the output depends on the model, the prompt, and the sampling settings.
Question: What is the capital of France? Answer: The capital of France is Paris.
Question: How many legs does a spider have? Answer: A spider has eight legs.
She didn't know where they'd gone, but she'd find them. "We'll see," he said.
It's the kind of thing you're told once and never forget. I'm sure they've left.
Dear customer, thank you for your order #48213. The total was $129.99 including tax.
In 1969, humans first walked on the Moon. The mission lasted 8 days and 3 hours.
def greet(name: str) -> str:
    return f"Hello, {name}!"
for i in range(10):
    print(i, i * i)
function add(a, b) { return a + b; }
const items = [1, 2, 3].map((x) => x * 2);
The weather today is mild, with light winds from the west and a chance of rain.
Once upon a time there was a small robot who wanted to learn how to paint.
Every morning it mixed colours, and every evening it looked at its paintings.
Guten Morgen! Wie geht es Ihnen? Die Straße ist sehr schön, und die Bäume sind grün.
Bonjour à tous ! Où est la gare ? Nous avons mangé une crème brûlée délicieuse.
¿Cómo estás? Mañana vamos a la playa con los niños.
Привет, мир! Как дела? Сегодня хорошая погода.
    indented    text   with   runs   of   spaces
"""

EXTRA_CASES = [
    "<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n",
    "Hi<|im_end|>",
    "<|im_start|><|im_end|>",
    "a <|im_start|> b",
]


def train() -> spm.SentencePieceProcessor:
    lines = [line for line in TRAINING_TEXT.splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        allow_whitespace_only_pieces=True,
        character_coverage=0.995,
        control_symbols=CONTROL,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def token_type(sp: spm.SentencePieceProcessor, i: int) -> int:
    if sp.is_unknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.is_control(i):
        return gguf.TokenType.CONTROL
    if sp.is_unused(i):
        return gguf.TokenType.UNUSED
    if sp.is_byte(i):
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def write_gguf(sp: spm.SentencePieceProcessor, path: Path) -> None:
    n = sp.get_piece_size()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("spm-tiny")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([sp.id_to_piece(i).encode("utf-8") for i in range(n)])
    w.add_token_scores([float(sp.get_score(i)) for i in range(n)])
    w.add_token_types([int(token_type(sp, i)) for i in range(n)])
    w.add_unk_token_id(sp.unk_id())
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def encode_with_specials(sp: spm.SentencePieceProcessor, text: str) -> list[int]:
    ids = [sp.bos_id()]
    pattern = "(" + "|".join(re.escape(c) for c in CONTROL) + ")"
    for part in re.split(pattern, text):
        if part in CONTROL:
            ids.append(sp.piece_to_id(part))
        elif part:
            ids.extend(sp.encode(part))
    return ids


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sp = train()
    gguf_path = OUT / "spm-tiny.gguf"
    write_gguf(sp, gguf_path)

    corpus = json.loads(CORPUS.read_text())
    cases = []
    for text in corpus:
        if any(c in text for c in CONTROL) or "<|" in text:
            continue  # corpus strings with other special-token text are left to the gpt2 goldens
        ids = [sp.bos_id()] + sp.encode(text)
        cases.append({
            "text": text,
            "ids": ids,
            "pieces": [sp.id_to_piece(i) for i in ids],
            "decoded": sp.decode(ids[1:]),
        })
    special_cases = [{"text": t, "ids": encode_with_specials(sp, t)} for t in EXTRA_CASES]
    n = sp.get_piece_size()
    golden = {
        "schema_version": 1,
        "gguf": str(gguf_path.relative_to(REPO)),
        "method": "sentencepiece encode (BOS + ids); control tokens split out first, each text run encoded alone",
        "versions": {
            "python": platform.python_version(),
            "sentencepiece": spm.__version__,
            "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
            "numpy": np.__version__,
        },
        "vocab_size": n,
        "special_tokens": {sp.id_to_piece(i): i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)},
        "byte_tokens": sum(1 for i in range(n) if sp.is_byte(i)),
        "cases": cases,
        "special_cases": special_cases,
    }
    with open(OUT / "spm-tiny.golden.json", "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {gguf_path} ({gguf_path.stat().st_size} bytes), {len(cases)} + {len(special_cases)} cases")


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
