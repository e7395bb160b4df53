"""The real `openai` SDK against a running lorad (driven by openai_api_test).

Each scenario asserts what the SDK sees and prints one JSON object on stdout
for the C++ side to compare with lorad's gRPC API. Usage:
  openai_client.py chat BASE_URL TOKEN MODEL...
  openai_client.py errors BASE_URL TOKEN READER_TOKEN BAD_FILE
  openai_client.py finetune BASE_URL TOKEN TRAIN_FILE
  openai_client.py ratelimit BASE_URL TOKEN
"""
import json
import sys
import threading
import time

import urllib.error
import urllib.request

import openai

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say something about adapters."}]


def raw(method, url, token=None, body=None):
    """(status, headers, parsed JSON body) of a plain HTTP request."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def client(base_url, token):
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0,
                         timeout=120)


def chat_once(c, model, out):
    plain = c.chat.completions.create(model=model, messages=MESSAGES,
                                      temperature=0, max_tokens=12)
    assert plain.object == "chat.completion", plain
    assert plain.model == model
    choice = plain.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length"), choice.finish_reason
    u = plain.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert 0 < u.completion_tokens <= 12
    text, usage, finish, roles = "", None, None, 0
    for chunk in c.chat.completions.create(
            model=model, messages=MESSAGES, temperature=0, max_tokens=12,
            stream=True, stream_options={"include_usage": True}):
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        delta = chunk.choices[0].delta
        if delta.role:
            roles += 1
        text += delta.content or ""
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert roles == 1, roles
    assert text == choice.message.content, (text, choice.message.content)
    assert finish == choice.finish_reason
    assert usage is not None and usage.completion_tokens == u.completion_tokens
    assert usage.prompt_tokens == u.prompt_tokens
    # Completions, n=2 with a seed: two choices with their own indices.
    comp = c.completions.create(model=model, prompt="Adapters are",
                                max_tokens=6, temperature=0, n=2)
    assert comp.object == "text_completion"
    assert sorted(ch.index for ch in comp.choices) == [0, 1]
    assert comp.choices[0].text == comp.choices[1].text  # greedy
    out[model] = {"text": text, "prompt_tokens": u.prompt_tokens,
                  "completion_tokens": u.completion_tokens,
                  "completion_text": comp.choices[0].text}


def chat(base_url, token, models):
    c = client(base_url, token)
    listed = {m.id: m for m in c.models.list()}
    for m in models[1:]:
        assert m in listed, (m, list(listed))
        assert listed[m].parent == models[0], listed[m]
    assert c.models.retrieve(models[-1]).id == models[-1]
    out, errors = {}, []

    def run(m):
        try:
            chat_once(c, m, out)
        except Exception as e:  # reported below
            errors.append(f"{m}: {e!r}")
    threads = [threading.Thread(target=run, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def expect(status, fn):
    try:
        fn()
    except openai.APIStatusError as e:
        assert e.status_code == status, (status, e.status_code, e.body)
        assert isinstance(e.body, dict) and "message" in e.body, e.body
        return e
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def errors(base_url, token, reader_token, bad_file):
    c = client(base_url, token)
    seen = {}
    e = expect(400, lambda: c.chat.completions.create(
        model="tiny", messages=MESSAGES, temperature=3))
    assert e.body.get("param") == "temperature", e.body
    seen["400"] = e.body["message"]
    seen["401"] = expect(401, lambda: client(base_url, "wrong").models.list()
                         ).body["message"]
    status, _, body = raw("GET", base_url + "/models")
    assert status == 401, status
    assert body["error"]["type"] == "authentication_error", body
    seen["403"] = expect(403, lambda: client(base_url, reader_token)
                         .fine_tuning.jobs.create(
                             model="tiny", training_file="ds-0")
                         ).body["message"]
    seen["404"] = expect(404, lambda: c.chat.completions.create(
        model="no-such-adapter", messages=MESSAGES)).body["message"]
    seen["404_job"] = expect(404, lambda: c.fine_tuning.jobs.retrieve(
        "ftjob-nope")).body["message"]
    with open(bad_file, "rb") as f:
        seen["422"] = expect(422, lambda: c.files.create(
            file=f, purpose="fine-tune")).body["message"]
    big = "x" * (2 << 20)
    status, _, body = raw("POST", base_url + "/chat/completions", token,
                          json.dumps({"model": "tiny", "messages": [
                              {"role": "user", "content": big}]}).encode())
    assert status == 413, status
    seen["413"] = body["error"]["message"]
    status, _, body = raw("POST", base_url + "/chat/completions", token,
                          b"{not json")
    assert status == 400, (status, body)
    # The daemon still serves after all of that.
    ok = c.chat.completions.create(model="tiny", messages=MESSAGES,
                                   max_tokens=2, temperature=0)
    assert ok.usage.completion_tokens > 0
    return seen


def finetune(base_url, token, train_file):
    c = client(base_url, token)
    with open(train_file, "rb") as f:
        up = c.files.create(file=f, purpose="fine-tune")
    assert up.object == "file" and up.purpose == "fine-tune", up
    assert up.id in [x.id for x in c.files.list()]
    job = c.fine_tuning.jobs.create(
        model="tiny", training_file=up.id, suffix="oa-ft",
        hyperparameters={"n_epochs": 1, "batch_size": 2,
                         "learning_rate_multiplier": 2},
        extra_body={"method": {"type": "supervised", "supervised": {
            "hyperparameters": {"max_steps": 4, "rank": 4,
                                "checkpoint_every": 2,
                                "optimizer": "adamw_8bit",
                                "early_stopping_patience": 2,
                                "eval_every": 1,
                                "validation_split": 0.25}}}})
    assert job.object == "fine_tuning.job", job
    assert job.id in [j.id for j in c.fine_tuning.jobs.list(limit=50)]
    deadline = time.time() + 600
    while True:
        job = c.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        assert time.time() < deadline, "the job did not finish in 10 minutes"
        time.sleep(0.5)
    assert job.status == "succeeded", job
    assert job.fine_tuned_model == "oa-ft", job.fine_tuned_model
    events = c.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert any(e.type == "metrics" for e in events), events
    page = c.fine_tuning.jobs.list_events(job.id, limit=2)
    assert len(page.data) == 2 and page.has_more
    after = c.fine_tuning.jobs.list_events(job.id, limit=2,
                                           after=page.data[-1].id)
    assert after.data[0].id != page.data[0].id
    checkpoints = c.fine_tuning.jobs.checkpoints.list(job.id).data
    steps = [k.step_number for k in checkpoints]
    assert steps and steps == sorted(steps, reverse=True), steps
    assert all(0 < s <= 4 for s in steps), steps
    e = expect(409, lambda: c.fine_tuning.jobs.cancel(job.id))
    # lorad's own fields: the options as run, and the evaluation whose
    # adapter was kept.
    status, _, own = raw("GET", base_url + "/fine_tuning/jobs/" + job.id,
                         token)
    assert status == 200, (status, own)
    assert own["optimizer"] == "adamw_8bit", own
    assert own["early_stopping_patience"] == 2, own
    assert own["gradient_checkpointing"] is False, own  # auto: tiny fits
    assert 1 <= own["best_step"] <= 4 and own["best_eval_loss"] > 0, own
    bad = expect(400, lambda: c.fine_tuning.jobs.create(
        model="tiny", training_file=up.id,
        extra_body={"method": {"type": "supervised", "supervised": {
            "hyperparameters": {"optimizer": "sgd"}}}}))
    assert "optimizer" in bad.body["message"], bad.body
    reply = c.chat.completions.create(model=job.fine_tuned_model,
                                      messages=MESSAGES, max_tokens=8,
                                      temperature=0)
    assert reply.model == "oa-ft"
    return {"job": job.id, "model": job.fine_tuned_model,
            "events": len(events), "checkpoints": len(checkpoints),
            "text": reply.choices[0].message.content, "409": e.body["message"]}


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "color": {"enum": ["red", "green", "blue"]},
        "size": {"type": "object",
                 "properties": {"w": {"type": "integer"},
                                "h": {"type": "number"}},
                 "required": ["w", "h"]},
        "tags": {"type": "array", "items": {"type": "string"},
                 "maxItems": 3},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "color", "size", "tags", "ok"],
    "additionalProperties": False,
}


def json_mode(base_url, token):
    import jsonschema
    c = client(base_url, token)
    results, errors = [], []

    def one(i, schema):
        try:
            fmt = ({"type": "json_schema", "json_schema": {
                "name": "thing", "schema": SCHEMA, "strict": True}}
                if schema else {"type": "json_object"})
            r = c.chat.completions.create(
                model="tiny", temperature=1, seed=i, max_tokens=120,
                messages=[{"role": "user", "content": f"Item {i} as JSON"}],
                response_format=fmt)
            text = r.choices[0].message.content
            assert r.choices[0].finish_reason == "stop", (i, text)
            value = json.loads(text)
            assert isinstance(value, dict), (i, text)
            if schema:
                jsonschema.validate(value, SCHEMA)
            results.append((schema, r.usage.completion_tokens))
        except Exception as e:  # reported below
            errors.append(f"{'schema' if schema else 'object'} {i}: {e!r}")

    for schema, count in ((False, 50), (True, 20)):
        for start in range(0, count, 10):
            threads = [threading.Thread(target=one, args=(i, schema))
                       for i in range(start, min(count, start + 10))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert not errors, errors
    e = expect(400, lambda: c.chat.completions.create(
        model="tiny", messages=MESSAGES, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": {
                "type": "string", "pattern": "a+"}}}))
    assert "pattern" in e.body["message"], e.body
    return {"objects": sum(1 for s, _ in results if not s),
            "schemas": sum(1 for s, _ in results if s),
            "refused": e.body["message"]}


def logprobs(base_url, token):
    c = client(base_url, token)
    r = c.chat.completions.create(model="tiny", messages=MESSAGES,
                                  temperature=0, max_tokens=6, logprobs=True,
                                  top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens, content
    for entry in content:
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True), tops
        assert entry.logprob <= 0 and abs(entry.logprob - tops[0]) < 1e-6
        assert entry.top_logprobs[0].token == entry.token  # greedy
    # A token may end inside a character: its bytes, joined, are the text.
    joined = b"".join(bytes(e.bytes) for e in content)
    assert joined.decode("utf-8", "replace") == r.choices[0].message.content
    comp = c.completions.create(model="tiny", prompt="Adapters are",
                                max_tokens=5, temperature=0, logprobs=2)
    lp = comp.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == 5, lp
    assert all(len(t) <= 2 for t in lp.top_logprobs), lp
    assert lp.text_offset[0] == 0
    # Penalties are accepted and change a greedy answer's tokens or not, but
    # never fail; out of range they are a 400 naming the field.
    c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0,
                              max_tokens=4, presence_penalty=1.5,
                              frequency_penalty=0.5)
    e = expect(400, lambda: c.chat.completions.create(
        model="tiny", messages=MESSAGES, frequency_penalty=3))
    assert e.body["param"] == "frequency_penalty", e.body
    return {"tokens": [e.token for e in content],
            "logprobs": [e.logprob for e in content]}


def ratelimit(base_url, token):
    status = None
    for _ in range(20):
        status, headers, body = raw("GET", base_url + "/models", token)
        if status == 429:
            break
    assert status == 429, status
    assert int(headers["Retry-After"]) >= 1, headers
    assert body["error"]["type"] == "rate_limit_error", body
    return {"429": body["error"]["message"],
            "retry_after": headers["Retry-After"]}


def main():
    cmd, base_url, token = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "chat":
        out = chat(base_url, token, sys.argv[4:])
    elif cmd == "errors":
        out = errors(base_url, token, sys.argv[4], sys.argv[5])
    elif cmd == "finetune":
        out = finetune(base_url, token, sys.argv[4])
    elif cmd == "json":
        out = json_mode(base_url, token)
    elif cmd == "logprobs":
        out = logprobs(base_url, token)
    elif cmd == "ratelimit":
        out = ratelimit(base_url, token)
    else:
        raise SystemExit(f"unknown scenario {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
