"""Drives the gateway with the official OpenAI Python client.

Usage: python3 tests/python/compat.py BASE_URL API_KEY [default-retries]

BASE_URL is the gateway's /v1 root. The routes are those of the `fixture` in
tests/gateway/main.rs: "chat" falls back from a failing provider to a working
one, "limited" has only rate-limited candidates, "broken" only failing ones.
Exits non-zero with a message on the first check that fails.

With `default-retries`, it only calls "broken" and "limited" once each with
the client at its default `max_retries` (2): the gateway's answers say
`x-should-retry: false`, so the client must not retry (the Rust test counts
the gateway's requests).
"""

import sys

import openai


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")


def default_retries(base_url, api_key):
    client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=10)
    check(client.max_retries == 2, f"the SDK's default max_retries is {client.max_retries}")
    for model, status in [("broken", 502), ("limited", 429)]:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            check(False, f"the {model} route answered")
        except openai.APIStatusError as e:
            check(e.status_code == status, f"{model}: status {e.status_code}")
            should_retry = e.response.headers.get("x-should-retry")
            check(should_retry == "false", f"{model}: x-should-retry {should_retry!r}")
    print("all checks passed")


def main():
    base_url, api_key = sys.argv[1], sys.argv[2]
    if sys.argv[3:] == ["default-retries"]:
        return default_retries(base_url, api_key)
    # The client's own retries are off: the gateway is what is tested.
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=10)

    # A plain completion, served by the fallback.
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    completion = raw.parse()
    check(completion.model == "azure/gpt-4o-mini", f"served model {completion.model!r}")
    check(
        completion.choices[0].message.content == "ok from gpt-4o-mini",
        f"content {completion.choices[0].message.content!r}",
    )
    check(completion.usage is not None and completion.usage.total_tokens > 0, "usage")
    check(raw.headers.get("x-llm-fallback-fallbacks") == "1", f"headers {dict(raw.headers)}")

    # A streamed completion with usage, served by the fallback.
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, models = "", None, set()
    for chunk in stream:
        models.add(chunk.model)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    check(text == "ok from gpt-4o-mini", f"streamed text {text!r}")
    check(models == {"azure/gpt-4o-mini"}, f"chunk models {models}")
    check(usage is not None and usage.total_tokens > 0, f"stream usage {usage}")

    # Every candidate rate limited: a typed RateLimitError with Retry-After.
    try:
        client.chat.completions.create(model="limited", messages=[{"role": "user", "content": "hi"}])
        check(False, "the limited route answered")
    except openai.RateLimitError as e:
        check(e.status_code == 429, f"status {e.status_code}")
        check(e.response.headers.get("retry-after") == "7", f"headers {dict(e.response.headers)}")

    # Every candidate failed: an APIStatusError listing the attempts.
    try:
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}])
        check(False, "the broken route answered")
    except openai.APIStatusError as e:
        check(e.status_code == 502, f"status {e.status_code}")
        check("all 2 candidates failed" in str(e), f"message {e}")

    # An unknown model: the client's NotFoundError.
    try:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
        check(False, "an unknown model answered")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"status {e.status_code}")

    models = [m.id for m in client.models.list()]
    check("chat" in models and "azure/gpt-4o-mini" in models, f"models {models}")
    print("all checks passed")


if __name__ == "__main__":
    main()
