"""Renders the chat templates in this directory with transformers'
apply_chat_template(..., tokenize=False) over a set of conversations and
writes goldens.json, which tests/unit/chat_template_test.cc compares lorad's
renders against.

The templates are written from the published ones of each model family; the
tokenizer is built here (no download), with each family's special tokens.

  .venv/bin/python tests/golden/chat_templates/make_goldens.py [--out PATH]
"""

import argparse
import copy
import json
import os

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))

SPECIALS = {
    "llama3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama2": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "mistral_v1": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "mistral_v3": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "chatml": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen2.5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen3": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "gemma2": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
               "unk_token": "<unk>"},
    "gemma3": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
               "unk_token": "<unk>"},
    "phi3": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
    "phi4": {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"},
    "zephyr": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "deepseek_r1": {"bos_token": "<｜begin▁of▁sentence｜>",
                    "eos_token": "<｜end▁of▁sentence｜>"},
    "command_r": {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>",
                  "pad_token": "<PAD>"},
    "hermes_tool_use": {"bos_token": "<s>", "eos_token": "<|im_end|>"},
    "features": {"bos_token": "<B>", "eos_token": "<E>"},
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Days ahead"},
                "hourly": {"type": ["boolean", "integer"],
                           "description": "Hourly detail"},
                "tags": {"type": "array", "items": {"type": "string"},
                         "description": "Extra tags"},
            },
            "required": ["city"],
        },
        "return": {"type": "number", "description": "Degrees"},
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web — returns snippets.",
        "parameters": {"type": "object", "properties": {
            "q": {"type": "string", "description": "Query text"}}},
    },
}

PLAIN = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "How are you?"},
    ],
    "multi": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": " It is 4. "},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
    "unicode": [
        {"role": "system", "content": "Ты — помощник 🤖"},
        {"role": "user", "content": "  héllo wörld\n "},
        {"role": "assistant", "content": "  日本語  "},
        {"role": "user", "content": "emoji 👍🏽 and\ttabs \"quoted\" 'single' {{ not jinja }}"},
    ],
    "not_alternating": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
}

TOOL_CONV = [
    {"role": "system", "content": "Use tools when helpful."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"id": "call12345", "type": "function",
                     "function": {"name": "get_weather",
                                  "arguments": {"city": "Paris", "days": 1}}}]},
    {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
     "content": "{\"temp\": 21.5}"},
    {"role": "assistant", "content": "It is 21.5 °C."},
    {"role": "user", "content": "Thanks"},
]
TOOL_CONV_NO_SYSTEM = TOOL_CONV[1:]
TOOL_CONV_TWO_RESULTS = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": "Checking.",
     "tool_calls": [
         {"id": "call00001", "type": "function",
          "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
         {"id": "call00002", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
    {"role": "tool", "tool_call_id": "call00001", "content": "sunny"},
    {"role": "tool", "tool_call_id": "call00002", "content": "rainy"},
]
THINKING = [
    {"role": "user", "content": "Think first: 2+2?"},
    {"role": "assistant", "content": "<think>\nadd them\n</think>\n\nIt is 4."},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "It is 6.", "reasoning_content": "three and three"},
]
PARTS = [
    {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
    {"role": "user", "content": [{"type": "image"},
                                 {"type": "text", "text": "  What is this?  "}]},
    {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    {"role": "user", "content": "Sure?"},
]

# (template, case name, messages, tools, extra kwargs)
EXTRA_CASES = [
    ("llama3.1", "tools_in_user", TOOL_CONV, [WEATHER], {"date_string": "02 Dec 2026"}),
    ("llama3.1", "tools_in_system", TOOL_CONV_NO_SYSTEM, [WEATHER, SEARCH],
     {"tools_in_user_message": False}),
    ("llama3.1", "builtin_tools", PLAIN["system"], None,
     {"builtin_tools": ["code_interpreter", "brave_search", "wolfram_alpha"]}),
    ("llama3.1", "two_tool_calls", TOOL_CONV_TWO_RESULTS, [WEATHER], {}),
    ("qwen2.5", "tools", TOOL_CONV, [WEATHER, SEARCH], {}),
    ("qwen2.5", "tools_no_system", TOOL_CONV_TWO_RESULTS, [WEATHER], {}),
    ("qwen3", "tools", TOOL_CONV, [WEATHER], {}),
    ("qwen3", "tools_two_results", TOOL_CONV_TWO_RESULTS, [WEATHER, SEARCH], {}),
    ("qwen3", "thinking", THINKING, None, {}),
    ("qwen3", "thinking_off", THINKING[:3], None, {"enable_thinking": False}),
    ("qwen3", "thinking_on", THINKING[:3], None, {"enable_thinking": True}),
    ("mistral_v3", "tools", TOOL_CONV, [WEATHER, SEARCH], {}),
    ("mistral_v3", "tools_no_system", TOOL_CONV_NO_SYSTEM, [WEATHER], {}),
    ("hermes_tool_use", "tools", TOOL_CONV, [WEATHER, SEARCH], {}),
    ("hermes_tool_use", "tools_two_results", TOOL_CONV_TWO_RESULTS, [SEARCH], {}),
    # A union with "null" recurses over the string's characters forever.
    ("hermes_tool_use", "runaway_recursion", PLAIN["single"],
     [{"type": "function", "function": {
         "name": "f", "description": "d", "parameters": {
             "type": "object", "properties": {
                 "x": {"type": ["null"], "description": "x"}}}}}], {}),
    ("gemma3", "parts", PARTS, None, {}),
    ("features", "parts", PARTS, None, {}),
    ("features", "tools_conv", TOOL_CONV, None, {}),
    ("deepseek_r1", "thinking", THINKING, None, {}),
    ("deepseek_r1", "tool_results", TOOL_CONV_TWO_RESULTS, None, {}),
]


def tokenizer_for(name, template):
    tok = Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    t = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS[name])
    t.chat_template = template
    return t


def render(tok, messages, tools, agp, extra):
    try:
        text = tok.apply_chat_template(
            copy.deepcopy(messages), tools=copy.deepcopy(tools),
            add_generation_prompt=agp, tokenize=False, **extra)
        return {"expected": text}
    except Exception as e:  # the template's own error (raise_exception ...)
        return {"error": str(e), "error_type": type(e).__name__}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(HERE, "goldens.json"))
    args = parser.parse_args()
    cases = []
    for name in SPECIALS:
        with open(os.path.join(HERE, name + ".jinja"), encoding="utf-8") as f:
            template = f.read()
        tok = tokenizer_for(name, template)
        runs = [(c, m, None, {}) for c, m in PLAIN.items()]
        runs += [(c, m, t, x) for (n, c, m, t, x) in EXTRA_CASES if n == name]
        for case, messages, tools, extra in runs:
            for agp in (True, False):
                row = {"template": name, "case": case,
                       "special_tokens": SPECIALS[name], "messages": messages,
                       "tools": tools, "extra": extra,
                       "add_generation_prompt": agp}
                row.update(render(tok, messages, tools, agp, extra))
                cases.append(row)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases, {sum('error' in c for c in cases)} errors")


if __name__ == "__main__":
    main()
