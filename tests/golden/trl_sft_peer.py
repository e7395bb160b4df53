#!/usr/bin/env python3
"""The TRL side of tests/unit/training_data_trl_test.cc, run at test time
(nothing is downloaded):

    trl_sft_peer.py OUT_DIR SOURCE_DIR

Writes model directories as transformers saves them (tokenizer.json,
tokenizer_config.json with a chat template and eos_token, config.json of a
tiny random Llama) in five shapes:

  chatml   byte-level BPE, no BOS, the Qwen2.5 ChatML template, EOS <|im_end|>
  llama3   byte-level BPE, BOS from the post-processor, the Llama 3.1
           template (which writes bos_token itself), EOS <|eot_id|>
  llama2   SentencePiece-style BPE with byte fallback, BOS from the
           post-processor, the Llama 2 [INST] template, EOS </s>
  chatml_gen
           chatml's tokenizer (NFC normalizer) with a template of
           {% generation %} blocks, chat_templates/chatml_generation.jinja
  llama2_gen
           llama2's tokenizer with chat_templates/llama2_generation.jinja,
           whose blocks start inside a token ("▁Hi")

and, for each, the rows of OUT_DIR/rows_{text,prompt,chat}.jsonl as TRL's
SFTTrainer prepares them (its own dataset preparation, on a trainer built
over the tiny model): OUT_DIR/NAME/expected.json
  {"text": [{input_ids, labels}], "prompt": [...], "chat": [...],
   "chat_assistant_only": [...] or {"error": why TRL refused}}
with TRL's labels (the id where the loss applies, else -100);
chat_assistant_only is the chat rows with assistant_only_loss=True.
"""

import json
import os
import sys

ROWS = {
    "text": [
        {"text": "Hello world, this is a test of the tokenizer."},
        {"text": "naïve café 日本語 😀 and\ttabs\nnew lines"},
        {"text": "  leading spaces and code: def f(x):\n    return x\n"},
    ],
    "prompt": [
        {"prompt": "Q: What is 2 + 2?\nA:", "completion": " 4"},
        {"prompt": "Translate to French: cat", "completion": " chat"},
        {"prompt": "Say hi", "completion": "Hi! 😀 Ça va?"},
    ],
    "chat": [
        {"messages": [{"role": "user", "content": "Hello!"},
                      {"role": "assistant", "content": "Hi, how can I help?"}]},
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "What is 7 times 6?"},
                      {"role": "assistant", "content": "42."},
                      {"role": "user", "content": "And in words?"},
                      {"role": "assistant", "content": "Forty-two."}]},
        {"messages": [{"role": "user", "content": "Café 你好"},
                      {"role": "assistant", "content": "こんにちは 😀"}]},
        {"messages": [{"role": "system", "content": "Réponds en français 🇫🇷"},
                      {"role": "user", "content": "Wie geht's? Cafe\u0301"},
                      {"role": "assistant",
                       "content": "Très bien, merci ! ✓ 日本"},
                      {"role": "user", "content": "Encore une fois"},
                      {"role": "assistant", "content": "Hello world, ça roule 😀👍"}]},
    ],
}


def byte_level_dir(path, source, golden, added, post):
    from tokenizers import AddedToken, Tokenizer
    tok = Tokenizer.from_file(os.path.join(source, "tests/golden/tokenizer",
                                           golden + ".tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t in added])
    tok_json = json.loads(tok.to_str())
    if post is not None:
        bos_id = tok.token_to_id(post)
        tok_json["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": post, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": post, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": post, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {post: {"id": post, "ids": [bos_id],
                                      "tokens": [post]}}}
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        json.dump(tok_json, f, ensure_ascii=False)
    return tok_json


def spm_dir(path, source, kind="llama2", turn_tokens=()):
    from tokenizers import AddedToken
    sys.path.insert(0, os.path.join(source, "tests/golden"))
    import tokenizer_spm_peer
    tok = tokenizer_spm_peer.build(kind)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t in turn_tokens])
    tok_json = json.loads(tok.to_str())
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        json.dump(tok_json, f, ensure_ascii=False)
    return tok_json


def write_dir(out_dir, source, name):
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    templates = os.path.join(source, "tests/golden/chat_templates")
    if name == "chatml_gen":
        tok_json = byte_level_dir(path, source, "qwen2",
                                  ["<|im_start|>", "<|im_end|>"], None)
        template, config = "chatml_generation.jinja", {
            "eos_token": "<|im_end|>", "pad_token": "<|end_of_text|>",
            "bos_token": None, "model_type": "qwen2"}
    elif name == "llama2_gen":
        tok_json = spm_dir(path, source)
        template, config = "llama2_generation.jinja", {
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "legacy": False, "model_type": "llama"}
    elif name == "gemma":
        # Gemma's SentencePiece-style tokenizer (BOS from its post-processor)
        # with its turn tokens, and Gemma 3's template.
        tok_json = spm_dir(path, source, "gemma",
                           ["<start_of_turn>", "<end_of_turn>"])
        template, config = "gemma3.jinja", {
            "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
            "unk_token": "<unk>", "model_type": "llama"}
    elif name == "chatml":
        tok_json = byte_level_dir(path, source, "qwen2",
                                  ["<|im_start|>", "<|im_end|>"], None)
        template, config = "qwen2.5.jinja", {
            "eos_token": "<|im_end|>", "pad_token": "<|end_of_text|>",
            "bos_token": None, "model_type": "qwen2"}
    elif name == "llama3":
        tok_json = byte_level_dir(path, source, "llama3",
                                  ["<|start_header_id|>", "<|end_header_id|>"],
                                  "<|begin_of_text|>")
        template, config = "llama3.1.jinja", {
            "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
            "model_type": "llama"}
    else:
        tok_json = spm_dir(path, source)
        template, config = "llama2.jinja", {
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "legacy": False, "model_type": "llama"}
    with open(os.path.join(templates, template)) as f:
        chat_template = f.read()
    model_type = config.pop("model_type")
    config["chat_template"] = chat_template
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["clean_up_tokenization_spaces"] = False
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, ensure_ascii=False)
    vocab = max([a["id"] for a in tok_json["added_tokens"]] +
                list(tok_json["model"]["vocab"].values())) + 1
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"architectures": ["LlamaForCausalLM"],
                   "model_type": model_type if model_type == "llama"
                   else "llama",
                   "vocab_size": vocab, "hidden_size": 16,
                   "intermediate_size": 32, "num_hidden_layers": 1,
                   "num_attention_heads": 2, "num_key_value_heads": 1}, f)
    return path


def trl_rows(path, rows, assistant_only_loss=False):
    import datasets
    import transformers
    import trl
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        path, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.from_pretrained(path, local_files_only=True))
    args = trl.SFTConfig(output_dir=os.path.join(path, "trl"),
                         report_to="none", max_length=None,
                         dataset_num_proc=None, use_cpu=True,
                         assistant_only_loss=assistant_only_loss)
    trainer = trl.SFTTrainer(model=model, args=args,
                             train_dataset=datasets.Dataset.from_list(rows),
                             processing_class=tokenizer)
    return [{"input_ids": list(row["input_ids"]), "labels": list(row["labels"])}
            for row in trainer.train_dataset]


def main():
    out_dir, source = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    for kind, rows in ROWS.items():
        with open(os.path.join(out_dir, f"rows_{kind}.jsonl"), "w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name in ("chatml", "llama3", "llama2", "chatml_gen", "llama2_gen",
                 "gemma"):
        path = write_dir(out_dir, source, name)
        expected = {kind: trl_rows(path, rows) for kind, rows in ROWS.items()}
        try:
            expected["chat_assistant_only"] = trl_rows(path, ROWS["chat"],
                                                       True)
        except (ValueError, RuntimeError) as e:
            expected["chat_assistant_only"] = {"error": str(e)}
        with open(os.path.join(path, "expected.json"), "w") as f:
            json.dump(expected, f)


if __name__ == "__main__":
    main()
