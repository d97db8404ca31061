#!/usr/bin/env python3
"""Regenerate the block-quantization goldens under test/fixtures/quant/ with the `gguf` Python
package's numpy reference (gguf/quants.py), which test/quant/quant_test.ts checks the C kernels against.

    pip install gguf numpy
    python3 test/oracle/make_quant_goldens.py

Seeded: rerunning writes the same bytes. Written (ROWS x COLS values per type, little-endian):

    <type>.blocks.bin     ROWS rows of raw GGUF blocks: random codes and scale bytes, with every f16
                          field (d, dmin, m) a finite random value, so each row is a valid weight row
    <type>.deq.f32        gguf.quants.dequantize of those blocks, float32 (ROWS, COLS)
    quantize.src.f32      float32 (ROWS, COLS) rows to quantize (Gaussian, with a few hard blocks:
                          all zeros, one outlier, exact .5 ties, all equal, all negative)
    q8_0.quant.bin, q4_0.quant.bin   gguf.quants.quantize of quantize.src.f32
    manifest.json         rows, cols, the gguf version, and per type its hearth dtype code and sizes
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "quant"
ROWS, COLS = 4, 512

# name -> (gguf type, hearth dtype code, byte offsets of the f16 fields inside one block)
TYPES = {
    "q8_0": (Q.Q8_0, 3, [0]),
    "q4_0": (Q.Q4_0, 4, [0]),
    "q4_1": (Q.Q4_1, 5, [0, 2]),
    "q5_0": (Q.Q5_0, 6, [0]),
    "q5_1": (Q.Q5_1, 7, [0, 2]),
    "q2_k": (Q.Q2_K, 8, [80, 82]),
    "q3_k": (Q.Q3_K, 9, [108]),
    "q4_k": (Q.Q4_K, 10, [0, 2]),
    "q5_k": (Q.Q5_K, 11, [0, 2]),
    "q6_k": (Q.Q6_K, 12, [208]),
}


def random_blocks(rng: np.random.Generator, qtype: Q, f16_offsets: list[int]) -> np.ndarray:
    block, size = GGML_QUANT_SIZES[qtype]
    nb = ROWS * COLS // block
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    for off in f16_offsets:
        # magnitudes 2^-12 .. 2^-2, random sign: finite, normal f16 values of the size real files have
        mag = np.exp2(rng.uniform(-12, -2, size=nb)).astype(np.float32)
        sign = np.where(rng.random(nb) < 0.8, 1.0, -1.0).astype(np.float32)
        raw[:, off:off + 2] = (mag * sign).astype(np.float16).view(np.uint8).reshape(nb, 2)
    return raw.reshape(ROWS, -1)


def quantize_source(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(0, 1, size=(ROWS, COLS)).astype(np.float32) * np.float32(0.05)
    x[0, 0:32] = 0  # all zeros: d = 0
    x[0, 32:64] *= 0.01
    x[0, 40] = 3.0  # one outlier
    x[0, 64:96] = np.linspace(-4, 4, 32, dtype=np.float32)  # ties on the grid
    x[0, 96:128] = 0.25  # all equal
    x[1, 0:256] = -np.abs(x[1, 0:256])  # all negative super-block
    x[1, 256:512] = np.abs(x[1, 256:512]) + 0.1  # all positive, away from 0
    x[2] *= np.float32(40)  # large magnitudes
    x[3] *= np.float32(1e-3)  # small magnitudes
    return x


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    manifest: dict = {"rows": ROWS, "cols": COLS, "gguf_version": version("gguf"), "types": {}}
    for name, (qtype, code, f16_offsets) in TYPES.items():
        blocks = random_blocks(rng, qtype, f16_offsets)
        deq = dequantize(blocks, qtype).astype(np.float32)
        assert deq.shape == (ROWS, COLS) and np.isfinite(deq).all(), name
        (OUT / f"{name}.blocks.bin").write_bytes(blocks.tobytes())
        (OUT / f"{name}.deq.f32").write_bytes(deq.astype("<f4").tobytes())
        block, size = GGML_QUANT_SIZES[qtype]
        manifest["types"][name] = {"dtype": code, "block_elems": block, "block_bytes": size}
    src = quantize_source(rng)
    (OUT / "quantize.src.f32").write_bytes(src.astype("<f4").tobytes())
    for name in ("q8_0", "q4_0"):
        q = quantize(src, TYPES[name][0])
        (OUT / f"{name}.quant.bin").write_bytes(q.tobytes())
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
