"""Independent numpy reference forward pass for the architectures octet runs.

Written from the published model definitions and llama.cpp's GGUF conventions, not from
octet's C++ (see docs/architectures.md for each quirk and its source).  Weights are read with
the `gguf` package (GGUFReader + gguf.quants.dequantize), so octet's GGUF reader and
dequantisers are checked too.

    ref = RefModel("model.gguf")          # float64 by default
    logits = ref.forward([1, 2, 3])       # [n_tokens, n_vocab]

Supported: llama (also mistral), qwen2, gemma3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import gguf


# ---------------------------------------------------------------------------------------------
# GGUF metadata helpers (work across gguf package versions)


def field_value(reader: gguf.GGUFReader, key: str, default=None):
    """Scalar, string or array value of a metadata key, or `default` if absent."""
    f = reader.fields.get(key)
    if f is None:
        return default
    if hasattr(f, "contents"):
        return f.contents()
    vt = gguf.GGUFValueType
    t0 = f.types[0]
    if t0 == vt.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    if t0 == vt.ARRAY:
        if f.types[-1] == vt.STRING:
            return [bytes(f.parts[i]).decode("utf-8", errors="replace") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]


def tensor_f32(t) -> np.ndarray:
    """Dequantised tensor as float32 in numpy order (rows = GGUF ne1, cols = GGUF ne0)."""
    qt = gguf.GGMLQuantizationType(int(t.tensor_type))
    shape = tuple(int(d) for d in reversed(list(t.shape)))
    if qt == gguf.GGMLQuantizationType.F32:
        a = np.asarray(t.data, dtype=np.float32)
    elif qt == gguf.GGMLQuantizationType.F16:
        a = np.asarray(t.data).view(np.float16).astype(np.float32)
    else:
        a = gguf.quants.dequantize(np.asarray(t.data), qt).astype(np.float32, copy=False)
    return a.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Hyperparameters


@dataclass
class Config:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_rot: int
    eps: float
    rope_base: float
    rope_scale: float  # multiplies positions (1/factor for linear scaling)
    rope_neox: bool  # rotate (i, i + n_rot/2) instead of adjacent pairs (2i, 2i+1)
    attn_scale: float
    act: str  # "silu" | "gelu_tanh"
    embd_scale: float = 1.0
    qk_norm: bool = False
    post_norms: bool = False
    sliding_window: int = 0
    rope_base_swa: float = 10000.0
    swa_layers: list = field(default_factory=list)

    def window(self, il: int) -> int:
        return self.sliding_window if self.swa_layers and self.swa_layers[il] else 0


def read_config(reader: gguf.GGUFReader) -> Config:
    arch = field_value(reader, "general.architecture")
    if arch not in ("llama", "mistral", "qwen2", "gemma3"):
        raise ValueError(f"octet_ref: unsupported architecture {arch!r}")

    def kv(key, default=None):
        v = field_value(reader, f"{arch}.{key}", default)
        if v is None:
            raise KeyError(f"{arch}.{key}")
        return v

    n_embd = int(kv("embedding_length"))
    n_head = int(kv("attention.head_count"))
    head_dim = int(kv("attention.key_length", n_embd // n_head))
    tokens = field_value(reader, "tokenizer.ggml.tokens")
    scale_type = field_value(reader, f"{arch}.rope.scaling.type", "none")
    factor = float(field_value(reader, f"{arch}.rope.scaling.factor", 1.0))
    cfg = Config(
        arch=arch,
        n_vocab=len(tokens),
        n_embd=n_embd,
        n_layer=int(kv("block_count")),
        n_head=n_head,
        n_head_kv=int(kv("attention.head_count_kv", n_head)),
        head_dim=head_dim,
        n_ff=int(kv("feed_forward_length")),
        n_rot=int(kv("rope.dimension_count", head_dim)),
        eps=float(kv("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_base=float(kv("rope.freq_base", 10000.0)),
        rope_scale=1.0 / factor if scale_type == "linear" else 1.0,
        # llama.cpp: LLAMA uses LLAMA_ROPE_TYPE_NORM; QWEN2 and GEMMA3 use NEOX.
        rope_neox=arch in ("qwen2", "gemma3"),
        attn_scale=1.0 / math.sqrt(head_dim),
        act="silu",
    )
    if arch == "gemma3":
        cfg.act = "gelu_tanh"  # HF hidden_activation = gelu_pytorch_tanh
        cfg.embd_scale = math.sqrt(n_embd)
        cfg.qk_norm = True
        cfg.post_norms = True
        cfg.sliding_window = int(kv("attention.sliding_window", 0))
        cfg.rope_base_swa = 10000.0  # HF rope_local_base_freq; global layers use rope.freq_base
        # HF sliding_window_pattern = 6: layers 5, 11, 17, ... are global, the rest local.
        cfg.swa_layers = [cfg.sliding_window > 0 and (il + 1) % 6 != 0 for il in range(cfg.n_layer)]
        # query_pre_attn_scalar is head_dim for every Gemma 3 except 27B (62 layers), where
        # it is n_embd / n_head.
        if cfg.n_layer == 62:
            cfg.attn_scale = 1.0 / math.sqrt(n_embd / n_head)
    return cfg


# ---------------------------------------------------------------------------------------------
# Building blocks (all on float arrays of the reference dtype)


def rmsnorm(x: np.ndarray, w: np.ndarray | None, eps: float) -> np.ndarray:
    ms = np.mean(x * x, axis=-1, keepdims=True)
    y = x / np.sqrt(ms + eps)
    return y * w if w is not None else y


def rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, scale: float, neox: bool):
    """x: [T, H, D]; rotates the first n_rot dims of every head by pos * base^(-2i/n_rot)."""
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)
    th = (pos.astype(np.float64)[:, None] * scale) * inv[None, :]  # [T, half]
    c = np.cos(th).astype(x.dtype)[:, None, :]
    s = np.sin(th).astype(x.dtype)[:, None, :]
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * c - b * s
        out[..., half:n_rot] = a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * c - b * s
        out[..., 1:n_rot:2] = a * s + b * c
    return out


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def attention(q, k, v, scale: float, window: int) -> np.ndarray:
    """q: [T, H, D], k/v: [T, Hkv, D] (positions 0..T-1). Causal; with window > 0 a query at
    position i sees keys j with i - window < j <= i (HF/llama.cpp sliding window)."""
    T, H, D = q.shape
    group = H // k.shape[1]
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    visible = j <= i
    if window > 0:
        visible &= (i - j) < window
    out = np.empty_like(q)
    for h in range(H):
        kh, vh = k[:, h // group], v[:, h // group]
        s = (q[:, h] @ kh.T) * scale
        s = np.where(visible, s, -np.inf)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[:, h] = p @ vh
    return out


# ---------------------------------------------------------------------------------------------


class _Tensor:
    """A tensor of the file, by absolute offset (what GGUFReader reported), read lazily."""

    def __init__(self, path, name, qtype, shape, offset, n_bytes):
        self.path, self.name, self.qtype = path, name, int(qtype)
        self.shape, self.offset, self.n_bytes = list(shape), int(offset), int(n_bytes)

    @property
    def tensor_type(self):
        return self.qtype

    @property
    def data(self):
        raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.offset,
                        shape=(self.n_bytes,))
        qt = gguf.GGMLQuantizationType(self.qtype)
        if qt == gguf.GGMLQuantizationType.F32:
            return raw.view(np.float32)
        if qt == gguf.GGMLQuantizationType.F16:
            return raw.view(np.float16)
        return raw.reshape(-1, self.n_bytes // int(np.prod(self.shape[1:], dtype=np.int64)))


def _load_header(path: str, cache: str | None):
    """(Config, {name: _Tensor}) via GGUFReader. Parsing a 262144-entry vocabulary takes
    GGUFReader ~1 minute, so with `cache` (a directory) the result is kept as JSON, keyed by
    the file's content (harness.file_key)."""
    import dataclasses
    import json
    import os

    cpath = None
    if cache:
        from harness import cached, file_key

        cpath = os.path.join(cache, f"ref-header-{file_key(path)}.json")
    if cpath and cached(cpath):
        with open(cpath) as f:
            d = json.load(f)
    else:
        r = gguf.GGUFReader(path)
        d = {"cfg": dataclasses.asdict(read_config(r)),
             "tensors": [[t.name, int(t.tensor_type), [int(x) for x in t.shape],
                          int(t.data_offset), int(t.n_bytes)] for t in r.tensors]}
        if cpath:
            with open(cpath + ".tmp", "w") as f:
                json.dump(d, f)
            os.replace(cpath + ".tmp", cpath)
    cfg = Config(**d["cfg"])
    return cfg, {t[0]: _Tensor(path, *t) for t in d["tensors"]}


class RefModel:
    """A GGUF model evaluated in numpy. dtype: np.float64 (default) or np.float32.
    cache: optional directory for the parsed header (see _load_header)."""

    def __init__(self, path: str, dtype=np.float64, cache: str | None = None):
        self.path = path
        self.dtype = dtype
        self.cfg, self._t = _load_header(path, cache)

    def has(self, name: str) -> bool:
        return name in self._t

    def w(self, name: str) -> np.ndarray | None:
        t = self._t.get(name)
        return None if t is None else tensor_f32(t).astype(self.dtype, copy=False)

    def forward(self, tokens, hidden_out: list | None = None) -> np.ndarray:
        """Logits [T, n_vocab] for tokens at positions 0..T-1 (float32 result)."""
        c = self.cfg
        toks = np.asarray(tokens, dtype=np.int64)
        if toks.ndim != 1 or len(toks) == 0 or toks.min() < 0 or toks.max() >= c.n_vocab:
            raise ValueError("octet_ref: bad token ids")
        T, H, Hkv, D = len(toks), c.n_head, c.n_head_kv, c.head_dim
        pos = np.arange(T)
        embd32 = tensor_f32(self._t["token_embd.weight"])  # [V, E] float32 (a view if F32)
        x = embd32[toks].astype(self.dtype) * self.dtype(c.embd_scale)
        for il in range(c.n_layer):
            p = f"blk.{il}."
            h = rmsnorm(x, self.w(p + "attn_norm.weight"), c.eps)
            q = h @ self.w(p + "attn_q.weight").T
            k = h @ self.w(p + "attn_k.weight").T
            v = h @ self.w(p + "attn_v.weight").T
            for name, arr in (("attn_q", q), ("attn_k", k), ("attn_v", v)):
                b = self.w(p + name + ".bias")
                if b is not None:
                    arr += b
            q, k, v = q.reshape(T, H, D), k.reshape(T, Hkv, D), v.reshape(T, Hkv, D)
            if c.qk_norm:
                q = rmsnorm(q, self.w(p + "attn_q_norm.weight"), c.eps)
                k = rmsnorm(k, self.w(p + "attn_k_norm.weight"), c.eps)
            window = c.window(il)
            base, scale = (c.rope_base_swa, 1.0) if window else (c.rope_base, c.rope_scale)
            q = rope(q, pos, c.n_rot, base, scale, c.rope_neox)
            k = rope(k, pos, c.n_rot, base, scale, c.rope_neox)
            a = attention(q, k, v, c.attn_scale, window).reshape(T, H * D)
            o = a @ self.w(p + "attn_output.weight").T
            if c.post_norms:
                o = rmsnorm(o, self.w(p + "post_attention_norm.weight"), c.eps)
            x = x + o
            h = rmsnorm(x, self.w(p + "ffn_norm.weight"), c.eps)
            g = h @ self.w(p + "ffn_gate.weight").T
            u = h @ self.w(p + "ffn_up.weight").T
            f = (gelu_tanh(g) if c.act == "gelu_tanh" else silu(g)) * u
            o = f @ self.w(p + "ffn_down.weight").T
            if c.post_norms:
                o = rmsnorm(o, self.w(p + "post_ffw_norm.weight"), c.eps)
            x = x + o
            if hidden_out is not None:
                hidden_out.append(x.copy())
        x = rmsnorm(x, self.w("output_norm.weight"), c.eps)
        head = tensor_f32(self._t["output.weight"]) if self.has("output.weight") else embd32
        # A big LM head (Gemma: 262144 x 640) is multiplied in float32: a float64 copy would
        # cost GBs, and a float32 dot over n_embd terms is still ~1e-6 relative.
        hd = np.float32 if head.size > (1 << 24) else self.dtype
        head = head.astype(hd, copy=False)
        out = np.empty((T, c.n_vocab), dtype=np.float32)
        step = 64  # bounded temporaries for big vocabularies
        for r in range(0, T, step):
            out[r : r + step] = x[r : r + step].astype(hd) @ head.T
        return out


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error of a relative to the scale of the reference b."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def compare_logits(a: np.ndarray, b: np.ndarray, chunk: int = 64) -> dict:
    """Argmax agreement and mean KL(P_b || P_a) per position, where b is the reference.
    Works in row chunks so [T, 262144] logits need little temporary memory."""
    assert a.shape == b.shape, (a.shape, b.shape)
    agree, kls = 0, []
    for r in range(0, a.shape[0], chunk):
        la, lb = log_softmax(a[r : r + chunk]), log_softmax(b[r : r + chunk])
        agree += int(np.sum(la.argmax(-1) == lb.argmax(-1)))
        kls.append(np.sum(np.exp(lb) * (lb - la), axis=-1))
    kl = np.concatenate(kls)
    return {
        "n": a.shape[0],
        "argmax_agree": agree / a.shape[0],
        "kl_mean": float(kl.mean()),
        "kl_max": float(kl.max()),
    }
