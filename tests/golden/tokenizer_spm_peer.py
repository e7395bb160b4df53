#!/usr/bin/env python3
"""The Hugging Face side of tests/unit/tokenizer_spm_test.cc and
tokenizer_special_test.cc, run by them at test time (no downloads):

    tokenizer_spm_peer.py OUT_DIR GOLDEN_TOKENIZER_DIR

Builds SentencePiece-style BPE tokenizers with the `tokenizers` library (a
vocabulary trained here on a small built-in corpus, the 256 "<0xNN>" byte
tokens, merges) in the shapes Llama 2, Mistral 7B v0.1 and Gemma ship, plus
variants (Metaspace first/always/never, split, unk without byte fallback,
post-processors) and two Unigram ones, and writes for each kind NAME:

  OUT_DIR/NAME/tokenizer.json
  OUT_DIR/NAME/expected.json   {"cases": [{text, ids, ids_special, decoded,
                                           decoded_skip, stream,
                                           stream_skip}],
                                "decode_only": [{ids, decoded, decoded_skip,
                                                 stream, stream_skip}]}

(stream: the text HF's DecodeStream returns at each id of ids_special / ids,
"" where it returns None; null where it refuses the sequence)

and model directories (tokenizer.json + tokenizer_config.json + config.json,
written as checkpoints on the Hub have them; the byte-level ones reuse
tests/golden/tokenizer/*.tokenizer.json) with what transformers'
AutoTokenizer.from_pretrained makes of them:

  OUT_DIR/dir_NAME/expected.json {"cases": [{text, input_ids, decoded,
                                             decoded_skip}], "empty_ids"}
"""

import json
import os
import random
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models
from tokenizers import normalizers, pre_tokenizers, processors, trainers
from tokenizers.decoders import DecodeStream

META = "\u2581"

TRAIN = [
    "Hello world, this is a test of the tokenizer.",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { sum += v[i]; }",
    "Once upon a time there was a little model that learned to speak.",
    "naïve café résumé über straße",
    "日本語のテキストです。東京は大きい。",
    "emoji 😀 and 🎉 in text",
    "Numbers like 12345 and 3.14159 appear too.",
    "  leading spaces and\ttabs\nand new lines\n\n",
] * 8

CORPUS = [
    "",
    " ",
    "   ",
    "Hello world",
    "Hello  world",
    " Hello world",
    "  Hello world  ",
    "Hello\tworld\n",
    "\n\nparagraph\n\n\nbreaks\r\n",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "    indented = {'key': [1, 2, 3]}  # comment",
    "for (int i = 0; i < n; ++i) { sum += v[i]; }",
    "naïve café résumé über straße",
    "Ωμέγα Привет мир Жук",
    "مرحبا بالعالم",
    "日本語のテキストです。",
    "中文分词测试，谢谢！",
    "한국어 텍스트",
    "emoji 😀🎉 family 👨‍👩‍👧 flags 🇫🇷",
    "e\u0301 combining a\u0308",
    "a\u00a0non-breaking\u3000ideographic space",
    "\u2581already meta\u2581space",
    "12345 3.14159 1e-9",
    "<s>Hello</s>",
    "a<s>b",
    " <s> spaced </s> ",
    "<s><s></s>",
    "text with <tool> inside",
    "<tool>start",
    "x <|im_end|> y",
    "tail <|im_end|>",
    "MixedCASE snake_case kebab-case",
    "\u00e9\u00e8\u00ea \ud7a3 \U0001f600",
    "a" * 60,
    "Ж中Ж",
    "<0x41><0xE6> look like byte tokens",
    "x   <|im_end|>   y",
    "<unk> and </s></s>",
    "\n",
    "\u2581",
    "\u2581\u2581 \u2581",
    # A long prompt: one word for the tokenizers without a pre-tokenizer.
    "The quick brown fox, 日本語 😀\n  def f(x): return x  " * 400,
]


def trained_pieces():
    """A small SentencePiece-like BPE vocabulary and its merges."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", META)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=META, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=["<unk>"],
                                  show_progress=False)
    tok.train_from_iterator(TRAIN, trainer)
    model = json.loads(tok.to_str())["model"]
    pieces = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])
              if t != "<unk>"]
    return pieces, [tuple(m) for m in model["merges"]]


PIECES, MERGES = trained_pieces()


def trained_unigram():
    """A small SentencePiece-like Unigram vocabulary: [(piece, score)]."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=META, prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(TRAIN, trainer)
    return [(p, s) for p, s in json.loads(tok.to_str())["model"]["vocab"]
            if p != "<unk>"]


UNIGRAM_PIECES = trained_unigram()


def vocab_with(specials, drop_bytes=()):
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        name = "<0x%02X>" % b
        if name not in drop_bytes:
            vocab[name] = len(vocab)
    for p in PIECES:
        if p not in vocab:
            vocab[p] = len(vocab)
    return vocab


def template(single, tokens):
    return processors.TemplateProcessing(single=single, special_tokens=tokens)


def spm_decoder(strip):
    steps = [decoders.Replace(META, " "), decoders.ByteFallback(),
             decoders.Fuse()]
    if strip:
        steps.append(decoders.Strip(" ", 1, 0))
    return decoders.Sequence(steps)


def build(kind):
    """The tokenizer of one kind; its specials are <unk>, <s>, </s> (Gemma:
    <pad>, <eos>, <bos>, <unk>)."""
    llama_specials = ["<unk>", "<s>", "</s>"]
    specials = llama_specials
    drop = ()
    byte_fallback, unk, fuse = True, "<unk>", True
    normalizer = pre = decoder = post = None
    prepend_replace = normalizers.Sequence(
        [normalizers.Prepend(META), normalizers.Replace(" ", META)])
    if kind == "llama2":  # Llama 2 / Mistral 7B v0.1 tokenizer.json
        normalizer = prepend_replace
        decoder = spm_decoder(strip=True)
        post = template("<s> $A", [("<s>", 1)])
    elif kind == "metaspace_first":  # transformers' legacy=False conversion
        pre = pre_tokenizers.Metaspace(META, prepend_scheme="first",
                                       split=False)
        decoder = spm_decoder(strip=True)
        post = template("<s> $A </s>", [("<s>", 1), ("</s>", 2)])
    elif kind == "metaspace_always_split":
        pre = pre_tokenizers.Metaspace(META, prepend_scheme="always",
                                       split=True)
        decoder = decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(META, "always")])
        post = processors.RobertaProcessing(("</s>", 2), ("<s>", 1))
    elif kind == "metaspace_never":
        pre = pre_tokenizers.Metaspace(META, prepend_scheme="never",
                                       split=True)
        decoder = decoders.Sequence([decoders.Metaspace(META, "never"),
                                     decoders.ByteFallback(), decoders.Fuse()])
        post = processors.BertProcessing(("</s>", 2), ("<s>", 1))
    elif kind == "gemma":
        specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
        normalizer = normalizers.Replace(" ", META)
        decoder = spm_decoder(strip=False)
        post = template("<bos> $A", [("<bos>", 2)])
    elif kind == "unk_no_fallback":
        normalizer = prepend_replace
        byte_fallback = False
        decoder = spm_decoder(strip=True)
        post = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            template("<s> $A", [("<s>", 1)])])
    elif kind in ("unigram", "unigram_no_fallback"):
        return build_unigram(kind)
    elif kind == "unk_missing_bytes":
        normalizer = prepend_replace
        drop = ("<0xD0>", "<0xE4>", "<0xF0>")
        fuse = False
        decoder = spm_decoder(strip=True)
    else:
        raise ValueError(kind)
    vocab = vocab_with(specials, drop)
    merges = [m for m in MERGES if all(x in vocab for x in m)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk,
                               fuse_unk=fuse, byte_fallback=byte_fallback))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoder
    tok.post_processor = post
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True)
                            for s in specials])
    tok.add_special_tokens([AddedToken("<|im_end|>", normalized=False,
                                       special=True, lstrip=True)])
    tok.add_tokens([AddedToken("<tool>", normalized=True, special=False)])
    return tok


def build_unigram(kind):
    """Unigram kinds: with byte fallback behind a Metaspace pre-tokenizer,
    and without it behind the Prepend/Replace normalizer."""
    vocab = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    fallback = kind == "unigram"
    if fallback:
        vocab += [("<0x%02X>" % b, 0.0) for b in range(256)]
    vocab += UNIGRAM_PIECES
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=fallback))
    if fallback:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(
            META, prepend_scheme="always", split=True)
        tok.decoder = spm_decoder(strip=True)
        tok.post_processor = template("<s> $A </s>", [("<s>", 1), ("</s>", 2)])
    else:
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend(META), normalizers.Replace(" ", META)])
        tok.decoder = decoders.Metaspace(META, "always")
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True)
                            for s in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken("<|im_end|>", normalized=False,
                                       special=True, lstrip=True)])
    tok.add_tokens([AddedToken("<tool>", normalized=True, special=False)])
    return tok


KINDS = ["llama2", "metaspace_first", "metaspace_always_split",
         "metaspace_never", "gemma", "unk_no_fallback", "unk_missing_bytes",
         "unigram", "unigram_no_fallback"]


def random_ids(tok, rng):
    size = tok.get_vocab_size()
    out = []
    for n in (1, 2, 3, 5, 8, 13, 21):
        out.append([rng.randrange(size) for _ in range(n)])
    # Runs of byte tokens, valid and not.
    byte0 = tok.token_to_id("<0x00>") or 0
    for text in ("é", "日本", "😀", "a\u2581b"):
        out.append([tok.token_to_id("<0x%02X>" % b) or byte0
                    for b in text.encode()])
    out.append([byte0 + 0xE6, byte0 + 0x97])  # cut character
    out.append([byte0 + 0xFF, byte0 + 0x41])
    return out


def stream_steps(tok, ids, skip):
    """HF's DecodeStream, one id at a time: the text of each step ("" when
    it holds back), or None when it refuses the sequence."""
    stream = DecodeStream(skip_special_tokens=skip)
    try:
        return [stream.step(tok, i) or "" for i in ids]
    except Exception:  # InvalidPrefix: the decode is not prefix-stable
        return None


def write_kind(out_dir, kind, rng):
    tok = build(kind)
    path = os.path.join(out_dir, kind)
    os.makedirs(path, exist_ok=True)
    tok.save(os.path.join(path, "tokenizer.json"))
    cases = []
    for text in CORPUS:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_special = tok.encode(text).ids
        cases.append({
            "text": text, "ids": ids, "ids_special": ids_special,
            "decoded": tok.decode(ids_special, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids_special, skip_special_tokens=True),
            "stream": stream_steps(tok, ids_special, False),
            "stream_skip": stream_steps(tok, ids_special, True),
        })
    decode_only = []
    for ids in random_ids(tok, rng):
        decode_only.append({
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
            "stream": stream_steps(tok, ids, False),
            "stream_skip": stream_steps(tok, ids, True),
        })
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump({"cases": cases, "decode_only": decode_only}, f)
    return tok


def added_tokens_decoder(tok_json):
    out = {}
    for a in tok_json["added_tokens"]:
        out[str(a["id"])] = {k: a[k] for k in (
            "content", "lstrip", "rstrip", "normalized", "single_word",
            "special")}
    return out


# Model directories: (name, kind of tokenizer.json, config.json model_type,
# tokenizer_config.json fields).
DIRS = [
    ("llama2", "llama2", "llama",
     {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
      "add_eos_token": False, "legacy": False, "bos_token": "<s>",
      "eos_token": "</s>", "unk_token": "<unk>"}),
    ("llama2_legacy", "llama2", "llama",
     {"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": True,
      "add_eos_token": True, "legacy": True, "bos_token": "<s>",
      "eos_token": "</s>", "unk_token": "<unk>"}),
    ("llama2_no_prefix", "llama2", "llama",
     {"tokenizer_class": "LlamaTokenizer", "add_prefix_space": False,
      "bos_token": {"__type": "AddedToken", "content": "<s>",
                    "special": True}, "eos_token": "</s>",
      "unk_token": "<unk>"}),
    ("mistral", "llama2", "mistral",
     {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
      "add_eos_token": False, "legacy": True, "bos_token": "<s>",
      "eos_token": "</s>", "unk_token": "<unk>"}),
    ("gemma", "gemma", "gemma",
     {"tokenizer_class": "GemmaTokenizer", "add_bos_token": True,
      "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>",
      "unk_token": "<unk>", "pad_token": "<pad>"}),
    ("backend_template", "metaspace_first", "llama",
     {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
      "eos_token": "</s>"}),
    ("backend_no_post", "metaspace_always_split", "llama",
     {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
      "eos_token": "</s>", "_no_post_processor": True}),
    ("backend_bos_eos", "unk_no_fallback", "llama",
     {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": True,
      "add_eos_token": True, "bos_token": "<s>", "eos_token": "</s>"}),
    # Byte-level: Qwen2 (no BOS: ByteLevel post-processor), Llama 3 (BOS by
    # a Sequence of ByteLevel and TemplateProcessing), and a Llama 3 file
    # that declares LlamaTokenizer (transformers then keeps the file).
    ("qwen2", "golden:qwen2", "qwen2",
     {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None,
      "eos_token": "<|end_of_text|>", "add_prefix_space": False,
      "_post_processor": {"type": "ByteLevel", "add_prefix_space": False,
                          "trim_offsets": False, "use_regex": False}}),
    ("llama3", "golden:llama3", "llama",
     {"tokenizer_class": "PreTrainedTokenizerFast",
      "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
      "_post_processor": "llama3"}),
    ("llama3_declared_llama", "golden:llama3", "llama",
     {"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": True,
      "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
      "_post_processor": "llama3"}),
]

LLAMA3_POST = {
    "type": "Sequence",
    "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
         "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>",
                                      "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>",
                                    "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>",
                                    "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {
             "id": "<|begin_of_text|>", "ids": [0],
             "tokens": ["<|begin_of_text|>"]}}},
    ],
}


def write_dir(out_dir, golden_dir, name, kind, model_type, config,
              tokenizers_by_kind):
    path = os.path.join(out_dir, "dir_" + name)
    os.makedirs(path, exist_ok=True)
    if kind.startswith("golden:"):
        with open(os.path.join(golden_dir, kind[len("golden:"):] +
                               ".tokenizer.json")) as f:
            tok_json = json.load(f)
    else:
        tok_json = json.loads(tokenizers_by_kind[kind].to_str())
    config = dict(config)
    if config.pop("_no_post_processor", False):
        tok_json["post_processor"] = None
    post = config.pop("_post_processor", None)
    if post is not None:
        tok_json["post_processor"] = LLAMA3_POST if post == "llama3" else post
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        json.dump(tok_json, f, ensure_ascii=False)
    config["added_tokens_decoder"] = added_tokens_decoder(tok_json)
    config["clean_up_tokenization_spaces"] = False
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, ensure_ascii=False)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"model_type": model_type}, f)

    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    cases = []
    for text in CORPUS:
        ids = tok(text)["input_ids"]
        cases.append({
            "text": text, "input_ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
            "stream": stream_steps(tok, ids, False),
            "stream_skip": stream_steps(tok, ids, True),
        })
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump({"cases": cases, "class": type(tok).__name__,
                   "empty_ids": tok("")["input_ids"]}, f)


def main():
    out_dir, golden_dir = sys.argv[1], sys.argv[2]
    rng = random.Random(11)
    tokenizers_by_kind = {kind: write_kind(out_dir, kind, rng)
                          for kind in KINDS}
    for name, kind, model_type, config in DIRS:
        write_dir(out_dir, golden_dir, name, kind, model_type, config,
                  tokenizers_by_kind)


if __name__ == "__main__":
    main()
