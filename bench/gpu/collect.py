"""Merges the JSON lines run_all.sh wrote under a work folder into one
results file with the device, the commit and, where both sides of a
comparison were measured, the ratios against the issue's goals.

  python3 bench/gpu/collect.py --work DIR --out bench/results/DEVICE-COMMIT.json
"""

import argparse
import glob
import json
import os


def read_lines(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                rows.append({"unparsed": line[:500]})
    return rows


# lorad's train_bench names its fields its own way; the device peak (what
# the worker reports) is preferred over the process's host RSS.
TOKENS_KEYS = ("tokens_per_s", "tokens_per_second")
PEAK_KEYS = ("peak_bytes", "reported_peak_bytes", "peak_rss_bytes")
DECODE_KEYS = ("decode_tokens_per_s", "decode_tokens_per_second")


def _first(row, keys):
    for k in keys:
        if row.get(k):
            return row[k]
    return None


def comparisons(results):
    """ours vs peer, matched on model/seq (training) or batch (decode)."""
    out = []
    train = [r for r in results if r.get("bench") == "train"]
    for peer in [r for r in train if r.get("side") == "hf_peft"]:
        ours = [r for r in train if r.get("side") == "lorad"
                and r.get("model") == peer["model"] and r.get("seq") == peer["seq"]
                and _first(r, TOKENS_KEYS) is not None]
        row = {"compare": "train", "model": peer["model"], "seq": peer["seq"],
               "peer_tokens_per_s": peer["tokens_per_s"],
               "peer_peak_bytes": peer["peak_bytes"],
               "goal": "tokens/s ratio >= 1.5 at peak memory ratio < 0.4"}
        if ours:
            o = ours[0]
            tps = _first(o, TOKENS_KEYS)
            row["ours_tokens_per_s"] = tps
            row["tokens_per_s_ratio"] = round(tps / peer["tokens_per_s"], 3)
            peak = _first(o, PEAK_KEYS)
            if peak:
                row["ours_peak_bytes"] = peak
                row["ours_peak_key"] = next(k for k in PEAK_KEYS if o.get(k))
                row["peak_memory_ratio"] = round(peak / peer["peak_bytes"], 3)
        else:
            row["ours"] = "missing"
        out.append(row)
    decode = [r for r in results if r.get("bench") == "decode"]
    for peer in [r for r in decode if r.get("side") == "hf_generate"]:
        # lorad's serving_bench measures base / shared / distinct adapters;
        # the peer runs the base model, so compare against "base".
        ours = [r for r in decode if r.get("side") == "lorad"
                and r.get("batch") == peer["batch"]
                and r.get("mode", "base") == "base"
                and _first(r, DECODE_KEYS) is not None]
        row = {"compare": "decode", "model": peer["model"], "batch": peer["batch"],
               "peer_decode_tokens_per_s": peer["decode_tokens_per_s"],
               "goal": "ratio > 1 at batch 1"}
        if ours:
            tps = _first(ours[0], DECODE_KEYS)
            row["ours_decode_tokens_per_s"] = tps
            row["ratio"] = round(tps / peer["decode_tokens_per_s"], 3)
        else:
            row["ours"] = "missing"
        out.append(row)
    for r in results:
        if r.get("bench") == "decode_ratio" and r.get("side") == "lorad":
            out.append({"compare": "multi_adapter_decode", "batch": r.get("batch"),
                        "distinct_over_base": r.get("distinct_over_base"),
                        "shared_over_base": r.get("shared_over_base"),
                        "goal": "distinct_over_base >= 0.85 at batch 32"})
    for r in results:
        if r.get("bench") == "fused_train" and "ratio_tokens_per_second" in r:
            out.append({"compare": "fused_train", "model": r.get("model"),
                        "batch_per_job": r.get("batch_per_job"), "seq": r.get("seq"),
                        "jobs": r.get("jobs"),
                        "ratio_tokens_per_second": r["ratio_tokens_per_second"],
                        "goal": "4 jobs at once / one after another >= 1.5"})
        if r.get("bench") == "memory_peak":
            out.append({"compare": "memory_estimate", "choice": r.get("choice"),
                        "estimate_over_peak": r.get("ratio"),
                        "goal": "within 15% of the measured peak"})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="")
    ap.add_argument("--commit", default="")
    args = ap.parse_args()
    results = []
    for path in sorted(glob.glob(os.path.join(args.work, "*.jsonl"))):
        for r in read_lines(path):
            r.setdefault("source", os.path.basename(path))
            results.append(r)
    doc = {"device": args.device, "commit": args.commit,
           "results": results, "comparisons": comparisons(results)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(results)} results, "
          f"{len(doc['comparisons'])} comparisons")


if __name__ == "__main__":
    main()
