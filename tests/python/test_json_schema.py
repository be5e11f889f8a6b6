"""The constrained-decoding JSON-schema acceptor (`octet schema`) against the `jsonschema`
package: whatever the acceptor calls complete must validate (soundness, on random valid and
invalid documents and mutations), compactly written valid instances must be accepted
(completeness on the canonical form the acceptor writes), and every live prefix closed with
the acceptor's shortest completion must validate.
"""
import json
import os
import random
import subprocess
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))

SCHEMAS = [
    {"type": "object",
     "properties": {"hour": {"type": "integer"}, "minute": {"type": "integer"},
                    "label": {"type": "string"}, "enabled": {"type": "boolean"},
                    "days": {"type": "array", "items": {"enum": ["mon", "tue", "sun"]},
                             "maxItems": 3}},
     "required": ["hour", "minute"], "additionalProperties": False},
    {"type": "array", "items": {"type": ["number", "null"]}, "minItems": 1, "maxItems": 4},
    {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
        "x": {"type": "object", "properties": {"y": {"type": "array", "items": {"type": "integer"}}},
              "required": ["y"]}}, "required": ["x"]}]},
    {"oneOf": [{"const": "a"}, {"const": 1}, {"type": "null"}]},
    {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"],
     "additionalProperties": {"type": "string"}},
    {},
    {"type": "object", "properties": {"q": {"const": {"k": [1, "two", None]}}}, "required": ["q"]},
]


def run_acceptor(schema, docs, tmp_path):
    sp = tmp_path / "schema.json"
    sp.write_text(json.dumps(schema))
    bp = tmp_path / "batch.jsonl"
    with open(bp, "w") as f:
        for d in docs:
            if isinstance(d, bytes):
                f.write(json.dumps({"bytes": list(d)}) + "\n")
            else:
                f.write(json.dumps(d) + "\n")
    out = subprocess.run([OCTET, "schema", str(sp), "--batch", str(bp)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    res = [json.loads(l) for l in out.stdout.splitlines()]
    assert len(res) == len(docs)
    return res


def gen(schema, rng, depth=0):
    """A random valid instance (without extra properties)."""
    if schema is True or schema == {}:
        return rng.choice([1, "s", None, True, [1, 2], {"a": 1}, -2.5])
    if "anyOf" in schema or "oneOf" in schema:
        return gen(rng.choice(schema.get("anyOf") or schema["oneOf"]), rng, depth)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    t = schema.get("type")
    if isinstance(t, list):
        t = rng.choice(t)
    if t == "object" or (t is None and "properties" in schema):
        props = schema.get("properties", {})
        req = set(schema.get("required", []))
        out = {}
        for k, s in props.items():
            if k in req or rng.random() < 0.5:
                out[k] = gen(s, rng, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and rng.random() < 0.5:
            out["extra" + str(rng.randint(0, 9))] = gen(extra, rng, depth + 1)
        return out
    if t == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 4)
        return [gen(schema.get("items", {}), rng, depth + 1) for _ in range(rng.randint(lo, hi))]
    if t == "string":
        return rng.choice(["", "plain", 'quo"te', "back\\slash", "new\nline", "caf\u00e9",
                           "\U0001F600", "tab\t", "\u0001"])
    if t == "integer":
        return rng.choice([0, 7, -3, 123456789012])
    if t == "number":
        return rng.choice([0, 1.5, -2.25e-7, 3, 1e20])
    if t == "boolean":
        return rng.choice([True, False])
    if t == "null":
        return None
    raise AssertionError(schema)


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def mutate(text, rng):
    ops = [lambda s: s[:-1], lambda s: s[1:], lambda s: s + "}", lambda s: s.replace(":", ": ", 1),
           lambda s: s.replace("1", "01", 1), lambda s: s.replace('"', "", 1),
           lambda s: s.replace("true", "1", 1), lambda s: s.replace(",", ",,", 1),
           lambda s: s.replace("]", ",]", 1), lambda s: s.replace("{", '{"zz":1,', 1)]
    return rng.choice(ops)(text)


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_acceptor_agrees_with_jsonschema(index, tmp_path):
    schema = SCHEMAS[index]
    validator = jsonschema.Draft202012Validator(schema)
    rng = random.Random(index)
    valid = [compact(gen(schema, rng)) for _ in range(150)]
    others = [compact(gen(s, rng)) for s in SCHEMAS for _ in range(15)]
    mutated = [mutate(v, rng) for v in valid for _ in range(2)]
    raw_bytes = [b'"\xff"', b'"\xc3"', b'{"label":"\xed\xa0\x80"}', b'"\xf4\x90\x80\x80"']
    docs = valid + others + mutated + raw_bytes
    res = run_acceptor(schema, docs, tmp_path)
    for d, r in zip(docs, res):
        if isinstance(d, bytes):
            assert not r["complete"], d
            continue
        try:
            value = json.loads(d)
            ok = validator.is_valid(value)
        except ValueError:
            ok = False
        if r["complete"]:
            assert ok, f"acceptor accepted an invalid document: {d!r}"
        if r["alive"]:
            closed = d + r["completion"]
            assert validator.is_valid(json.loads(closed)), f"{d!r} + {r['completion']!r}"
    for d, r in zip(valid, res):
        assert r["complete"], f"acceptor refused a valid canonical document: {d!r}"
    # Every prefix of a valid document is alive, and closing it gives a valid document.
    prefixes = sorted({v[:k] for v in valid[:20] for k in range(len(v))})
    for p, r in zip(prefixes, run_acceptor(schema, prefixes, tmp_path)):
        assert r["alive"], p
        assert validator.is_valid(json.loads(p + r["completion"])), (p, r["completion"])


def test_unsupported_keywords_are_named(tmp_path):
    for schema, word in [({"type": "string", "pattern": "x"}, "pattern"),
                         ({"type": "object", "properties": {"a": {"minimum": 1}}}, "minimum"),
                         ({"$ref": "#/x"}, "$ref")]:
        sp = tmp_path / "s.json"
        sp.write_text(json.dumps(schema))
        out = subprocess.run([OCTET, "schema", str(sp)], capture_output=True, text=True)
        assert out.returncode == 1 and f"'{word}'" in out.stdout, out.stdout
