#!/usr/bin/env python3
"""Builds the tokenizer golden files and the tokenizer's Unicode tables.

Run from the repository root with the project venv:

    .venv/bin/python tests/golden/make_tokenizer_golden.py

It writes
  * tests/golden/tokenizer/<name>.tokenizer.json: small byte-level BPE
    tokenizers trained here with the Hugging Face `tokenizers` library on a
    built-in corpus (no downloads), one per supported pre-tokenizer style;
  * tests/golden/tokenizer/<name>.expected.json: test texts with the ids,
    and decodes, that `tokenizers` gives for them;
  * model/src/tokenizer_unicode_tables.cc: letter/number ranges and
    the canonical decomposition data that NFC needs, from Python's
    `unicodedata`.

Everything is deterministic: rerunning it must leave the files unchanged.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models
from tokenizers import normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden", "tokenizer")
TABLES = os.path.join(ROOT, "model", "src", "tokenizer_unicode_tables.cc")

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAIN_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "It's what they've said: we'll see, I'm sure you'd agree, they're right.",
    "Fine-tuning large language models with low-rank adapters saves memory.",
    "QLoRA quantizes the base weights to 4-bit NormalFloat and trains adapters.",
    "def train(model, data):\n    for step, batch in enumerate(data):\n"
    "        loss = model(batch)\n        loss.backward()\n    return loss\n",
    "int main(int argc, char** argv) {\n  return argc > 1 ? 0 : 1;\n}\n",
    "{\"prompt\": \"Hello\", \"response\": \"Hi there!\"}",
    "Numbers: 0 1 2 3 42 128 2048 65536 3.14159 1,000,000 2024-06-01",
    "Café, naïve, résumé, façade, jalapeño, Zürich, Ångström.",
    "Καλημέρα κόσμε, η γλώσσα είναι ελληνική.",
    "Привет, мир! Это тестовый текст на русском языке.",
    "你好，世界！这是一个测试。日本語のテキストも少し。",
    "한국어 문장도 조금 있습니다.",
    "Emoji: 😀 🚀 🎉 👍🏽 ❤️ 🇩🇪",
    "Tabs\tand  double  spaces,   triple spaces.\n\nBlank lines above.",
    "URL: https://example.com/path?query=1&x=y#frag  e-mail: a.b@c.org",
    "Markdown: # Title\n* item one\n* item two\n> quote\n```\ncode\n```",
]

TEST_TEXTS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "   many   spaces   between   words   ",
    "line one\nline two\r\nline three\n\n\nafter blanks\n",
    "\n\n",
    "  \n  \n",
    "\t\ttabs\tinside\t",
    "It's I'M we'LL they'Ve she'D don't can'T you'rE",
    "'s 'S 'll alone' quote'",
    "Numbers 1 12 123 1234 12345 3.14 1,000,000 ٣٤٥ ⅓ ²",
    "x=1234567890",
    "def f(x):\n    return x**2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "Café naïve résumé Zürich ÅNGSTRÖM",
    "e\u0301 decomposed cafe\u0301 and \u1100\u1161\u11a8 jamo",
    "Καλημέρα κόσμε",
    "Привет, мир!",
    "你好，世界！",
    "日本語のテキスト",
    "한국어",
    "😀🚀 emoji 👍🏽 family 👨‍👩‍👧 flag 🇩🇪",
    "mixed: abc123def ĀĂĄ 中文English русский",
    "non\u00a0breaking\u3000ideographic\u2003em space",
    "punct!!! ??? ... --- *** ((( )))",
    "<|begin_of_text|>Hello<|end_of_text|>",
    "text before <|begin_of_text|> and after",
    "<|eot_id|><|eot_id|>double",
    "[MASK] masked [MASK]token",
    "added <tool> token<tool>here",
    "it'ſ long s",
    "\u200bzero width\u200d joiner",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "a" * 200,
    " " * 50 + "x",
]


def random_texts(count, seed):
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") +
            list("0123456789") + list("     \t\n\r") + list("'''") +
            list(".,;:!?-_()[]{}<>\"/\\@#$%^&*+=|~`") +
            list("éüñçÅßøæ") + list("αβγΩ") + list("жзЯ") + list("中文字") +
            list("٣²⅓") + ["\u0301", "\u00a0", "\u3000", "😀", "🚀", "\u200d"] +
            ["'s", "'T", "'re", "'LL", "<|eot_id|>", "\r\n"])
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
            for _ in range(count)]


def trained(pre_tokenizer, normalizer=None, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"])
    # Repeat with variations so that several hundred merges are frequent.
    corpus = []
    for i in range(8):
        for line in TRAIN_CORPUS:
            corpus.append(line if i % 2 == 0 else line.lower())
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens(["<|eot_id|>",
                            AddedToken("[MASK]", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("<tool>", special=False, normalized=False)])
    return tok


def build_tokenizers():
    gpt2_pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    llama3_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    qwen2_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])

    result = {}
    result["gpt2"] = json.loads(trained(gpt2_pre).to_str())
    result["llama3"] = json.loads(
        trained(llama3_pre, ignore_merges=True).to_str())
    result["qwen2"] = json.loads(
        trained(qwen2_pre, normalizer=normalizers.NFC()).to_str())
    # Variants that exercise other accepted encodings of the same things:
    # merges as "a b" strings and add_prefix_space.
    variant = json.loads(json.dumps(result["gpt2"]))
    variant["model"]["merges"] = [
        m if isinstance(m, str) else " ".join(m)
        for m in variant["model"]["merges"]]
    variant["pre_tokenizer"]["add_prefix_space"] = True
    result["gpt2_prefix_space"] = variant
    return result


def expected(tok_json):
    tok = Tokenizer.from_str(json.dumps(tok_json))
    cases = []
    for text in TEST_TEXTS + random_texts(120, seed=1234):
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({
            "text": text,
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
        })
    return {"cases": cases}


def ranges(predicate):
    out = []
    start = None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and predicate(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def format_rows(items, per_line):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + " ".join(items[i:i + per_line]))
    return "\n".join(lines)


def write_tables():
    def category(cp):
        return unicodedata.category(chr(cp))

    letters = ranges(lambda cp: category(cp).startswith("L"))
    numbers = ranges(lambda cp: category(cp).startswith("N"))
    ccc = []
    for first, last in ranges(lambda cp: unicodedata.combining(chr(cp)) != 0):
        run_start = first
        for cp in range(first, last + 2):
            if cp > last or unicodedata.combining(chr(cp)) != unicodedata.combining(chr(run_start)):
                ccc.append((run_start, cp - 1, unicodedata.combining(chr(run_start))))
                run_start = cp
    decomps = []
    for cp in range(sys.maxunicode + 1):
        if 0xAC00 <= cp <= 0xD7A3:
            continue  # Hangul syllables are decomposed algorithmically.
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        second = parts[1] if len(parts) == 2 else 0
        composes = len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp)
        decomps.append((cp, parts[0], second, composes))

    out = []
    out.append("// Generated by tests/golden/make_tokenizer_golden.py from Python's")
    out.append("// unicodedata (Unicode %s). Do not edit." % unicodedata.unidata_version)
    out.append('#include "tokenizer_internal.h"')
    out.append("")
    out.append("namespace lorad::worker::tokenizer_internal {")
    out.append("namespace {")
    out.append("")
    out.append("constexpr CodepointRange kLetters[] = {")
    out.append(format_rows(["{0x%X, 0x%X}," % r for r in letters], 4))
    out.append("};")
    out.append("")
    out.append("constexpr CodepointRange kNumbers[] = {")
    out.append(format_rows(["{0x%X, 0x%X}," % r for r in numbers], 4))
    out.append("};")
    out.append("")
    out.append("constexpr CombiningClassRange kCombiningClasses[] = {")
    out.append(format_rows(["{0x%X, 0x%X, %d}," % r for r in ccc], 3))
    out.append("};")
    out.append("")
    out.append("constexpr CanonicalDecomposition kDecompositions[] = {")
    out.append(format_rows(["{0x%X, 0x%X, 0x%X, %s}," % (c, a, b, "true" if k else "false")
                            for c, a, b, k in decomps], 2))
    out.append("};")
    out.append("")
    out.append("}  // namespace")
    out.append("")
    for name, array, typ in [("LetterRanges", "kLetters", "CodepointRange"),
                             ("NumberRanges", "kNumbers", "CodepointRange"),
                             ("CombiningClassRanges", "kCombiningClasses",
                              "CombiningClassRange"),
                             ("CanonicalDecompositions", "kDecompositions",
                              "CanonicalDecomposition")]:
        out.append("std::span<const %s> %s() { return %s; }" % (typ, name, array))
        out.append("")
    out.append("}  // namespace lorad::worker::tokenizer_internal")
    with open(TABLES, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    if shutil.which("clang-format"):
        subprocess.run(["clang-format", "-i", TABLES], check=True, cwd=ROOT)


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    for name, tok_json in build_tokenizers().items():
        with open(os.path.join(GOLDEN, name + ".tokenizer.json"), "w",
                  encoding="utf-8") as f:
            json.dump(tok_json, f, ensure_ascii=False, indent=1)
            f.write("\n")
        # One case per line keeps the file small and its diffs readable.
        cases = expected(tok_json)["cases"]
        with open(os.path.join(GOLDEN, name + ".expected.json"), "w",
                  encoding="utf-8") as f:
            f.write('{"cases": [\n')
            f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
            f.write("\n]}\n")
    write_tables()


if __name__ == "__main__":
    main()
