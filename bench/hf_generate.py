"""transformers' generate on a checkpoint in bf16 on the GPU, the peer of bench/cuda_bench.ts.

    python3 bench/hf_generate.py MODEL_DIR '[8, 32, 64]'

Prints JSON {"decode": tok/s at batch 1, "prefill2048": tok/s, "aggregate": {"8": tok/s, ...}} (greedy,
EOS ignored: min_new_tokens = max_new_tokens). Decode rates are (tokens of a 129-token generate minus
those of a 1-token one) over the time difference, so the prefill is left out; median of 3.
"""
import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def timed_generate(model, ids, new_tokens):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def decode_rate(model, batch, vocab, n=128):
    ids = torch.randint(0, vocab, (batch, 16), device="cuda")
    rates = []
    for _ in range(3):
        t1 = timed_generate(model, ids, 1)
        tn = timed_generate(model, ids, n + 1)
        rates.append(batch * n / max(tn - t1, 1e-9))
    return statistics.median(rates)


def main() -> None:
    model_dir, streams = sys.argv[1], json.loads(sys.argv[2])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to("cuda").eval()
    model.generation_config.eos_token_id = None
    vocab = model.config.vocab_size
    with torch.no_grad():
        timed_generate(model, torch.randint(0, vocab, (1, 16), device="cuda"), 4)  # warm up
        out = {"decode": decode_rate(model, 1, vocab)}
        ids = torch.randint(0, vocab, (1, 2048), device="cuda")
        out["prefill2048"] = 2048 / statistics.median(timed_generate(model, ids, 1) for _ in range(3))
        out["aggregate"] = {str(s): decode_rate(model, s, vocab, 64) for s in streams}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
