"""Logits of one token sequence from transformers on the GPU (float32), for test/gpu/cuda_real_test.ts.

    python3 test/oracle/gpu_logits.py MODEL_DIR '[1, 2, 3]'

Prints JSON {"device": ..., "logits": [...]} with logits (len, vocab) flattened row-major. TF32 is off so
that the GPU computes in true float32.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    model_dir, seq = sys.argv[1], json.loads(sys.argv[2])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").to(device).eval()
    with torch.no_grad():
        logits = model(torch.tensor([seq], device=device)).logits[0].float().cpu()
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(json.dumps({"device": f"{device} ({name})", "logits": logits.flatten().tolist()}))


if __name__ == "__main__":
    main()
