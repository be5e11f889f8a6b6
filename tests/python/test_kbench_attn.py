"""`octet kbench-attn`: runs the model shapes through the engine's attention (F16 / INT8 KV, a
sliding-window ring) and agrees with the scalar reference on the last chunk; bad options are
clear errors."""
import subprocess


def _run(args, timeout=600):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_kbench_attn_matches_reference(octet_bin):
    for kv in ("f16", "int8"):
        # Prompt 700 in chunks of 64: the sliding-window shape keeps a ring of 576 slots.
        r = _run([octet_bin, "kbench-attn", "--shape", "qwen2.5-0.5b", "--shape", "gemma3-270m-swa",
                  "--prompt", "700", "--chunk", "64", "--reps", "1", "--kv", kv, "--check",
                  "--warm", "--threads", "2"])
        assert r.returncode == 0, r.stderr[-2000:]
        rows = [l.split() for l in r.stdout.splitlines()
                if l.split() and l.split()[0] in ("qwen2.5-0.5b", "gemma3-270m-swa")]
        assert [row[0] for row in rows] == ["qwen2.5-0.5b", "gemma3-270m-swa"], r.stdout
        for name, prompt, ms, gflops, maxdiff in rows:
            assert prompt == "700" and float(ms) > 0 and float(gflops) > 0
            assert float(maxdiff) < 3e-5, (kv, name, maxdiff)


def test_kbench_attn_bad_options(octet_bin):
    for args, msg in ((["--shape", "nope"], "unknown --shape"), (["--kv", "bf16"], "--kv"),
                      (["--chunk", "0"], "--chunk")):
        r = _run([octet_bin, "kbench-attn", "--prompt", "64", "--reps", "1", *args])
        assert r.returncode != 0
        assert msg in r.stderr + r.stdout, (args, r.stderr)
