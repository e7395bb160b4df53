#!/usr/bin/env python3
"""The transformers side of tests/unit/jinja_generation_test.cc, run at test
time:

    jinja_generation_peer.py CASES_JSON

CASES_JSON: [{"template", "messages"}]. Prints, for each case, what
transformers' render_jinja_template(..., return_assistant_tokens_mask=True)
gives: {"text", "spans"} with the {% generation %} spans in characters.
"""

import json
import sys

from transformers.utils.chat_template_utils import render_jinja_template


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = []
    for case in cases:
        rendered, spans = render_jinja_template(
            conversations=[case["messages"]], chat_template=case["template"],
            return_assistant_tokens_mask=True, add_generation_prompt=False)
        out.append({"text": rendered[0],
                    "spans": [list(s) for s in spans[0]]})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
