#!/usr/bin/env python3
"""Markdown table of `octet bench --json` rows with scheduler reports (sched_measure.sh)."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ratios = [r for r in rows if "ooo_vs_inorder" in r]
rows = [r for r in rows if "sched" in r]
print("| prompt | policy | processors | path | prefill ms | tok/s | simulated ms | error "
      "| int8 busy | float busy | int8 bubbles |")
print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(rows, key=lambda r: (r["prompt_tokens"], r["sched"]["path"] == "eval",
                                     r["sched"]["processors"], r["sched"]["policy"])):
    s = r["sched"]
    # The measured prefill (best of --reps); the simulator predicts the whole prefill.
    ms = r.get("min_ms", r["prompt_tokens"] / r["prefill_tok_s"] * 1000)
    pred = s.get("predicted_ms")
    busy = s.get("busy_share", [])
    split = len(busy) == 2
    pct = lambda x: f"{100 * x:.0f} %"
    pol = s["policy"] + (f" (ran {s['ran']})" if "ran" in s else "")
    cells = [str(r["prompt_tokens"]), pol, s["processors"], s["path"], f"{ms:.0f}",
             f"{r['prompt_tokens'] / ms * 1000:.0f}", f"{pred:.0f}" if pred else "-",
             f"{100 * (pred / ms - 1):+.1f} %" if pred else "-",
             pct(busy[0]) if busy else "-", pct(busy[1]) if split else "-",
             pct(s["int_bubble_share"]) if split else "-"]
    print("| " + " | ".join(cells) + " |")
if ratios:
    print()
    print("| prompt | ooo ran | ooo / inorder (best of reps) | per-round ratios (median; range) |")
    print("|---:|---|---:|---:|")
    for r in ratios:
        o = r["ooo_vs_inorder"]
        rr = sorted(o["round_ratios"])
        print(f"| {r['prompt_tokens']} | {o['ran']} | {o['best_ratio']:.3f} | "
              f"{o['median_round_ratio']:.3f}; {rr[0]:.3f}-{rr[-1]:.3f} |")
