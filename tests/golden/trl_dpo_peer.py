#!/usr/bin/env python3
"""The TRL side of tests/unit/preference_data_trl_test.cc, run at test time
(nothing is downloaded):

    trl_dpo_peer.py OUT_DIR SOURCE_DIR

Writes the model directories of trl_sft_peer.py (chatml, llama3, llama2,
gemma: tokenizers with and without BOS, with their chat templates) and,
for each, the preference rows of OUT_DIR/rows_{text,conv}.jsonl as TRL's
DPOTrainer prepares them (its own dataset preparation) and its collator
hands them to the model, one pair at a time: OUT_DIR/NAME/expected.json

  {"text": [...], "conv": [...], "text_12": [...]}

each a list of {"chosen_ids", "chosen_mask", "rejected_ids",
"rejected_mask"} (the mask is TRL's completion_mask), with max_length=None
except text_12 (max_length=12, so that long prompts are dropped and long
completions cut).
"""

import json
import os
import sys

ROWS = {
    "text": [
        {"prompt": "Q: What is 2 + 2?\nA:", "chosen": " 4", "rejected": " 5"},
        {"prompt": "Translate to French: cat", "chosen": " chat",
         "rejected": " chien, which is a dog"},
        {"prompt": "Say hi", "chosen": "Hi! 😀 Ça va?", "rejected": "No."},
        # The space ends the prompt but merges with the completion.
        {"prompt": "The capital of France is ", "chosen": "Paris",
         "rejected": "Lyon, I think, or maybe Marseille"},
        {"prompt": "", "chosen": "Empty prompt", "rejected": "x"},
    ],
    "conv": [
        {"prompt": [{"role": "user", "content": "Hello!"}],
         "chosen": [{"role": "assistant", "content": "Hi, how can I help?"}],
         "rejected": [{"role": "assistant", "content": "Go away."}]},
        {"prompt": [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 7 times 6?"},
                    {"role": "assistant", "content": "42."},
                    {"role": "user", "content": "And in words?"}],
         "chosen": [{"role": "assistant", "content": "Forty-two."}],
         "rejected": [{"role": "assistant", "content": "Café 你好 😀"}]},
    ],
}

DIRS = ("chatml", "llama3", "llama2", "gemma")


def trl_pairs(path, rows, max_length):
    import datasets
    import transformers
    import trl
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        path, local_files_only=True)
    config = transformers.AutoConfig.from_pretrained(path,
                                                     local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_config(config)
    ref = transformers.AutoModelForCausalLM.from_config(config)
    args = trl.DPOConfig(output_dir=os.path.join(path, "trl_dpo"),
                         report_to="none", max_length=max_length,
                         dataset_num_proc=None, use_cpu=True)
    trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args,
                             train_dataset=datasets.Dataset.from_list(rows),
                             processing_class=tokenizer)
    out = []
    for row in trainer.train_dataset:
        batch = trainer.data_collator([row])
        ids, attn = batch["input_ids"], batch["attention_mask"]
        mask = batch["completion_mask"]
        pair = {}
        for i, name in enumerate(("chosen", "rejected")):
            n = int(attn[i].sum())
            pair[name + "_ids"] = ids[i, :n].tolist()
            pair[name + "_mask"] = mask[i, :n].tolist()
        out.append(pair)
    return out


def main():
    out_dir, source = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(source, "tests/golden"))
    import trl_sft_peer
    os.makedirs(out_dir, exist_ok=True)
    for kind, rows in ROWS.items():
        with open(os.path.join(out_dir, f"rows_{kind}.jsonl"), "w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name in DIRS:
        path = trl_sft_peer.write_dir(out_dir, source, name)
        expected = {"text": trl_pairs(path, ROWS["text"], None),
                    "conv": trl_pairs(path, ROWS["conv"], None),
                    "text_12": trl_pairs(path, ROWS["text"], 12)}
        with open(os.path.join(path, "expected.json"), "w") as f:
            json.dump(expected, f)


if __name__ == "__main__":
    main()
