"""Renders small Jinja snippets with the jinja2 environment transformers
builds for chat templates (trim_blocks, lstrip_blocks, its tojson) and writes
snippets.json, which tests/unit/jinja_test.cc compares lorad's interpreter
against: filters, tests, methods, operators, slices, loops, macros and
whitespace control one at a time. Known, documented differences (Python's
dict_items repr, non-ASCII case mapping) are left out.

  .venv/bin/python tests/golden/chat_templates/make_snippet_goldens.py [--out PATH]
"""

import argparse
import json
import os

from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))

SNIPPETS = [
    "{{ [1,2,3]|first }}{{ []|first is defined }}",
    "{{ 'abc'[5] is defined }}{{ [1][3] is defined }}",
    "{{ {'a':1}|items|list }}",
    "{{ ('a','b')|join('-') }}",
    "{{ [1,[2,3]]|tojson }}",
    "{{ 1.0|tojson }} {{ 100000000000000000000.0|tojson }} {{ 1e-7|tojson }}",
    "{{ -0.0 }} {{ 0.5|round }} {{ 1.5|round }} {{ 2.675|round(2) }} {{ -2.5|round }}",
    "{{ 7|round }} {{ 3.2|round(0, 'ceil') }} {{ 3.8|round(method='floor') }}",
    "{{ 'a' if none else 'b' }}{{ none is not none }}",
    "{{ 'x' ~ 1.5 ~ [1] ~ {'a': none} }}",
    "{{ 10 / 3 }} {{ 2 ** -1 }} {{ 2 ** 0.5 }} {{ 1e300 * 1e10 }} {{ -1e300 * 1e10 }}",
    "{{ 'AbC'|lower|upper }} {{ 'hello world foo'|title }} {{ \"they're bill's\"|title }}",
    "{{ '  a b  '|trim }}|{{ 'xxaxx'|trim('x') }}",
    "{{ 'a.b.c'.split('.', 1) }} {{ 'a.b.c'.rsplit('.') }} {{ ''.split(',') }} {{ ''.split() }}",
    "{{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('bc') }} {{ 'éa'.find('a') }}",
    "{{ 'x'.join(['1','2']) }} {{ ', '.join(['a']) }}",
    "{{ 'Hello'.startswith('he') }} {{ 'Hello'.endswith('lo') }}",
    "{{ [3,1,2]|sort(reverse=true) }} {{ ['b','a','C']|sort(case_sensitive=true) }}",
    "{{ [{'a': 2}, {'a': 1}]|sort(attribute='a') }}",
    "{{ ['a','A','b']|unique|list }} {{ [1,2,1]|unique|list }}",
    "{{ [1,2,3]|sum }} {{ [1,2,3]|min }} {{ [1,2,3]|max }} {{ ['b','a']|min }}",
    "{{ {'b': 1, 'a': 2}|dictsort }}",
    "{{ 'a\\nb'|indent(2) }}|{{ 'a\\n\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}",
    "{{ '<a href=\"x\">&'|e }}",
    "{{ [1,2,3,4,5][1:4:2] }} {{ [1,2,3][::-2] }} {{ [1,2,3][-5:] }} {{ [1,2,3][5:] }} {{ 'hello'[-3:] }} {{ 'hello'[:-10] }}",
    "{% for i in range(3) %}{{ loop.index }}{% if loop.last %}!{% endif %}{% endfor %}",
    "{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{% endfor %}",
    "{% set ns = namespace(items=[]) %}{% for x in 'abc' %}{% set ns.items = ns.items + [x|upper] %}{% endfor %}{{ ns.items|join }}",
    "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m('a') ~ m('b') }}{{ m() }}",
    "{% set x %}\n  block {{ 1 }}\n{% endset %}[{{ x }}]",
    "{{ {'a': 1} == {'a': 1} }} {{ [1] == (1,) }} {{ (1,2) == (1,2) }}",
    "{{ 1 in [1.0] }} {{ true in [1] }} {{ 'b' in ['a', 'b'] }} {{ 'k' in {'k': 0} }}",
    "{{ 3 is divisibleby(3) }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is boolean }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is number }}",
    "{{ 'trim' is filter }} {{ 'nope' is filter }} {{ 'defined' is test }}",
    "{{ [none, 1]|select|list }} {{ [0, 1, '', 'a']|reject|list }}",
    "{{ [{'x': {'y': 1}}, {'x': {'y': 2}}]|map(attribute='x.y')|list }} {{ ['a', 'b']|map('upper')|list }} {{ [{'x': 1}, {}]|map(attribute='x', default=9)|list }}",
    "{{ [{'r': 'user'}, {'r': 'tool'}]|selectattr('r', 'equalto', 'user')|list }} {{ [{'r': 'user'}, {'r': 'tool'}]|rejectattr('r', 'in', ['user'])|list }}",
    "{{ '%s'|length }} {{ 'é'|length }} {{ {'a':1,'b':2}|length }} {{ 'abc'|list }} {{ {'a': 1}|list }}",
    "{{ '12'|int }} {{ ' 12 '|int }} {{ '1_000'|int }} {{ '12.7'|int }} {{ 'abc'|int(5) }} {{ true|int }} {{ '3'|float }} {{ 'x'|float }} {{ 4|float }}",
    "{{ 1 < 2 and 2 > 1 }} {{ not 1 == 2 }} {{ 1 if true }} {{ (1 if false) is defined }}",
    "{{ \"a\" \"b\" 'c' }} {{ 'it\\'s' }} {{ \"\\u00e9\\x41\\101\\t|\" }} {{ 'back\\\\slash' }} {{ '\\d' }}",
    "{{ 5 // 2 * 2 }} {{ 2 * 3 ** 2 }} {{ -2 ** 2 }} {{ (-2) ** 2 }} {{ 1 + 2 ~ 3 }} {{ 'a' ~ 1 + 2 }}",
    "{{ 7 % -3 }} {{ -7.5 // 2 }} {{ 7.5 % 2 }} {{ 1 / 4 }} {{ 0.1 * 3 }} {{ 1/3 }} {{ 2/3 }} {{ 123456789.123456789 }} {{ 1e22 }} {{ 1.5e16 }} {{ 12345678901234567.0 }}",
    "{{ dict(a=1, b='x') }} {{ dict({'z': 0}, y=1) }} {{ namespace(a=1).a }}",
    "{{ range(5, 0, -2)|list }} {{ range(0)|list }}",
    "{%- for x in [1, 2, 3] -%} {{ x }} {%- endfor %}",
    "a {#- c -#} b",
    "{% if false %}x{% elif true %}y{% else %}z{% endif %}",
    "{{ [1, 2] + [3] }} {{ (1,) + (2,) }} {{ 'ab' * 0 }} {{ 3 * 'a' }} {{ [0] * -1 }}",
    "{{ 'a,b'.split(',')|reverse|list }} {{ [1, 2][::-1]|join(',') }}",
    "{{ [] is sequence }} {{ {} is iterable }} {{ 3 is iterable }} {{ none is mapping }}",
    "{{ loop is defined }} {{ range is defined }} {{ namespace is callable }}",
    "{{ 'hello world'.capitalize() }} {{ 'ab'.upper() ~ 'CD'.lower() }}"
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(HERE, "snippets.json"))
    args = parser.parse_args()
    rows = []
    for src in SNIPPETS:
        try:
            rows.append({"src": src,
                         "expected": _compile_jinja_template(src).render()})
        except Exception as e:  # the error is part of the golden
            rows.append({"src": src, "error": str(e)})
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
