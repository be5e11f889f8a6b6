"""Batched decode in `octet serve` (--batch N, docs/serve.md "Batching"): concurrent requests
stepped together must produce exactly the replies they get one at a time (--batch 1), with
per-request stop strings, structured output and cancellation, and /metrics must show that
steps really carried several requests' tokens. The prefix cache is off on both servers: a
prefix hit from an earlier request changed a later greedy reply here even with --batch 1 (a
restored prefix plus a differently chunked rest is not bit-identical to one fresh prefill;
cause not traced), so replies would depend on which requests ran before, batching or not."""
import concurrent.futures as cf
import http.client
import json
import re

import pytest

from serve_util import MODEL, octet_server

REQS = [
    {"messages": [{"role": "user", "content": "Tell me about the sea."}], "max_tokens": 24},
    {"messages": [{"role": "user", "content": "Write a poem about a red bicycle."}],
     "max_tokens": 20, "stop": ["\n\n"]},
    {"messages": [{"role": "user", "content": "Give a JSON object describing a cat."}],
     "max_tokens": 24, "response_format": {"type": "json_object"}},
    {"prompt": "Once upon a time, in a small village,", "max_tokens": 28},
]


def post(port, body, stream=False):
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    body = dict(body, temperature=0, stream=stream)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        assert r.status == 200, data
        if not stream:
            ch = json.loads(data)["choices"][0]
            return (ch.get("message", {}).get("content") if "message" in ch else ch["text"],
                    ch["finish_reason"])
        text, fin = "", None
        for ev in data.split(b"\n\n"):
            if not ev.startswith(b"data: ") or ev[6:] == b"[DONE]":
                continue
            ch = (json.loads(ev[6:]).get("choices") or [{}])[0]
            text += ch.get("delta", {}).get("content") or ch.get("text") or ""
            fin = ch.get("finish_reason") or fin
        return text, fin
    finally:
        c.close()


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    m = re.search(rf"^{name} (\S+)$", body, re.M)
    assert m, name
    return float(m.group(1))


def cancel_midway(port):
    """A streaming request whose client goes away after the first content chunk."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = {"messages": [{"role": "user", "content": "Count to one hundred."}],
            "max_tokens": 200, "stream": True, "temperature": 0}
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    r.read1(4096)
    c.close()


@pytest.fixture(scope="module")
def want():
    if not MODEL.exists():
        pytest.skip("default model not installed")
    with octet_server(["-m", str(MODEL), "--ctx", "512", "--batch", "1", "--cache-mb", "0"]) as s:
        return [post(s["port"], b) for b in REQS]


def test_batched_replies_equal_one_at_a_time(want):
    with octet_server(["-m", str(MODEL), "--ctx", "512", "--batch", "4", "--cache-mb", "0"]) as s:
        port = s["port"]
        for rnd in range(2):
            with cf.ThreadPoolExecutor(len(REQS) + 1) as ex:
                futs = [ex.submit(post, port, b, i % 2 == rnd) for i, b in enumerate(REQS)]
                if rnd == 1:
                    ex.submit(cancel_midway, port)
                got = [f.result() for f in futs]
            assert got == want, f"round {rnd}"
        steps = metric(port, "octet_decode_steps_total")
        rows = metric(port, "octet_decode_step_rows_total")
        assert rows > steps, (rows, steps)  # some steps carried several requests
        assert metric(port, "octet_decode_batch_limit") == 4
        # The server is still serving after the cancelled request.
        assert post(port, REQS[0]) == want[0]


def test_batch_flag_rejects_bad_values(tmp_path):
    import subprocess
    from serve_util import OCTET
    r = subprocess.run([OCTET, "serve", "-m", str(MODEL), "--batch", "0"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "batch" in r.stderr
