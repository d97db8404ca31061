#!/usr/bin/env python3
"""Conformance check of a running hearth server with the official `openai` Python SDK.

Runs the seed server's documented examples (chat, completions with extra_body, streaming) plus the
error and auth shapes the SDK relies on. Every check runs; the script prints one line per check and a
closing "N passed, M failed" line, and exits non-zero if any failed.

Environment: HEARTH_URL (e.g. http://127.0.0.1:8137/v1) and HEARTH_TOKEN. Run it through run.sh,
which starts a server on a fixture model.
"""

import os
import sys
import traceback

import openai
from openai import OpenAI

URL = os.environ["HEARTH_URL"]
TOKEN = os.environ["HEARTH_TOKEN"]
client = OpenAI(base_url=URL, api_key=TOKEN, max_retries=0)
results = []


def check(fn):
    """Runs one check and records its outcome."""
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"ok    {fn.__name__}")
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
        results.append((fn.__name__, exc))
        print(f"FAIL  {fn.__name__}: {exc!r}")
        traceback.print_exc()


@check
def models_list():
    models = client.models.list()
    assert len(models.data) == 1, models
    assert models.data[0].object == "model"


@check
def chat_completion():
    # The seed README's chat example.
    response = client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "Hello, how are you?"}],
        max_tokens=100,
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


@check
def chat_greedy_is_repeatable():
    ask = lambda: client.chat.completions.create(  # noqa: E731
        model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0
    )
    assert ask().choices[0].message.content == ask().choices[0].message.content


@check
def completion():
    # The seed README's completions example.
    response = client.completions.create(model="test-model", prompt="Once upon a time", max_tokens=50, temperature=0.8)
    assert response.object == "text_completion"
    assert isinstance(response.choices[0].text, str)
    assert 1 <= response.usage.completion_tokens <= 50


@check
def completion_default_max_tokens_is_16():
    response = client.completions.create(model="m", prompt="Once upon a time", extra_body={"ignore_eos": True})
    assert response.usage.completion_tokens == 16, response.usage


@check
def completion_extra_body():
    # The seed README's extra_body example (beam search is not offered, so num_beams is left out).
    response = client.completions.create(
        model="test-model",
        prompt="The story begins with",
        max_tokens=20,
        temperature=0.7,
        extra_body={"repetition_penalty": 1.2, "top_k": 40, "no_repeat_ngram_size": 3, "min_p": 0.05},
    )
    assert isinstance(response.choices[0].text, str)


@check
def completion_ignore_eos():
    response = client.completions.create(
        model="test", prompt="Once upon a time", max_tokens=24, extra_body={"ignore_eos": True}
    )
    assert response.usage.completion_tokens == 24
    assert response.choices[0].finish_reason == "length"


@check
def completion_seed_repeats():
    ask = lambda: client.completions.create(  # noqa: E731
        model="m", prompt="Once", max_tokens=10, temperature=1.0, seed=99, extra_body={"top_k": 50}
    )
    assert ask().choices[0].text == ask().choices[0].text


@check
def chat_stream():
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Tell me a story"}],
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish and finish[-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    whole = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=12, temperature=0
    )
    assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)


@check
def completion_stream():
    stream = client.completions.create(model="m", prompt="Once upon a time", max_tokens=10, temperature=0, stream=True)
    text = "".join(c.choices[0].text for c in stream if c.choices)
    whole = client.completions.create(model="m", prompt="Once upon a time", max_tokens=10, temperature=0)
    assert text == whole.choices[0].text


@check
def completion_stop_sequence():
    whole = client.completions.create(
        model="m", prompt="Once upon a time", max_tokens=16, temperature=0, extra_body={"ignore_eos": True}
    ).choices[0].text
    stop = next((c for i, c in enumerate(whole) if i >= 2 and c != "\ufffd" and c not in whole[:i]), None)
    assert stop is not None, whole
    cut = client.completions.create(
        model="m", prompt="Once upon a time", max_tokens=16, temperature=0, stop=[stop], extra_body={"ignore_eos": True}
    ).choices[0]
    assert cut.text == whole[: whole.index(stop)], (cut.text, whole, stop)
    assert cut.finish_reason == "stop"


@check
def bad_request_names_the_field():
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], temperature=9)
    except openai.BadRequestError as exc:
        assert exc.status_code == 400
        assert exc.body["param"] == "temperature", exc.body
    else:
        raise AssertionError("expected a 400")


@check
def unsupported_parameter_is_refused():
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], n=2)
    except openai.BadRequestError as exc:
        assert exc.body["param"] == "n", exc.body
    else:
        raise AssertionError("expected a 400")


@check
def wrong_key_is_401():
    bad = OpenAI(base_url=URL, api_key="not-the-token", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError as exc:
        assert exc.status_code == 401
    else:
        raise AssertionError("expected a 401")


failed = [name for name, exc in results if exc is not None]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
