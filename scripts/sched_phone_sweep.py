#!/usr/bin/env python3
"""Sensitivity of the phone simulation (docs/scheduler.md) to the profile's assumed numbers.

Varies the CPU's effective attention throughput (the float side's big cost), the CPU<->NPU
hand-off latency and the number of chunk arenas around docs/sched/phone-sd8g3.json, and
prints a markdown table of in-order vs out-of-order for Qwen1.5-1.8B at 1024 tokens.
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
    out = subprocess.run([OCTET, "sim", "-m", "qwen1.5-1.8b", "--profile", f.name, "--prompt",
                          "1024", "--policy", "all", "--arenas", str(arenas), "--json",
                          "--no-gantt"], capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()
    return {r["policy"]: r for r in map(json.loads, out.splitlines())}


print("| CPU attention GFLOP/s | hand-off ms | arenas | sequential ms | in-order ms | in-order "
      "int bubbles | ooo ms | ooo int bubbles | ooo vs in-order |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for gflops in (25, 50, 100):
    for handoff in (0.05, 0.2, 1.0):
        for arenas in (2, 4):
            p = copy.deepcopy(base)
            p["handoff_ms"] = handoff
            for proc in p["processors"].values():
                proc["attn"]["c"] *= BASE_GFLOPS / gflops
            r = sim(p, arenas)
            s, i, o = r["sequential"], r["inorder"], r["ooo"]
            print(f"| {gflops} | {handoff} | {arenas} | {s['predicted_ms']:.0f} "
                  f"| {i['predicted_ms']:.0f} | {100 * i['integer_bubble_share']:.0f} % "
                  f"| {o['predicted_ms']:.0f} | {100 * o['integer_bubble_share']:.0f} % "
                  f"| {100 * (o['predicted_ms'] / i['predicted_ms'] - 1):+.1f} % |")
