"""INT8 prefill accuracy against octet's own FP32 path (issue 3): perplexity within 1 %,
mean KL < 0.02, on text that does not overlap the calibration text (the built-in sample).

Calibrations are written to a temporary file (--calib), never next to shared test data."""
import json
import os
import subprocess

import pytest

import harness


def _run(args, timeout=900):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)} failed:\n{r.stderr[-2000:]}"
    return r.stdout


def _ppl(octet_bin, model, text, ctx, chunks, mode, calib, kv):
    out = _run([octet_bin, "ppl", "-m", model, "-f", text, "--ctx", str(ctx), "--chunks",
                str(chunks), "--mode", mode, "--calib", calib, "--kv-type", kv, "--json"])
    return json.loads(out.strip().splitlines()[-1])


# Both runs keep the same KV type (the default F16 since session 12; F32 before), so the
# difference is the int8 weights and activations.
# The int8 run scores octet's fp32 weights on the same chunks too (for the KL) and reports
# that perplexity as ppl_ref; with separate_fp32 a run of --mode fp32 must give the same number.
def _check(octet_bin, model, text, ctx, chunks, tmp_path, kv="f16", separate_fp32=False):
    calib = str(tmp_path / "calib.json")
    _run([octet_bin, "calibrate", "-m", model, "-o", calib, "-q"])
    c = json.load(open(calib))
    assert c["format"] == "octet-calibration" and c["text_source"] == "builtin"
    i8 = _ppl(octet_bin, model, text, ctx, chunks, "int8", calib, kv)
    f32 = {"ppl": i8["ppl_ref"]}
    if separate_fp32:
        f32 = _ppl(octet_bin, model, text, ctx, chunks, "fp32", calib, kv)
        assert abs(f32["ppl"] / i8["ppl_ref"] - 1) < 1e-9
    rel = i8["ppl"] / f32["ppl"] - 1
    print(f"\n{os.path.basename(model)}: fp32 ppl {f32['ppl']:.4f}, int8 ppl {i8['ppl']:.4f} "
          f"({rel * 100:+.2f} %), KL {i8['kl_mean']:.5f}, top-1 {i8['top1_agree'] * 100:.1f} %")
    assert abs(rel) < 0.01
    assert i8["kl_mean"] < 0.02
    assert i8["top1_agree"] > 0.9
    return i8


def test_stories260k_int8_within_1pct(octet_bin, stories_path, tmp_path):
    text = harness.shared_data("tinystories", "tinystories_sample.txt")
    if not os.path.exists(text):
        pytest.skip(f"test data missing: {text}")
    _check(octet_bin, stories_path, text, 256, 7, tmp_path, separate_fp32=True)


def _vs_llama(octet_bin, model, wiki, tmp_path):
    """octet's INT8 logits (the calibration _check wrote) against llama.cpp's on the same file
    and the first 256 WikiText tokens: an independent oracle of the whole INT8 path."""
    import numpy as np
    from octet_ref import compare_logits

    calib = str(tmp_path / "calib.json")
    with open(wiki, encoding="utf-8") as f:
        toks = harness.llama_tokenize(model, f.read(20000))[:256]
    out = str(tmp_path / "logits.f32")
    _run([octet_bin, "logits", "-m", model, "--tokens", ",".join(map(str, toks)), "-o", out,
          "--mode", "int8", "--calib", calib])
    mine = np.fromfile(out, dtype=np.float32).reshape(len(toks), -1)
    s = compare_logits(mine, harness.llama_logits(model, toks))
    print(f"octet int8 vs llama.cpp on {os.path.basename(model)}: argmax "
          f"{s['argmax_agree'] * 100:.1f} %, KL {s['kl_mean']:.4f}")
    return s


def test_gemma3_int8_within_1pct_on_wikitext(octet_bin, gemma, tmp_path):
    wiki = harness.shared_data("wikitext-2", "wiki.test.raw")
    if not os.path.exists(wiki):
        pytest.skip(f"test data missing: {wiki}")
    # 24 chunks of 512 tokens (the first 200 KB): the gap is the mean of per-token NLL
    # differences whose spread is ~0.12 nats, a standard error of ~0.26 % of ppl over 8
    # chunks and ~0.15 % over 24 (measured, session 22), so any change to the arithmetic moved
    # an 8-chunk gap by a few tenths (docs/results.md).
    head = tmp_path / "wiki-head.txt"
    with open(wiki, "rb") as f:
        head.write_bytes(f.read(200000))
    # The defaults (F16 KV, bf16 attention, the LM head read from the file's Q8_0 blocks):
    # α 0.25 (VNNI CPUs), rows below the clip on their own scale (session 22): +0.40 % and
    # KL 0.0051 on these 24 chunks (+0.73 %, KL 0.0059 with the tensor's scale for every
    # row); unsmoothed on the file's blocks (AVX2, session 19): +0.40 % over 40
    # (docs/results.md).
    i8 = _check(octet_bin, gemma, str(head), 512, 24, tmp_path)
    assert i8["kl_mean"] < 0.01
    # On CPUs without AVX-512 VNNI 79 % of the linear MACs multiply the file's own Q5_0/Q4_K
    # blocks (docs/kernels-int8.md); llama.cpp on the same file as the independent oracle.
    # Measured (Zen 3, 256 tokens): 93.0 % argmax, KL 0.0092.
    s = _vs_llama(octet_bin, gemma, wiki, tmp_path)
    assert s["argmax_agree"] > 0.88 and s["kl_mean"] < 0.03


def test_explicit_calibration_must_exist(octet_bin, stories_path, tmp_path):
    r = subprocess.run([octet_bin, "run", "-m", stories_path, "-p", "x", "-n", "1", "--calib",
                        str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert r.returncode != 0 and "calibration file not found" in r.stderr


def test_ppl_rejects_bad_counts(octet_bin, stories_path, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Once upon a time there was a cat. " * 40)
    for args in (["--chunks", "-1"], ["--ctx", "8"]):
        r = subprocess.run([octet_bin, "ppl", "-m", stories_path, "-f", str(text), *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "not in range" in r.stderr, (args, r.stderr)


def test_stale_sidecar_is_rejected(octet_bin, stories_path, tmp_path):
    calib = tmp_path / "calib.json"
    _run([octet_bin, "calibrate", "-m", stories_path, "-o", str(calib), "-q"])
    c = json.loads(calib.read_text())
    c["model_fingerprint"] = "0000000000000000-1"
    calib.write_text(json.dumps(c))
    r = subprocess.run([octet_bin, "run", "-m", stories_path, "-p", "x", "-n", "1", "--calib",
                        str(calib)], capture_output=True, text=True)
    assert r.returncode != 0 and "different model" in r.stderr


def test_gemma3_q4_0_prefill_on_the_files_blocks(octet_bin, gemma, tmp_path):
    """Gemma 3 270M with its block linears requantised to Q4_0: on CPUs without AVX-512 VNNI
    octet's INT8 prefill multiplies these blocks in place (W4A8, docs/kernels-int8.md) with an
    unsmoothed calibration; elsewhere the int8 copy runs. Either way: within 1 % of octet's
    FP32 perplexity, and close to llama.cpp on the same file (an independent oracle)."""
    import make_models

    wiki = harness.shared_data("wikitext-2", "wiki.test.raw")
    if not os.path.exists(wiki):
        pytest.skip(f"test data missing: {wiki}")
    q4 = os.path.join(harness.cache_dir(), f"gemma3-270m-q4_0-{harness.file_key(gemma)}.gguf")
    if not harness.cached(q4):
        harness.need_disk(harness.cache_dir(), 2 * os.path.getsize(gemma), "the Q4_0 copy")
        make_models.q4_0_copy(gemma, q4)
    head = tmp_path / "wiki-head.txt"
    with open(wiki, "rb") as f:
        head.write_bytes(f.read(60000))
    # Measured on Zen 3 (AVX2): +0.55 %, KL 0.0053 over 40 chunks (docs/results.md).
    i8 = _check(octet_bin, q4, str(head), 512, 8, tmp_path)
    assert i8["kl_mean"] < 0.01
    s = _vs_llama(octet_bin, q4, wiki, tmp_path)
    # llama.cpp quantises activations to Q8_0 per 32 values, octet per tensor with outliers:
    # both sit ~4-5 % of argmaxes from FP32 on their own. Measured (Zen 3, 256 tokens): 91.8 %
    # argmax, KL 0.0148.
    assert s["argmax_agree"] > 0.88 and s["kl_mean"] < 0.03
