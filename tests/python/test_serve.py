"""`octet serve` end to end: the official `openai` SDK for chat, streaming and completions;
raw HTTP for bad inputs, API keys and rate limits; the per-app prefix cache (TTFT of a
follow-up sharing a ~1000-token prefix, and no hit for another app with the same prefix).

One server (default model, --mode int8, ctx 2048) serves the whole module.
"""
import http.client
import json
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))
MODEL = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
CTX = 2048

APPS = {
    "apps": [
        {"name": "fg", "key": "key-fg", "priority": "foreground"},
        {"name": "bg", "key": "key-bg", "priority": "background"},
        {"name": "lim", "key": "key-lim", "requests_per_minute": 2, "max_tokens": 16},
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not MODEL.exists():
        pytest.skip("default model not installed")
    apps = tmp_path_factory.mktemp("serve") / "apps.json"
    apps.write_text(json.dumps(APPS))
    proc = subprocess.Popen(
        [OCTET, "serve", "-m", str(MODEL), "--mode", "int8", "-c", str(CTX), "--port", "0",
         "--apps", str(apps), "--cache-mb", "300", "--max-body-kb", "1024"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stderr], daemon=True).start()
    port, deadline, seen = None, time.time() + 180, []
    while port is None and time.time() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        m = re.search(r"listening on http://[\d.]+:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        pytest.fail("server did not start:\n" + "".join(seen))
    yield {"port": port, "proc": proc, "model": MODEL.stem}
    proc.terminate()
    try:
        assert proc.wait(timeout=30) == 0, "server did not exit cleanly on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()


def client(server, key="key-fg"):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server['port']}/v1", api_key=key,
                         max_retries=0, timeout=120)


def raw(server, method, path, body=None, key="key-fg", headers=None):
    """Returns (status, parsed JSON or text, headers)."""
    c = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=120)
    h = dict(headers or {})
    if key:
        h["Authorization"] = "Bearer " + key
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data), dict(r.getheaders())
    except ValueError:
        return r.status, data.decode("utf-8", "replace"), dict(r.getheaders())


def assert_error(status, body, want_status, param=None):
    assert status == want_status, body
    assert isinstance(body, dict) and set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param, body


def chat(server, text, key="key-fg", **kw):
    return client(server, key).chat.completions.create(
        model=server["model"], messages=[{"role": "user", "content": text}], **kw)


# --- the SDK path ---------------------------------------------------------------------------

def test_models_and_health(server):
    ids = [m.id for m in client(server).models.list().data]
    assert ids == [server["model"]]
    status, body, _ = raw(server, "GET", "/health", key=None)
    assert status == 200 and body["status"] == "ok"


def test_chat_nonstreaming_and_streaming_agree(server):
    q = "Write one sentence about the sea."
    r = chat(server, q, max_tokens=12, temperature=0)
    text = r.choices[0].message.content
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert 1 <= r.usage.completion_tokens <= 12
    assert r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    parts, finish, usage = [], None, None
    for ch in chat(server, q, max_tokens=12, temperature=0, stream=True,
                   stream_options={"include_usage": True}):
        if ch.usage:
            usage = ch.usage
        for c in ch.choices:
            if c.delta.content:
                parts.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    # Greedy: the streamed text is the same text.
    assert "".join(parts) == text
    assert finish == r.choices[0].finish_reason
    assert usage.completion_tokens == r.usage.completion_tokens


def test_cached_prefix_gives_same_greedy_text_as_uncached(server):
    q = f"List three colours. ({uuid.uuid4().hex[:6]})"
    a = chat(server, q, key="key-fg", max_tokens=10, temperature=0)
    b = chat(server, q, key="key-fg", max_tokens=10, temperature=0)   # cache hit
    c = chat(server, q, key="key-bg", max_tokens=10, temperature=0)   # other app: miss
    assert a.usage.prompt_tokens_details.cached_tokens == 0
    assert b.usage.prompt_tokens_details.cached_tokens == a.usage.prompt_tokens - 1
    assert c.usage.prompt_tokens_details.cached_tokens == 0
    assert a.choices[0].message.content == b.choices[0].message.content \
        == c.choices[0].message.content


def test_seeded_sampling_reproducible(server):
    kw = dict(max_tokens=10, temperature=1.0, top_p=0.9, seed=1234)
    a = chat(server, "Tell me a story.", **kw).choices[0].message.content
    b = chat(server, "Tell me a story.", **kw).choices[0].message.content
    assert a == b


def test_completions_and_stop(server):
    c = client(server)
    r = c.completions.create(model=server["model"], prompt="The capital of France is",
                             max_tokens=16, temperature=0)
    text = r.choices[0].text
    assert r.object == "text_completion" and len(text) > 0
    assert r.usage.completion_tokens <= 16
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model=server["model"], prompt="The capital of France is", max_tokens=16,
        temperature=0, stream=True) if ch.choices)
    assert streamed == text
    # A stop string taken from the middle of the greedy text cuts it there.
    words = [w for w in text.split(" ") if w.strip()]
    if len(words) >= 3:
        stop = " " + words[2]
        cut = c.completions.create(model=server["model"], prompt="The capital of France is",
                                   max_tokens=16, temperature=0, stop=[stop, "@@@"])
        assert cut.choices[0].finish_reason == "stop"
        assert cut.choices[0].text == text[:text.index(stop)]
    short = c.completions.create(model=server["model"], prompt="One, two, three,",
                                 max_tokens=2, temperature=0)
    assert short.usage.completion_tokens <= 2
    if short.usage.completion_tokens == 2:
        assert short.choices[0].finish_reason == "length"


# --- bad input ------------------------------------------------------------------------------

def test_bad_inputs_get_openai_errors_and_server_survives(server):
    P = "/v1/chat/completions"
    ok_msgs = [{"role": "user", "content": "hi"}]
    s, b, _ = raw(server, "POST", P, b"{not json", headers={"Content-Type": "application/json"})
    assert_error(s, b, 400)
    s, b, _ = raw(server, "POST", P, b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}')
    assert_error(s, b, 400)
    assert_error(*raw(server, "POST", P, [1, 2])[:2], 400)
    assert_error(*raw(server, "POST", P, {"messages": "hi"})[:2], 400, "messages")
    assert_error(*raw(server, "POST", P, {})[:2], 400, "messages")
    assert_error(*raw(server, "POST", P, {"messages": [{"role": "wizard", "content": "x"}]})[:2],
                 400, "messages[0].role")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "max_tokens": "8"})[:2], 400,
                 "max_tokens")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "max_tokens": 10**12})[:2], 400,
                 "max_tokens")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "max_tokens": 0})[:2], 400,
                 "max_tokens")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "temperature": 7})[:2], 400,
                 "temperature")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "stop": 5})[:2], 400, "stop")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "n": 2})[:2], 400, "n")
    assert_error(*raw(server, "POST", P, {"messages": ok_msgs, "stream": "yes"})[:2], 400,
                 "stream")
    s, b, _ = raw(server, "POST", P, {"messages": ok_msgs, "model": "gpt-17"})
    assert_error(s, b, 404, "model")
    assert b["error"]["code"] == "model_not_found"
    s, b, _ = raw(server, "POST", P, {"messages": [{"role": "user", "content": "word " * 3000}]})
    assert_error(s, b, 400)
    assert b["error"]["code"] == "context_length_exceeded"
    assert_error(*raw(server, "POST", "/v1/completions", {"prompt": [1, 2, 10**9]})[:2], 400,
                 "prompt")
    assert_error(*raw(server, "POST", "/v1/completions", {"prompt": ["a", "b"]})[:2], 400,
                 "prompt")
    s, b, _ = raw(server, "POST", P, b'{"messages": "' + b"x" * (2 << 20) + b'"}')
    assert_error(s, b, 413)
    s, b, _ = raw(server, "GET", "/v1/nothing")
    assert_error(s, b, 404)
    # Still serving.
    assert chat(server, "hi", max_tokens=2).usage.completion_tokens >= 1


def test_api_keys_and_app_limits(server):
    P = "/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    s, b, _ = raw(server, "POST", P, body, key=None)
    assert_error(s, b, 401)
    s, b, _ = raw(server, "POST", P, body, key="key-wrong")
    assert_error(s, b, 401)
    s, b, _ = raw(server, "GET", "/v1/models", key="key-fg-")
    assert_error(s, b, 401)
    with pytest.raises(openai.AuthenticationError):
        chat(server, "hi", key="nope", max_tokens=2)
    # App "lim": max_tokens <= 16 and 2 requests a minute (a 400 still counts as a request).
    s, b, _ = raw(server, "POST", P, dict(body, max_tokens=17), key="key-lim")
    assert_error(s, b, 400, "max_tokens")
    s, b, _ = raw(server, "POST", P, body, key="key-lim")
    assert s == 200, b
    s, b, h = raw(server, "POST", P, body, key="key-lim")
    assert_error(s, b, 429)
    assert int(h["Retry-After"]) > 0
    # Other apps are not limited by it.
    assert raw(server, "POST", P, body, key="key-bg")[0] == 200


# --- cache, progress, metrics ---------------------------------------------------------------

def long_prefix(n_sentences=50):
    tag = uuid.uuid4().hex[:8]
    return " ".join(f"Fact {i} of set {tag}: the {['red', 'blue', 'green'][i % 3]} box holds "
                    f"{i * 7 % 13} stones." for i in range(n_sentences))


def stream_ttft(server, key, content, max_tokens=2):
    """Client-side time to first streamed choice, and the usage chunk."""
    t0 = time.perf_counter()
    ttft, usage = None, None
    for ch in chat(server, content, key=key, max_tokens=max_tokens, temperature=0, stream=True,
                   stream_options={"include_usage": True}):
        if ch.choices and ttft is None:
            ttft = time.perf_counter() - t0
        if ch.usage:
            usage = ch.usage
    return ttft, usage


def metric(server, name, app):
    _, text, _ = raw(server, "GET", "/metrics", key=None)
    m = re.search(rf'^{name}{{app="{app}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_prefix_cache_ttft_and_app_isolation(server):
    # The machine is shared: a burst of other work during the short follow-up can push one
    # measurement over the bound, so a fresh prefix is tried up to 3 times.
    for attempt in range(3):
        prefix = long_prefix()
        t1, u1 = stream_ttft(server, "key-fg", prefix + "\nQuestion: which box is red?")
        assert u1.prompt_tokens > 950, u1  # a ~1000-token shared prefix (the tag varies)
        assert u1.prompt_tokens_details.cached_tokens == 0
        # Sent the instant the reply ends: the server files the session's KV after the reply
        # went out, and the app's next request must wait for it rather than miss it.
        t2, u2 = stream_ttft(server, "key-fg", prefix + "\nQuestion: how many stones in total?")
        assert u2.prompt_tokens_details.cached_tokens >= u1.prompt_tokens - 20
        print(f"\nTTFT first {t1 * 1e3:.0f} ms, follow-up {t2 * 1e3:.0f} ms "
              f"({u1.prompt_tokens} prompt tokens, {u2.prompt_tokens_details.cached_tokens} cached)")
        if t2 <= 0.15 * t1:
            break
    assert t2 <= 0.15 * t1, (t1, t2)
    # Another app with the very same prefix must not hit app fg's entries.
    hits_bg = metric(server, "octet_cache_hits_total", "bg")
    t3, u3 = stream_ttft(server, "key-bg", prefix + "\nQuestion: how many stones in total?")
    assert u3.prompt_tokens_details.cached_tokens == 0
    assert metric(server, "octet_cache_hits_total", "bg") == hits_bg
    assert metric(server, "octet_cache_misses_total", "bg") >= 1
    print(f"TTFT same prefix from another app {t3 * 1e3:.0f} ms (no hit)")


def test_streaming_reports_prefill_progress(server):
    # Progress is reported between prefill chunks (512 tokens by default), so the prompt must
    # span several. Every digit of the random tag is a token of its own, so 25 sentences came
    # to 520-600 tokens or fewer by the tag's digits: once under one chunk, nothing to report.
    c = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=120)
    body = {"messages": [{"role": "user", "content": long_prefix(60)}], "max_tokens": 1,
            "stream": True}
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Authorization": "Bearer key-bg", "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    events = [l[6:] for l in r.read().decode().split("\n\n") if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    prog = [json.loads(e)["prompt_progress"] for e in events[:-1]
            if "prompt_progress" in json.loads(e)]
    assert len(prog) >= 3 and prog[-1]["total"] > 1024, prog  # start, and after each chunk
    assert prog[0]["processed"] <= prog[-1]["processed"] <= prog[-1]["total"]
    assert all(a["processed"] < b["processed"] for a, b in zip(prog, prog[1:]))


def test_metrics(server):
    _, text, _ = raw(server, "GET", "/metrics", key=None)
    for name in ["octet_requests_total", "octet_prompt_tokens_total",
                 "octet_prefill_tokens_per_second", "octet_decode_tokens_per_second",
                 "octet_queue_length", "octet_cache_hits_total", "octet_cache_misses_total"]:
        assert re.search(rf"^{name}", text, re.M), name
    assert re.search(r'^octet_requests_total\{app="fg",endpoint="chat_completions",code="200"\} '
                     r"[1-9]", text, re.M)
    assert re.search(r'^octet_requests_total\{app="lim",endpoint="chat_completions",code="429"\} '
                     r"[1-9]", text, re.M)


def test_client_disconnect_cancels(server):
    before = metric(server, "octet_cancelled_total", "bg")
    c = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=120)
    # Greedy counting rarely ends by itself; 1500 tokens would take many seconds.
    body = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "max_tokens": 1500, "stream": True,
            "temperature": 0}
    c.request("POST", "/v1/completions", body=json.dumps(body),
              headers={"Authorization": "Bearer key-bg", "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    r.read(300)  # a few events, then hang up
    c.close()
    deadline = time.time() + 30
    while metric(server, "octet_cancelled_total", "bg") == before and time.time() < deadline:
        time.sleep(0.2)
    assert metric(server, "octet_cancelled_total", "bg") > before
    # And the engine is free again at once.
    assert chat(server, "hi", max_tokens=2).usage.completion_tokens >= 1


def test_chat_page(server):
    s, body, h = raw(server, "GET", "/", key=None)
    assert s == 200 and "text/html" in h["Content-Type"]
    assert "/v1/chat/completions" in body and "tok/s" in body


def gauge(server, name):
    _, text, _ = raw(server, "GET", "/metrics", key=None)
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_foreground_before_background(server):
    """While the engine is busy, a foreground request that arrives after a background one is
    served first."""
    done, errors = [], []

    def run(name, key, max_tokens):
        try:
            chat(server, f"Tell me about {name}.", key=key, max_tokens=max_tokens, temperature=0)
            done.append(name)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    busy = threading.Thread(target=run, args=("busy", "key-fg", 96))
    busy.start()
    deadline = time.time() + 60
    while gauge(server, "octet_requests_running") < 1 and time.time() < deadline:
        time.sleep(0.05)
    bg = threading.Thread(target=run, args=("bg", "key-bg", 2))
    bg.start()
    while gauge(server, "octet_queue_length") < 1 and time.time() < deadline:
        time.sleep(0.05)
    fg = threading.Thread(target=run, args=("fg", "key-fg", 2))
    fg.start()
    while gauge(server, "octet_queue_length") < 2 and time.time() < deadline and not done:
        time.sleep(0.05)
    both_queued = not done  # the busy request was still running with both waiting
    for t in (busy, bg, fg):
        t.join(timeout=300)
    assert not errors, errors
    if not both_queued:
        pytest.skip("the busy request ended before both others were queued")
    assert done.index("fg") < done.index("bg"), done
