"""octet fp32 logits vs the numpy reference on random-weight qwen2 / llama / gemma3 models
(tests/python/make_models.py): every architecture quirk, GQA, biases, quantised tensor types,
sliding-window and global layers, and chunked prefill (KV reuse across chunks).

Error measure: max_ij |octet_ij - ref_ij| / max_ij |ref_ij| (ref in float64) <= 1e-4."""
import numpy as np
import pytest

import harness
import make_models
from octet_ref import RefModel, rel_err

TOL = 1e-4
N_TOKENS = 40  # > 4x the gemma3 sliding window (8), several chunks at --chunk 7


def _tokens(n_vocab: int, n: int, seed: int):
    return np.random.default_rng(seed).integers(0, n_vocab, size=n).tolist()


# KV f32 is held to TOL; the default F16 KV (half-precision K/V rows, ~5e-4 relative per
# element; these models have deliberately large q/k) to 5e-3. At chunk 7 the gemma3 model's
# window layers (window 8) keep a ring of window + chunk = 15 slots of the 40 positions.
KV_TOL = {"f32": TOL, "f16": 5e-3}


@pytest.mark.parametrize("kind", ["qwen2", "llama", "gemma3"])
@pytest.mark.parametrize("chunk", [256, 7])
@pytest.mark.parametrize("kv", ["f32", "f16"])
def test_logits_match_reference(octet_bin, kind, chunk, kv):
    path = make_models.ensure_model(kind)
    ref = RefModel(path)
    toks = _tokens(ref.cfg.n_vocab, N_TOKENS, seed=len(kind))
    want = ref.forward(toks)
    got = harness.octet_logits(path, toks, "--chunk", chunk, "--kv-type", kv)
    assert got.shape == want.shape
    err = rel_err(got, want)
    print(f"{kind} chunk {chunk} kv {kv}: rel err {err:.2e} (max |logit| {np.abs(want).max():.2f})")
    assert err <= KV_TOL[kv]
    # The test has teeth: the logits vary across positions and are far from uniform.
    assert np.std(want, axis=1).min() > 0.1


def test_gemma3_both_layer_kinds_matter():
    """Guard for the test above: with the generated gemma3 model, dropping the sliding window
    (or treating every layer as local) changes the logits by far more than the tolerance, so
    the oracle really checks octet's window and per-layer rope bases."""
    path = make_models.ensure_model("gemma3")
    ref = RefModel(path)
    c = ref.cfg
    assert c.sliding_window and any(c.swa_layers) and not all(c.swa_layers)
    toks = _tokens(c.n_vocab, N_TOKENS, seed=6)
    want = ref.forward(toks)
    c.sliding_window = 0  # every layer global
    assert rel_err(ref.forward(toks), want) > 100 * TOL
    c.sliding_window = 8
    c.swa_layers = [True] * c.n_layer  # every layer local (window + local rope base)
    assert rel_err(ref.forward(toks), want) > 100 * TOL
    c.swa_layers = [(il + 1) % 6 != 0 for il in range(c.n_layer)]
    assert rel_err(ref.forward(toks), want) == 0
    c.rope_scale = 1.0  # the file's linear rope scaling (global layers) matters too
    assert c.rope_base != c.rope_base_swa and rel_err(ref.forward(toks), want) > 100 * TOL
