#!/usr/bin/env python3
"""Aggregate decode throughput of `octet serve` with 1, 2, 4 concurrent streaming clients,
batched decode (--batch N) vs one request at a time (--batch 1), in one run (docs/serve.md,
"Batching"). Each client loops for --duration seconds: stream a chat request (greedy, max_tokens;
a reply may end earlier at EOS, only the tokens actually generated count), read it to [DONE]. Aggregate
decode tok/s = completion tokens of all finished requests / wall time of the window (prefill
included, as a user sees it); "decode-only" sums the server's own per-request decode_ms.
Timings are noisy on a shared machine: compare the ratios within one run (the servers run
side by side and each cell alternates between them in short slices for that reason).

    .venv/bin/python scripts/batch_bench.py --duration 20 --batches 1,4 --clients 1,2,4
"""
import argparse
import contextlib
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from serve_util import octet_server  # noqa: E402

TOPICS = ["the sea", "a red bicycle", "autumn leaves", "a tiny robot", "the moon", "coffee"]


def stream(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}: {r.read()[:200]!r}")
        buf, usage, timings = b"", None, None
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if not ev.startswith(b"data: ") or ev[6:] == b"[DONE]":
                    continue
                j = json.loads(ev[6:])
                if "error" in j:
                    raise RuntimeError(str(j["error"]))
                usage = j.get("usage") or usage
                timings = j.get("timings") or timings
        return usage, timings
    finally:
        c.close()


def run_load(port, clients, duration, max_tokens):
    stop = time.time() + duration
    lock = threading.Lock()
    res = {"requests": 0, "tokens": 0, "decode_ms": 0.0, "decode_tokens": 0, "errors": 0}

    def client(i):
        n = 0
        while time.time() < stop:
            body = {"messages": [{"role": "user",
                                  "content": f"Write a long story about {TOPICS[(i + n) % len(TOPICS)]}."}],
                    "max_tokens": max_tokens, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}}
            n += 1
            try:
                usage, tm = stream(port, body)
            except Exception as e:  # noqa: BLE001
                with lock:
                    res["errors"] += 1
                print("request failed:", e, file=sys.stderr)
                continue
            with lock:
                res["requests"] += 1
                res["tokens"] += usage["completion_tokens"]
                res["decode_ms"] += tm["decode_ms"]
                res["decode_tokens"] += max(0, usage["completion_tokens"] - 1)

    t0 = time.time()
    ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    res["wall_s"] = wall
    res["tok_s"] = res["tokens"] / wall
    # Per-request decode speed averaged over requests, times the clients decoding at once.
    res["per_request_decode_tok_s"] = (res["decode_tokens"] / (res["decode_ms"] / 1e3)
                                       if res["decode_ms"] > 0 else 0)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--octet", default=os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet")))
    ap.add_argument("--model", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--batches", default="1,4", help="--batch values to compare")
    ap.add_argument("--clients", default="1,2,4")
    ap.add_argument("--duration", type=float, default=20, help="seconds per cell")
    ap.add_argument("--rounds", type=int, default=3, help="alternating slices per cell")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0, help="engine threads (0: default)")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    # All servers up at once (an idle one costs no CPU); each client count then runs in
    # --rounds short slices alternating between them, so drifting load from other work on
    # the machine hits every --batch value alike.
    batches = [int(x) for x in a.batches.split(",")]
    out = []
    with contextlib.ExitStack() as stack:
        ports = {}
        for b in batches:
            args = ["-m", a.model, "--ctx", str(a.ctx), "--batch", str(b), "--cache-mb", "0"]
            if a.threads:
                args += ["--threads", str(a.threads)]
            srv = stack.enter_context(octet_server(args, octet=a.octet))
            stream(srv["port"], {"messages": [{"role": "user", "content": "hi"}],
                                 "max_tokens": 4, "stream": True})  # warm-up
            ports[b] = srv["port"]
        for c in [int(x) for x in a.clients.split(",")]:
            acc = {b: None for b in batches}
            for _ in range(a.rounds):
                for b in batches:
                    r = run_load(ports[b], c, a.duration / a.rounds, a.max_tokens)
                    if acc[b] is None:
                        acc[b] = r
                    else:
                        for k in ("requests", "tokens", "decode_ms", "decode_tokens", "errors",
                                  "wall_s"):
                            acc[b][k] += r[k]
            for b in batches:
                r = acc[b]
                r["tok_s"] = r["tokens"] / r["wall_s"]
                r["per_request_decode_tok_s"] = (r["decode_tokens"] / (r["decode_ms"] / 1e3)
                                                 if r["decode_ms"] > 0 else 0)
                r.update(batch=b, clients=c)
                out.append(r)
                print(f"batch {b:2d} clients {c:2d}: {r['requests']:3d} requests, "
                      f"{r['tok_s']:7.1f} tok/s aggregate, per-request decode "
                      f"{r['per_request_decode_tok_s']:6.1f} tok/s, errors {r['errors']}",
                      flush=True)
    print("\nratio batched / --batch 1 (aggregate tok/s):")
    base = {r["clients"]: r["tok_s"] for r in out if r["batch"] == 1}
    for r in out:
        if r["batch"] != 1 and r["clients"] in base and base[r["clients"]] > 0:
            print(f"  batch {r['batch']} clients {r['clients']}: {r['tok_s'] / base[r['clients']]:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 1 if any(r["errors"] for r in out) else 0


if __name__ == "__main__":
    sys.exit(main())
