#!/usr/bin/env bash
# A/B timing of two octet binaries on `octet kbench-attn`, interleaved (old, new, old, new..)
# per shape and prompt so both see the same machine load; prints the fastest ms/layer of each
# and old/new. Usage: scripts/attn_ab.sh OLD_BIN NEW_BIN [ROUNDS] [extra kbench-attn args..]
# e.g. scripts/attn_ab.sh /tmp/octet-old build/octet 3 --threads 1 --cpu-time
set -euo pipefail
old=$1 new=$2 rounds=${3:-3}
shift 3 || shift $#
shapes=(qwen2.5-0.5b qwen1.5-1.8b gemma3-270m gemma3-270m-swa)
prompts=(512 1024 2048)
printf "%-16s %6s %10s %10s %7s\n" shape prompt old_ms new_ms old/new
for s in "${shapes[@]}"; do
  for p in "${prompts[@]}"; do
    bo=1e30 bn=1e30
    for ((r = 0; r < rounds; ++r)); do
      to=$("$old" kbench-attn --shape "$s" --prompt "$p" --reps 2 "$@" | awk -v s="$s" '$1 == s {print $3}')
      tn=$("$new" kbench-attn --shape "$s" --prompt "$p" --reps 2 "$@" | awk -v s="$s" '$1 == s {print $3}')
      bo=$(awk -v a="$bo" -v b="$to" 'BEGIN {print (b < a) ? b : a}')
      bn=$(awk -v a="$bn" -v b="$tn" 'BEGIN {print (b < a) ? b : a}')
    done
    awk -v s="$s" -v p="$p" -v o="$bo" -v n="$bn" 'BEGIN {printf "%-16s %6d %10.3f %10.3f %6.2fx\n", s, p, o, n, o / n}'
  done
done
