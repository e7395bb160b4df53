"""Python side of the JSON constrained-decoding tests and bench.

  json_constraint_peer.py validate CASES.json
      CASES.json is a list of {"schema": ..., "output": "..."}; every output
      must parse and validate against its schema with `jsonschema`
      (Draft 2020-12). Prints each failure; exits 1 if any.
  json_constraint_peer.py bpe OUT.json VOCAB_SIZE
      Trains a byte-level BPE tokenizer (GPT-2 style: ByteLevel
      pre-tokenizer and decoder) with `tokenizers` on the Python standard
      library's source plus generated JSON, and writes its tokenizer.json.
"""
import json
import os
import random
import sys
import sysconfig


def validate(path):
    import jsonschema
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    failures = 0
    for i, case in enumerate(cases):
        try:
            value = json.loads(case["output"])
            jsonschema.validate(value, case["schema"],
                                cls=jsonschema.Draft202012Validator)
        except Exception as e:  # report every kind of failure
            failures += 1
            print("case %d: %r\n  schema %s\n  %s" %
                  (i, case["output"], json.dumps(case["schema"]),
                   str(e).splitlines()[0]))
    print("%d cases, %d failures" % (len(cases), failures))
    return 1 if failures else 0


def corpus(limit_bytes):
    """Python sources (up to limit_bytes) and generated JSON lines."""
    root = sysconfig.get_paths()["stdlib"]
    total = 0
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            total += len(text)
            yield text
            if total > limit_bytes:
                break
        if total > limit_bytes:
            break
    rng = random.Random(1)
    words = ["name", "age", "city", "items", "id", "value", "true", "null",
             "description", "type", "price", "tags", "Zürich", "東京"]
    for _ in range(20000):
        obj = {rng.choice(words): rng.choice([rng.randint(-999, 99999),
                                              rng.random(),
                                              rng.choice(words), None, True,
                                              [rng.randint(0, 9)] * 3])
               for _ in range(rng.randint(1, 5))}
        yield json.dumps(obj, ensure_ascii=False, indent=rng.choice([None, 2]))


def bpe(out_path, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False)
    tok.train_from_iterator(corpus(12 << 20), trainer)
    tok.save(out_path)
    print("vocab", tok.get_vocab_size())
    return 0


def main():
    if sys.argv[1] == "validate":
        return validate(sys.argv[2])
    if sys.argv[1] == "bpe":
        return bpe(sys.argv[2], int(sys.argv[3]))
    raise SystemExit("unknown mode " + sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
