#!/usr/bin/env python3
"""Bounded load test of `octet serve` on loopback (docs/serve.md, "Load test").

Starts the server with a generated apps file holding two apps, `fg` (foreground) and `bg`
(background, with a requests-per-minute limit), then runs N concurrent streaming clients
(half per app) for a fixed time. Each client loops: stream a chat request, read it to
[DONE], and on 429/503 back off briefly. A monitor samples the server's RSS and /health.

Reports requests completed / refused (429, 503) / failed, whether the server survived,
TTFT and total latency p50/p95 per app, and peak RSS. Exit status 1 on any failed request
or a crash. Example (the 2-minute run quoted in docs/results.md):

    .venv/bin/python scripts/loadtest.py --clients 32 --duration 120
"""
import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from serve_util import octet_server  # noqa: E402

TOPICS = ["the sea", "a red bicycle", "autumn leaves", "a tiny robot", "the moon", "coffee",
          "a lost key", "mountains", "a busy market", "rain on the window"]
SHARED = ("You are a helpful assistant on a phone. Keep answers short. " * 12).strip()


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def health(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/health")
        r = c.getresponse()
        ok = r.status == 200 and json.loads(r.read()).get("status") == "ok"
        c.close()
        return ok
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return False


def one_request(port, key, body, timeout):
    """Returns (kind, status, ttft_s, total_s); kind: ok / refused / failed."""
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                  headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = c.getresponse()
        if r.status in (429, 503):
            r.read()
            return "refused", r.status, None, time.time() - t0
        if r.status != 200:
            r.read()
            return "failed", r.status, None, time.time() - t0
        ttft, done, buf = None, False, b""
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if not ev.startswith(b"data: "):
                    continue
                data = ev[6:]
                if data == b"[DONE]":
                    done = True
                    continue
                j = json.loads(data)
                if "error" in j:
                    return "failed", 200, ttft, time.time() - t0
                ch = j.get("choices") or []
                if ttft is None and ch and ch[0].get("delta", {}).get("content"):
                    ttft = time.time() - t0
        return ("ok" if done else "failed"), 200, ttft, time.time() - t0
    except Exception as e:  # noqa: BLE001 - a broken connection is a failed request
        return "failed", type(e).__name__, None, time.time() - t0
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--octet", default=os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet")))
    ap.add_argument("--model", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=120, help="seconds of load")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--max-queue", type=int, default=16, help="server --max-queue (503 beyond)")
    ap.add_argument("--batch", type=int, default=None,
                    help="server --batch (concurrent decodes stepped together; default: its own)")
    ap.add_argument("--bg-rpm", type=int, default=60, help="requests per minute of the bg app")
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--cache-mb", type=int, default=128)
    ap.add_argument("--json", help="write the report here too")
    args = ap.parse_args()

    keys = {"fg": "sk-fg-" + secrets.token_hex(8), "bg": "sk-bg-" + secrets.token_hex(8)}
    apps = {"apps": [
        {"name": "fg", "key": keys["fg"], "priority": "foreground"},
        {"name": "bg", "key": keys["bg"], "priority": "background",
         "requests_per_minute": args.bg_rpm},
    ]}
    stats = {a: {"ok": 0, "429": 0, "503": 0, "failed": 0, "ttft": [], "total": []}
             for a in ("fg", "bg")}
    fail_codes = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, octet_server(
            ["-m", args.model, "--mode", "int8", "-c", str(args.ctx), "--cache-mb",
             str(args.cache_mb), "--max-queue", str(args.max_queue)]
            + (["--batch", str(args.batch)] if args.batch else []),
            apps=apps, tmpdir=tmp, octet=args.octet) as srv:
        port, pid = srv["port"], srv["proc"].pid
        rss0 = rss_kib(pid)
        peak, samples, unhealthy = [rss0 or 0], [], [0]
        stop = threading.Event()

        def monitor():
            n = 0
            while not stop.is_set():
                r = rss_kib(pid)
                if r:
                    peak[0] = max(peak[0], r)
                    samples.append(r)
                if n % 4 == 0 and not health(port):
                    unhealthy[0] += 1
                n += 1
                stop.wait(0.5)

        def client(i):
            app = "fg" if i % 2 == 0 else "bg"
            rng = random.Random(i)
            end = t_start + args.duration
            turn = 0
            while time.time() < end:
                topic = rng.choice(TOPICS)
                # Half the requests share a long system prefix (prefix-cache hits).
                msgs = ([{"role": "system", "content": SHARED}] if turn % 2 == 0 else []) + [
                    {"role": "user", "content": f"Client {i}: write one sentence about {topic}."}]
                turn += 1
                body = {"messages": msgs, "max_tokens": args.max_tokens, "stream": True,
                        "temperature": 0.8, "seed": rng.randrange(1 << 30)}
                kind, status, ttft, total = one_request(port, keys[app], body,
                                                        timeout=args.duration + 300)
                with lock:
                    s = stats[app]
                    if kind == "ok":
                        s["ok"] += 1
                        s["total"].append(total)
                        if ttft is not None:
                            s["ttft"].append(ttft)
                    elif kind == "refused":
                        s[str(status)] += 1
                    else:
                        s["failed"] += 1
                        fail_codes[str(status)] = fail_codes.get(str(status), 0) + 1
                if kind == "refused":
                    time.sleep(0.5 + rng.random())

        t_start = time.time()
        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t_start
        stop.set()
        mon.join()
        alive = srv["proc"].poll() is None and health(port)

    def ms(x):
        return None if x is None else round(1000 * x, 1)

    report = {
        "clients": args.clients, "duration_s": args.duration, "wall_s": round(wall, 1),
        "max_tokens": args.max_tokens, "max_queue": args.max_queue, "bg_rpm": args.bg_rpm,
        "server_alive": alive, "health_failures": unhealthy[0],
        "rss_start_mib": round((rss0 or 0) / 1024, 1), "rss_peak_mib": round(peak[0] / 1024, 1),
        "failed_status_codes": fail_codes,
    }
    for app, s in stats.items():
        report[app] = {
            "completed": s["ok"], "refused_429": s["429"], "refused_503": s["503"],
            "failed": s["failed"],
            "ttft_p50_ms": ms(pct(s["ttft"], 50)), "ttft_p95_ms": ms(pct(s["ttft"], 95)),
            "total_p50_ms": ms(pct(s["total"], 50)), "total_p95_ms": ms(pct(s["total"], 95)),
            "mean_total_ms": ms(statistics.mean(s["total"])) if s["total"] else None,
        }
    print(json.dumps(report, indent=2))
    print(f"\n{args.clients} clients x {args.duration:.0f} s: server "
          f"{'alive' if alive else 'DEAD'}, peak RSS {report['rss_peak_mib']} MiB "
          f"(start {report['rss_start_mib']} MiB)")
    for app in ("fg", "bg"):
        r = report[app]
        print(f"  {app}: {r['completed']} completed, {r['refused_429']} x 429, "
              f"{r['refused_503']} x 503, {r['failed']} failed; TTFT p50/p95 "
              f"{r['ttft_p50_ms']}/{r['ttft_p95_ms']} ms, total p50/p95 "
              f"{r['total_p50_ms']}/{r['total_p95_ms']} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    bad = not alive or any(report[a]["failed"] for a in ("fg", "bg"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
