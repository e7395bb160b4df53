"""The peer of bench/train_bench.cc: HF transformers + PEFT doing the same
LoRA training on the same weights and data, printing one JSON object.

Data preparation mirrors lorad's: each JSONL {"text"} example becomes
bos + tokens + eos, the stream is packed into windows of --seq, and every
token is a target. The base stays in --dtype (fp32 on CPU); with
--quant nf4 it is loaded through bitsandbytes 4-bit instead, with --quant
int8 through bitsandbytes LLM.int8.
"""

import argparse
import json
import resource
import time

import torch


def packed_windows(data_path, tokenizer_path, seq, bos, eos):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_path)
    stream = []
    with open(data_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            ids = tok.encode(json.loads(line)["text"], add_special_tokens=False).ids
            stream.extend([bos] + ids + [eos])
    return [stream[i:i + seq] for i in range(0, len(stream) - seq + 1, seq)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--name", default="")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--gradient_checkpointing", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--quant", default="none", choices=["none", "nf4", "int8"])
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = getattr(torch, args.dtype)
    config = AutoConfig.from_pretrained(args.model_dir)
    kwargs = {"dtype": dtype}
    if args.quant == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    elif args.quant == "int8":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, **kwargs)
    model.to(args.device)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                      "gate_proj", "up_proj", "down_proj"],
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    load_seconds = time.perf_counter() - t0

    eos = config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    windows = packed_windows(args.data, f"{args.model_dir}/tokenizer.json",
                             args.seq, config.bos_token_id, eos)
    if len(windows) < args.batch:
        raise SystemExit(f"{args.data}: only {len(windows)} windows of "
                         f"{args.seq} tokens, need {args.batch}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    model.train()

    losses, seconds, tokens = [], 0.0, 0
    pos = 0
    for step in range(args.steps):
        rows = []
        for _ in range(args.batch):
            rows.append(windows[pos % len(windows)])
            pos += 1
        ids = torch.tensor(rows, dtype=torch.long, device=args.device)
        t = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = out.loss.item()
        dt = time.perf_counter() - t
        losses.append(loss)
        if step > 0 or args.steps == 1:  # the first step warms up
            seconds += dt
            tokens += ids.numel()

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.device.startswith("cuda"):
        peak_device = torch.cuda.max_memory_allocated()
    else:
        peak_device = None
    print(json.dumps({
        "bench": "train", "impl": "hf-peft", "model": args.name or args.model_dir,
        "params": sum(p.numel() for p in model.parameters()),
        "device": args.device, "compute_dtype": args.dtype,
        "base": f"bnb-{args.quant}" if args.quant != "none" else args.dtype,
        "steps": args.steps, "batch": args.batch, "seq": args.seq,
        "rank": args.rank,
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "threads": torch.get_num_threads(), "load_seconds": load_seconds,
        "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
        "first_loss": losses[0], "last_loss": losses[-1],
        "peak_rss_bytes": peak, "peak_device_bytes": peak_device,
    }), flush=True)


if __name__ == "__main__":
    main()
