"""Greedy generation with log-probabilities from HF transformers, the peer of
lorad's logprobs (tests/unit/logprobs_parity_test.cc).

  greedy MODEL_DIR OUT.json PROMPT_IDS STEPS K
      PROMPT_IDS is comma-separated. Decodes greedily for at most STEPS
      tokens, stopping before the model's eos_token_id (lorad does not report
      that token), and writes one entry per generated token: its id, the
      log_softmax of the step's raw logits at that id, and the K largest
      log-probabilities with their ids (descending).
Nothing is downloaded: MODEL_DIR was written by hf_parity.py make-model.
"""
import json
import sys

import torch


def greedy(model_dir, out, prompt_ids, steps, k):
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, torch_dtype=torch.float32).eval()
    eos = model.config.eos_token_id
    ids = [int(i) for i in prompt_ids.split(",")]
    entries = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            token = int(torch.argmax(logits))
            if token == eos:
                break
            top = torch.topk(logprobs, k)
            entries.append({
                "token_id": token,
                "logprob": float(logprobs[token]),
                "top_ids": [int(i) for i in top.indices],
                "top_logprobs": [float(v) for v in top.values],
            })
            ids.append(token)
    with open(out, "w") as f:
        json.dump(entries, f)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "greedy":
        greedy(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
               int(sys.argv[6]))
    else:
        raise SystemExit(__doc__)
