#!/usr/bin/env bash
# Where a prefill's time goes, as perf sample counts relative to the int8 GEMM's — ratios that
# survive this machine's speed swings (whole-run tok/s do not). Compare two binaries by running
# them alternately, several times each.
#   scripts/perf_shares.sh BIN MODEL CALIB [PROMPT] [REPS] [BENCH ARGS...]
#   e.g. scripts/perf_shares.sh build/octet q05.gguf q05.calib.json 512 8 --attn f32
set -euo pipefail
bin=$1 model=$2 calib=$3 prompt=${4:-512} reps=${5:-8}
shift $(($# < 5 ? $# : 5))
data=$(mktemp /tmp/perf-shares.XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -q -F 1500 -o "$data" "$bin" bench -m "$model" --prompts "$prompt" --gen 0 \
  --reps "$reps" --calib "$calib" "$@" >/dev/null 2>&1
perf report -i "$data" --no-children --sort symbol 2>/dev/null | python3 -c '
import collections, re, sys
# First match wins; "load" is model loading (weight quantisation, tokenizer), not prefill.
rules = [("kv", "kv_rows"), ("gemm", "tile"), ("gemm", "gemm_vnni"), ("shadow", "shadow_"),
         ("attn", "attn_block"), ("attn", "Bf16Ops"), ("attn", "scores_k"),
         ("attn", "pv_k"), ("quant", "quant_vnni"), ("act", "silu_mul"), ("act", "gelu"),
         ("pool", "ThreadPool"), ("load", "build_int8"), ("load", "weight_row"),
         ("load", "Int8Weights::finish"), ("load", "q4_0"), ("load", "q8_0"), ("load", "make_bpe"),
         ("load", "json")]
share = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), m.group(2)
    share[next((c for c, key in rules if key in sym), "other")] += pct
gemm = share["gemm"]
g = gemm or 1.0
cats = ["shadow", "attn", "kv", "quant", "act", "pool", "other", "load"]
print(" ".join(f"{c} {share[c] / g:.3f}" for c in cats), f"| gemm {gemm:.1f}% of samples")
'
