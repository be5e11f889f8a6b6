#!/usr/bin/env python3
"""Markdown table of `octet bench --json` rows with scheduler reports (sched_measure.sh)."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| prompt | policy | processors | path | prefill ms | tok/s | simulated ms | error "
      "| int8 busy | float busy | int8 bubbles |")
print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(rows, key=lambda r: (r["prompt_tokens"], r["sched"]["path"] == "eval",
                                     r["sched"]["processors"], r["sched"]["policy"])):
    s = r["sched"]
    ms = s.get("makespan_ms", r.get("min_ms", r["prompt_tokens"] / r["prefill_tok_s"] * 1000))
    pred = s.get("predicted_ms")
    busy = s.get("busy_share", [])
    split = len(busy) == 2
    pct = lambda x: f"{100 * x:.0f} %"
    cells = [str(r["prompt_tokens"]), s["policy"], s["processors"], s["path"], f"{ms:.0f}",
             f"{r['prompt_tokens'] / ms * 1000:.0f}", f"{pred:.0f}" if pred else "-",
             f"{100 * (pred / ms - 1):+.1f} %" if pred else "-",
             pct(busy[0]) if busy else "-", pct(busy[1]) if split else "-",
             pct(s["int_bubble_share"]) if split else "-"]
    print("| " + " | ".join(cells) + " |")
