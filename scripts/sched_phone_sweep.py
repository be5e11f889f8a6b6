#!/usr/bin/env python3
"""Sensitivity of the phone simulation (docs/scheduler.md) to the profile's assumed numbers.

Varies the CPU's effective attention throughput (the float side's big cost), the CPU<->NPU
hand-off latency and the number of chunk arenas around docs/sched/phone-sd8g3.json, and
prints a markdown table of in-order vs the greedy and the planned out-of-order policy for Qwen1.5-1.8B at 1024 tokens.
Usage: sched_phone_sweep.py [OCTET_BIN]
"""
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OCTET = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build" / "octet")
base = json.load(open(ROOT / "docs" / "sched" / "phone-sd8g3.json"))
BASE_GFLOPS = 50.0


def sim(prof, arenas):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(prof, f)
    args = [OCTET, "sim", "-m", "qwen1.5-1.8b", "--profile", f.name, "--prompt", "1024",
            "--arenas", str(arenas), "--json", "--no-gantt", "--policy", "all"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    r = {r["policy"]: r for r in map(json.loads, out.splitlines())}
    # A coarse in-order stagger: chunk i+1 trails chunk i by half a chunk (97 of 194 subgraphs);
    # ooo then plans against that in-order schedule.
    out = subprocess.run(args + ["--lag", "97"], capture_output=True, text=True,
                         check=True).stdout
    r97 = {r["policy"]: r for r in map(json.loads, out.splitlines())}
    r["inorder97"], r["ooo97"] = r97["inorder"], r97["ooo"]
    Path(f.name).unlink()
    return r


print("| CPU attn GFLOP/s | hand-off ms | arenas | sequential ms | in-order lag 97 ms (bubbles) "
      "| in-order tight ms (bubbles) | greedy ms (bubbles) | critical ms "
      "| greedy vs lag 97 | greedy vs tight | ooo vs lag 97 (ran) | ooo vs tight (ran) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for gflops in (25, 50, 100):
    for handoff in (0.05, 0.2, 1.0):
        for arenas in (2, 4):
            p = copy.deepcopy(base)
            p["handoff_ms"] = handoff
            for proc in p["processors"].values():
                proc["attn"]["c"] *= BASE_GFLOPS / gflops
            r = sim(p, arenas)
            s, c, i, gr, k = (r["sequential"], r["inorder97"], r["inorder"], r["greedy"],
                              r["critical"])
            f = lambda x: f"{x['predicted_ms']:.0f} ({100 * x['integer_bubble_share']:.0f} %)"
            g = lambda a, b: f"{100 * (a['predicted_ms'] / b['predicted_ms'] - 1):+.1f} %"
            o, o97 = r["ooo"], r["ooo97"]
            print(f"| {gflops} | {handoff} | {arenas} | {s['predicted_ms']:.0f} | {f(c)} | {f(i)} "
                  f"| {f(gr)} | {k['predicted_ms']:.0f} | {g(gr, c)} | {g(gr, i)} "
                  f"| {g(o97, c)} ({o97['ran']}) | {g(o, i)} ({o['ran']}) |")
