#!/usr/bin/env python3
"""The Hugging Face side of tests/unit/tokenizer_offsets_test.cc, run at
test time (nothing is downloaded):

    tokenizer_offsets_peer.py OUT_DIR SOURCE_DIR

For the byte-level goldens of tests/golden/tokenizer and every
SentencePiece-style / Unigram kind tokenizer_spm_peer.py builds, writes
OUT_DIR/NAME.tokenizer.json and OUT_DIR/NAME.offsets.json:
  [{"text", "ids", "offsets"}]
with HF tokenizers' encode(text, add_special_tokens=False) ids and offsets,
the offsets turned from characters into UTF-8 bytes of the text.
"""

import json
import os
import sys

from tokenizers import Tokenizer


def byte_offsets(text, offsets):
    at = [0]
    for ch in text:
        at.append(at[-1] + len(ch.encode("utf-8")))
    return [[at[a], at[b]] for a, b in offsets]


def main():
    out_dir, source = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    golden = os.path.join(source, "tests/golden/tokenizer")
    sys.path.insert(0, os.path.join(source, "tests/golden"))
    import tokenizer_spm_peer as spm
    texts = [t for t in spm.CORPUS if len(t) < 1000]
    texts += ["x😀y", "  two  spaces ", "<|im_start|>Hi 你好<|im_end|>\n",
              " <|im_end|>  ", "\u1100\u1161\u11a8 hangul jamo",
              "Ça va? 😀\n\n  end  "]
    tokenizers = {}
    for name in ("gpt2", "gpt2_prefix_space", "llama3", "qwen2"):
        path = os.path.join(golden, name + ".tokenizer.json")
        tokenizers[name] = Tokenizer.from_file(path)
        with open(os.path.join(golden, name + ".expected.json")) as f:
            cases = json.load(f)["cases"]
        tokenizers[name + "@texts"] = [c["text"] for c in cases]
    for kind in spm.KINDS:
        tokenizers[kind] = spm.build(kind)
    for name, tok in list(tokenizers.items()):
        if name.endswith("@texts"):
            continue
        tok.save(os.path.join(out_dir, name + ".tokenizer.json"))
        rows = []
        for text in texts + tokenizers.get(name + "@texts", []):
            enc = tok.encode(text, add_special_tokens=False)
            rows.append({"text": text, "ids": enc.ids,
                         "offsets": byte_offsets(text, enc.offsets)})
        with open(os.path.join(out_dir, name + ".offsets.json"), "w") as f:
            json.dump(rows, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
