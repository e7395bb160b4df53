"""The real `openai` SDK fine-tuning with DPO against a running lorad
(driven by training_options_dpo_test).

Usage: openai_dpo_client.py BASE_URL TOKEN PAIRS_FILE
Uploads the preference pairs, runs a DPO job to the end through the SDK's
own `method` argument, asserts what the SDK sees and prints one JSON object.
"""
import json
import sys
import time

import openai


def main():
    base_url, token, pairs_file = sys.argv[1], sys.argv[2], sys.argv[3]
    c = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0,
                      timeout=120)
    with open(pairs_file, "rb") as f:
        up = c.files.create(file=f, purpose="fine-tune")
    # Out of range: a 400 naming the field, and no job.
    try:
        c.fine_tuning.jobs.create(
            model="tiny", training_file=up.id,
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 1000}}})
        raise AssertionError("beta 1000 was accepted")
    except openai.BadRequestError as e:
        bad = e.body
    assert bad["param"] == "method.dpo.hyperparameters.beta", bad
    assert c.fine_tuning.jobs.list().data == [], "a refused job was created"
    # A supervised job on preference pairs is refused too.
    try:
        c.fine_tuning.jobs.create(model="tiny", training_file=up.id,
                                  method={"type": "supervised"})
        raise AssertionError("sft on preference pairs was accepted")
    except openai.BadRequestError as e:
        sft = e.body
    assert "training_file" in sft["message"], sft

    job = c.fine_tuning.jobs.create(
        model="tiny", training_file=up.id, suffix="sdk-dpo",
        method={"type": "dpo", "dpo": {"hyperparameters": {
            "beta": 0.25, "batch_size": 4, "n_epochs": 1}}},
        extra_body={"hyperparameters": {"max_steps": 2, "max_seq_len": 64}})
    assert job.method.type == "dpo", job.method
    assert job.method.dpo.hyperparameters.beta == 0.25, job.method
    assert job.method.dpo.hyperparameters.batch_size == 4, job.method
    deadline = time.time() + 600
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.time() < deadline, "the job did not finish in 10 minutes"
        time.sleep(0.2)
        job = c.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job
    assert job.fine_tuned_model == "sdk-dpo", job.fine_tuned_model
    events = c.fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e.data for e in events if e.type == "metrics"]
    assert metrics and all("reward_margin" in d for d in metrics), metrics
    print(json.dumps({"job": job.id, "beta": job.method.dpo.hyperparameters.beta,
                      "metrics": metrics, "bad": bad["message"],
                      "sft": sft["message"]}))


if __name__ == "__main__":
    main()
