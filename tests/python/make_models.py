"""Random-weight GGUF models for the oracle tests, written with the `gguf` package.

Each model is small (a few hundred KB) but has the shape quirks of its family:
  qwen2  - Q/K/V biases, GQA (4 q heads / 2 kv heads), NEOX RoPE with base 1e6, byte-level
           BPE vocabulary (tokenizer.ggml.model "gpt2", merges, ChatML specials), separate
           output.weight; attention matrices Q8_0, FFN F16 (dequantised by gguf in the reference)
  llama  - GQA (8 / 2), adjacent-pair RoPE, SentencePiece vocabulary with byte fallback,
           tied output (no output.weight), all F32
  gemma3 - 6 layers (5 sliding-window + 1 global, window 8 < test length), head_dim 32 with
           n_head * head_dim != n_embd (as in the real 270M), QK-norm, post norms, separate
           local/global rope bases, linear rope scaling x8 (global layers only, as in 4B+),
           GELU-tanh, Gemma-style SPM vocabulary; some Q4_0 matrices

Weights are scaled so that activations stay O(1) and attention is far from uniform (q/k are
larger than a plain 1/sqrt(fan_in) init), so a wrong mask, rope or scale changes the logits.

Also: f32_copy(src, dst) rewrites any GGUF with every tensor dequantised to F32.

    python tests/python/make_models.py OUTDIR       # writes all three
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import gguf

from harness import cache_dir, cached
from octet_ref import field_value, tensor_f32

Q = gguf.GGMLQuantizationType

SPECS = {
    "qwen2": dict(arch="qwen2", n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16,
                  n_ff=96, eps=1e-6, rope_base=1e6, ctx=256),
    "llama": dict(arch="llama", n_embd=64, n_layer=2, n_head=8, n_head_kv=2, head_dim=8,
                  n_ff=128, eps=1e-5, rope_base=10000.0, ctx=256),
    "gemma3": dict(arch="gemma3", n_embd=64, n_layer=6, n_head=4, n_head_kv=1, head_dim=32,
                   n_ff=128, eps=1e-6, rope_base=1e6, ctx=256, sliding_window=8),
}


# ---------------------------------------------------------------------------------------------
# Vocabularies


def spm_vocab(gemma: bool):
    """SentencePiece-style vocabulary: specials, 256 byte-fallback tokens, some pieces."""
    if gemma:  # Gemma's layout: <pad>=0 <eos>=1 <bos>=2 <unk>=3, then turn markers
        specials = [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2),
                    ("<start_of_turn>", 3), ("<end_of_turn>", 3)]
        ids = dict(pad=0, eos=1, bos=2, unk=3)
    else:  # Llama's layout
        specials = [("<unk>", 2), ("<s>", 3), ("</s>", 3)]
        ids = dict(unk=0, bos=1, eos=2)
    tokens = [t for t, _ in specials]
    types = [ty for _, ty in specials]
    scores = [0.0] * len(tokens)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(6)
        scores.append(0.0)
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces += [chr(c) for c in range(ord("A"), ord("Z") + 1)] + list(".,!?'\n")
    pieces += ["\u2581t", "he", "\u2581the", "\u2581a", "in", "\u2581w", "er", "on", "an",
               "\u2581s", "\u2581b", "\u2581Once", "\u2581upon", "\u2581time", "\u2581there",
               "\u2581was", "\u2581little", "\u2581girl", "\u2581Hello", "\u2581world"]
    for i, p in enumerate(pieces):
        tokens.append(p)
        types.append(1)
        scores.append(-float(i))
    return tokens, scores, types, ids


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bpe_vocab():
    """Byte-level BPE vocabulary (Qwen2-like): 256 byte symbols, merges, ChatML specials."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    merges = ["\u0120 t", "h e", "\u0120t he", "\u0120 a", "i n", "\u0120 w", "e r", "o n",
              "\u0120 s", "l l", "\u0120 H", "e ll", "\u0120H ell", "\u0120Hell o"]
    for m in merges:
        tokens.append(m.replace(" ", ""))
    types = [1] * len(tokens)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    first_special = len(tokens)
    tokens += specials
    types += [3] * len(specials)
    ids = dict(bos=first_special, eos=first_special + 2, pad=first_special)
    return tokens, types, merges, ids


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
GEMMA_TMPL = ("{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
              "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
              "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


# ---------------------------------------------------------------------------------------------


def _add_tensor(w: gguf.GGUFWriter, name: str, a: np.ndarray, qtype=Q.F32):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if qtype == Q.F32:
        w.add_tensor(name, a)
    elif qtype == Q.F16:
        w.add_tensor(name, a.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)


def make_model(kind: str, path: str, seed: int = 1234) -> str:
    s = SPECS[kind]
    arch = s["arch"]
    rng = np.random.default_rng(seed)
    E, L, H, Hkv, D, F = (s[k] for k in ("n_embd", "n_layer", "n_head", "n_head_kv",
                                          "head_dim", "n_ff"))
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"octet-test-{kind}")
    w.add_context_length(s["ctx"])
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_rope_freq_base(s["rope_base"])
    if D * H != E:  # only needed when it differs from n_embd / n_head
        w.add_key_length(D)
        w.add_value_length(D)
    if kind == "gemma3":
        w.add_sliding_window(s["sliding_window"])
        # As Gemma 3 4B+: linear rope scaling, which applies to the global layers only.
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(8.0)

    if kind == "qwen2":
        tokens, types, merges, ids = bpe_vocab()
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(ids["bos"])
        w.add_eos_token_id(ids["eos"])
        w.add_pad_token_id(ids["pad"])
        w.add_add_bos_token(False)
        w.add_chat_template(CHATML)
    else:
        tokens, scores, types, ids = spm_vocab(gemma=kind == "gemma3")
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(ids["bos"])
        w.add_eos_token_id(ids["eos"])
        w.add_unk_token_id(ids["unk"])
        if "pad" in ids:
            w.add_pad_token_id(ids["pad"])
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        if kind == "gemma3":
            w.add_chat_template(GEMMA_TMPL)
    V = len(tokens)

    def mat(n_out, n_in, gain=1.0):
        return rng.standard_normal((n_out, n_in)) * (gain / np.sqrt(n_in))

    def norm(n):  # stored as-is (for Gemma the GGUF already holds 1 + w)
        return 1.0 + 0.2 * rng.standard_normal(n)

    # Quantised types per family (row lengths are multiples of 32).
    attn_t = Q.Q8_0 if kind == "qwen2" else (Q.Q4_0 if kind == "gemma3" else Q.F32)
    ffn_t = Q.F16 if kind == "qwen2" else Q.F32

    _add_tensor(w, "token_embd.weight", rng.standard_normal((V, E)))
    _add_tensor(w, "output_norm.weight", norm(E))
    if kind != "llama":  # llama: tied head (reads token_embd)
        _add_tensor(w, "output.weight", mat(V, E, 2.0))
    for il in range(L):
        p = f"blk.{il}."
        _add_tensor(w, p + "attn_norm.weight", norm(E))
        _add_tensor(w, p + "attn_q.weight", mat(H * D, E, 2.5), attn_t)
        _add_tensor(w, p + "attn_k.weight", mat(Hkv * D, E, 2.5), attn_t)
        _add_tensor(w, p + "attn_v.weight", mat(Hkv * D, E), attn_t)
        _add_tensor(w, p + "attn_output.weight", mat(E, H * D), attn_t)
        if kind == "qwen2":
            _add_tensor(w, p + "attn_q.bias", 0.5 * rng.standard_normal(H * D))
            _add_tensor(w, p + "attn_k.bias", 0.5 * rng.standard_normal(Hkv * D))
            _add_tensor(w, p + "attn_v.bias", 0.5 * rng.standard_normal(Hkv * D))
        if kind == "gemma3":
            _add_tensor(w, p + "attn_q_norm.weight", norm(D) * 2.0)
            _add_tensor(w, p + "attn_k_norm.weight", norm(D) * 2.0)
            _add_tensor(w, p + "post_attention_norm.weight", norm(E))
            _add_tensor(w, p + "post_ffw_norm.weight", norm(E))
        _add_tensor(w, p + "ffn_norm.weight", norm(E))
        _add_tensor(w, p + "ffn_gate.weight", mat(F, E, 1.5), ffn_t)
        _add_tensor(w, p + "ffn_up.weight", mat(F, E), ffn_t)
        _add_tensor(w, p + "ffn_down.weight", mat(E, F), ffn_t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


BLOCK_LINEARS = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                 "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")


def _copy(src: str, dst: str, convert) -> str:
    """Copy of a GGUF with metadata unchanged and each tensor t written as convert(t): a
    float32 array, or (bytes as uint8 array, GGML type) for quantised data."""
    r = gguf.GGUFReader(src)
    arch = field_value(r, "general.architecture")
    tmp = dst + f".{os.getpid()}.tmp"
    w = gguf.GGUFWriter(tmp, arch)
    vt = gguf.GGUFValueType
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = field_value(r, key)
        t0 = vt(f.types[0])
        if t0 == vt.ARRAY:
            w.add_key_value(key, val, vt.ARRAY, sub_type=vt(f.types[-1]))
        else:
            w.add_key_value(key, val, t0)
    for t in r.tensors:
        out = convert(t)
        if isinstance(out, tuple):
            w.add_tensor(t.name, out[0], raw_dtype=out[1])
        else:
            w.add_tensor(t.name, out)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, dst)
    return dst


def f32_copy(src: str, dst: str) -> str:
    """Copy of a GGUF with every tensor dequantised (by gguf) to F32, metadata unchanged."""
    return _copy(src, dst, tensor_f32)


def q4_0_copy(src: str, dst: str) -> str:
    """Copy of a GGUF whose block linears (q, k, v, o, gate, up, down) are requantised to Q4_0
    by the gguf package (ggml's reference quantiser) from their dequantised values; every
    other tensor keeps its bytes and type. A real model in the format octet's W4A8 prefill
    GEMM reads (Int8Options::q4_gemm), for llama.cpp and octet to run side by side."""
    q4 = gguf.GGMLQuantizationType.Q4_0

    def convert(t):
        if t.name.endswith(BLOCK_LINEARS):
            return gguf.quants.quantize(tensor_f32(t), q4), q4
        qt = gguf.GGMLQuantizationType(int(t.tensor_type))
        if qt in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            return np.asarray(t.data).reshape(tuple(int(d) for d in reversed(list(t.shape))))
        return np.asarray(t.data), qt

    return _copy(src, dst, convert)


def ensure_model(kind: str) -> str:
    """Path of the cached random model `kind`, generated on first use (the name carries a hash
    of this file, so editing the generator regenerates the models)."""
    with open(__file__, "rb") as f:
        src = hashlib.sha1(f.read()).hexdigest()[:10]
    path = os.path.join(cache_dir(), f"rand-{kind}-{src}.gguf")
    if not cached(path):
        tmp = path + f".{os.getpid()}.tmp"
        make_model(kind, tmp)
        os.replace(tmp, path)
    return path


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "q4_0":  # make_models.py q4_0 SRC DST
        print(q4_0_copy(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    out = sys.argv[1] if len(sys.argv) > 1 else cache_dir()
    os.makedirs(out, exist_ok=True)
    for k in SPECS:
        print(make_model(k, os.path.join(out, f"rand-{k}.gguf")))
