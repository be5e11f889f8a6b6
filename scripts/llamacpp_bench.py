#!/usr/bin/env python3
"""The peer in `octet bench --compare llama.cpp`: runs llama-cpp-python on the same GGUF and the
same prompt token ids, and prints one JSON object with the fields octet bench prints.

Run in a fresh process per measurement so peak RSS is that of one configuration."""
import argparse
import json
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens-file", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--n-gen", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--reps", type=int, default=1,
                    help="prefills of the prompt; the first gives TTFT, the fastest prefill t/s")
    args = ap.parse_args()

    from llama_cpp import Llama, llama_cpp as C

    with open(args.tokens_file) as f:
        toks = [int(t) for t in f.read().split(",") if t.strip()]
    n_ctx = args.ctx or (len(toks) + args.n_gen + 8)
    llm = Llama(model_path=args.model, n_ctx=n_ctx, n_batch=args.batch, n_ubatch=args.batch,
                n_threads=args.threads, n_threads_batch=args.threads, verbose=False,
                logits_all=False)
    # Warm the weights' pages so both engines start from a mapped, touched file.
    def clear():
        llm.reset()
        if hasattr(C, "llama_memory_clear"):
            C.llama_memory_clear(C.llama_get_memory(llm.ctx), True)

    llm.eval(toks[:8])
    clear()

    times = []
    ttft = 0.0
    first = 0
    for rep in range(max(1, args.reps)):
        if rep:
            clear()
        t0 = time.perf_counter()
        llm.eval(toks)
        t1 = time.perf_counter()
        first = int(llm._scores[-1].argmax()) if hasattr(llm, "_scores") else 0
        if rep == 0:
            ttft = (time.perf_counter() - t0) * 1e3
        times.append(t1 - t0)
    best = min(times)
    median = sorted(times)[len(times) // 2]
    gen = []
    t2 = time.perf_counter()
    tok = first
    for _ in range(args.n_gen):
        llm.eval([tok])
        tok = int(llm._scores[-1].argmax())
        gen.append(tok)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "engine": "llama.cpp",
        "model": args.model,
        "prompt_tokens": len(toks),
        "prefill_tok_s": len(toks) / best,
        "prefill_tok_s_median": len(toks) / median,
        "prefill_tok_s_cold": len(toks) / times[0],
        "reps": len(times),
        "ttft_ms": ttft,
        "decode_tok_s": args.n_gen / (t3 - t2) if args.n_gen else 0.0,
        "peak_rss_mb": rss,
        "threads": args.threads,
    }))


if __name__ == "__main__":
    sys.exit(main())
