#!/usr/bin/env python3
"""The TRL side of tests/unit/dpo_trl_test.cc (nothing is downloaded):

  make-model OUT    write a small random Llama (config.json and
                    model.safetensors, fp32) to OUT; the test adds the
                    tokenizer files
  trl-eval MODEL ADAPTER DATA BETA LOSS_TYPE BATCH MAX_LENGTH OUT
                    load MODEL with the PEFT adapter ADAPTER and evaluate it
                    with TRL's DPOTrainer on the preference rows of DATA
                    (JSONL), the reference being the same base without the
                    adapter; write trainer.evaluate()'s metrics to OUT (JSON)

The reference is passed as a second copy of the base: TRL 1.16, given a
PeftModel that already holds an adapter and no ref_model, would copy that
adapter as the reference ("ref"), which is not the base. The adapter lorad
trained started from B = 0, so the base is its reference. bf16=False: TRL
defaults to bf16 autocast, lorad's fp32 model computes in fp32.
"""
import json
import sys
import tempfile

import torch


def make_model(out):
    import transformers
    torch.manual_seed(4321)
    cfg = transformers.LlamaConfig(
        vocab_size=259, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-6, bos_token_id=256,
        eos_token_id=257, pad_token_id=258, rope_theta=10000.0,
        tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(out, safe_serialization=True)


def trl_eval(model_dir, adapter, data, beta, loss_type, batch, max_length,
             out):
    import datasets
    import peft
    import transformers
    import trl
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        model_dir, local_files_only=True)
    base = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, local_files_only=True)
    model = peft.PeftModel.from_pretrained(base, adapter, is_trainable=True)
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, local_files_only=True)
    with open(data) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    ds = datasets.Dataset.from_list(rows)
    with tempfile.TemporaryDirectory() as tmp:
        args = trl.DPOConfig(
            output_dir=tmp, report_to="none", beta=float(beta),
            loss_type=[loss_type], max_length=int(max_length),
            per_device_eval_batch_size=int(batch), use_cpu=True,
            bf16=False, dataset_num_proc=None)
        trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args,
                                 train_dataset=ds, eval_dataset=ds,
                                 processing_class=tokenizer)
        metrics = trainer.evaluate()
    with open(out, "w") as f:
        json.dump(metrics, f)


def main():
    if sys.argv[1] == "make-model":
        make_model(sys.argv[2])
    elif sys.argv[1] == "trl-eval":
        trl_eval(*sys.argv[2:10])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
