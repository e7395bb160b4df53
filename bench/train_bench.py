"""Training benchmark: lorad (NF4 base, C++/LibTorch) beside HF transformers
+ PEFT doing the same LoRA training on the same weights and data, in the
same run; the peer runs twice, on a dense fp32 base and on a bitsandbytes
NF4 base (QLoRA as PEFT users run it). Prints one JSON object per measurement and one comparison per
model with the ratios (ours / peer): tokens/s (goal > 1) and peak memory
(goal < 1). Peak memory is each process's own peak RSS (getrusage
ru_maxrss), so both sides are measured the same way, runtime included.

  .venv/bin/python bench/train_bench.py --build build            # tiny + llama-100m
  .venv/bin/python bench/train_bench.py --build build --models tiny --steps 5
  .venv/bin/python bench/train_bench.py --build build --compute_dtype bfloat16
  .venv/bin/python bench/train_bench.py --build build --quantization int8

--compute_dtype sets both sides' compute dtype (ours: the job's
compute_dtype; the peer: its --dtype, the dense base's dtype and
bitsandbytes' compute dtype). --quantization int8 puts both sides' base in
LLM.int8 (ours: the job's quantization; the quantized peer: bitsandbytes
load_in_8bit instead of its NF4).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Per model: steps, batch, seq (bounded so the whole run stays in minutes).
SETTINGS = {
    "tiny": {"steps": 30, "batch": 8, "seq": 128},
    "llama-100m": {"steps": 8, "batch": 2, "seq": 128},
    "llama-100m-v128k": {"steps": 6, "batch": 4, "seq": 128},
}


def write_dataset(path, n=400):
    """Deterministic English-like text, enough to pack many windows."""
    subjects = ["The sky", "A river", "Our daemon", "The model", "Every cat",
                "The old map", "A quiet server", "The adapter"]
    verbs = ["turns", "sings to", "remembers", "answers", "follows",
             "waits for", "measures", "carries"]
    objects = ["the blue light", "seven small stones", "a long request",
               "the evening train", "its own shadow", "the loss curve",
               "a warm cup of tea", "every token"]
    with open(path, "w") as f:
        for i in range(n):
            words = [f"{subjects[(i * 3 + k) % 8]} {verbs[(i + 2 * k) % 8]} "
                     f"{objects[(i * 5 + k) % 8]}." for k in range(3)]
            f.write(json.dumps({"text": " ".join(words)}) + "\n")


def run(cmd, env):
    """Runs cmd and returns the last JSON object it printed (or an error)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": f"{cmd[0]} exited {proc.returncode}: {err[-2000:]}"}
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        return {"error": f"{cmd[0]} printed no JSON: {err[-2000:]}"}
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build", help="CMake build directory")
    ap.add_argument("--models", default="tiny,llama-100m")
    ap.add_argument("--steps", type=int, default=0, help="override steps")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cache_dir", default=os.path.join(
        tempfile.gettempdir(), "lorad-bench-models"))
    ap.add_argument("--compute_dtype", default="float32",
                    choices=["float32", "bfloat16"])
    ap.add_argument("--quantization", default="nf4", choices=["nf4", "int8"],
                    help="the quantized base of ours and of the bitsandbytes peer")
    ap.add_argument("--logits_chunk_bytes", type=int, default=None,
                    help="ours: past this many bytes of logits the head runs "
                    "in chunks (0: never; default: lorad's)")
    ap.add_argument("--skip_peer_nf4", action="store_true",
                    help="skip the peer with a bitsandbytes quantized base")
    args = ap.parse_args()

    binary = os.path.join(args.build, "bench", "train_bench")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: build the train_bench target first")
    # Both sides get the same OpenMP settings. A passive wait keeps idle
    # OpenMP workers from spinning, which on a busy machine costs whichever
    # side has more threads far more than the work itself.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_WAIT_POLICY", "passive")
    work = tempfile.mkdtemp(prefix="lorad-train-bench-")
    data = os.path.join(work, "data.jsonl")
    write_dataset(data)

    for name in args.models.split(","):
        s = dict(SETTINGS[name])
        if args.steps:
            s["steps"] = args.steps
        model_dir = run([binary, f"--model={name}", f"--cache_dir={args.cache_dir}",
                         "--write_model_only"], env)
        if "error" in model_dir:
            print(json.dumps({"bench": "train", "model": name, **model_dir}))
            continue
        model_dir = model_dir["model_dir"]
        common = [f"--steps={s['steps']}", f"--batch={s['batch']}",
                  f"--seq={s['seq']}", "--rank=8", "--alpha=16",
                  f"--threads={args.threads}"]
        ours = run([binary, f"--model={name}", f"--cache_dir={args.cache_dir}",
                    f"--data={data}", f"--work_dir={work}/ours",
                    "--gradient_checkpointing=true",
                    f"--compute_dtype={args.compute_dtype}",
                    f"--quantization={args.quantization}"] + common
                   + ([] if args.logits_chunk_bytes is None else
                      [f"--logits_chunk_bytes={args.logits_chunk_bytes}"]),
                   env)
        print(json.dumps(ours), flush=True)
        peers = [("hf-peft", [])]
        if not args.skip_peer_nf4:
            peers.append((f"hf-peft-bnb-{args.quantization}",
                          [f"--quant={args.quantization}"]))
        for label, extra in peers:
            peer = run([sys.executable, os.path.join(HERE, "train_peer.py"),
                        f"--model_dir={model_dir}", f"--data={data}",
                        f"--name={name}", "--gradient_checkpointing=1",
                        f"--dtype={args.compute_dtype}"]
                       + common + extra, env)
            print(json.dumps(peer), flush=True)
            if "error" in ours or "error" in peer:
                continue
            print(json.dumps({
                "bench": "train_compare", "model": name, "peer": label,
                "device": ours["device"], "threads": args.threads,
                "compute_dtype": args.compute_dtype,
                "quantization": args.quantization,
                "tokens_per_second_ours": ours["tokens_per_second"],
                "tokens_per_second_peer": peer["tokens_per_second"],
                "tokens_per_second_ratio":
                    ours["tokens_per_second"] / peer["tokens_per_second"],
                "peak_rss_bytes_ours": ours["peak_rss_bytes"],
                "peak_rss_bytes_peer": peer["peak_rss_bytes"],
                "peak_memory_ratio":
                    ours["peak_rss_bytes"] / peer["peak_rss_bytes"],
                "goal": "tokens_per_second_ratio > 1 at peak_memory_ratio < 1",
            }), flush=True)


if __name__ == "__main__":
    main()
