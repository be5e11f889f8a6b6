"""Structured output and tool calls of `octet serve` through the official `openai` SDK:
response_format json_schema / json_object and tools / tool_choice, with constrained decoding,
so replies always parse and validate (checked with the `jsonschema` package), streamed and
not. The phone-agent case: "set an alarm for 7" with a set_alarm tool gives a valid call.
"""
import json

import pytest

from serve_util import MODEL, octet_server

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

ALARM = {
    "type": "function",
    "function": {
        "name": "set_alarm",
        "description": "Set an alarm on the phone.",
        "parameters": {
            "type": "object",
            "properties": {"hour": {"type": "integer", "description": "0-23"},
                           "minute": {"type": "integer"},
                           "label": {"type": "string"}},
            "required": ["hour", "minute"],
            "additionalProperties": False,
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather forecast for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                         "unit": {"enum": ["c", "f"]}},
                       "required": ["city"]},
    },
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                   "languages": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                   "role": {"enum": ["engineer", "artist", "teacher"]},
                   "email": {"type": ["string", "null"]}},
    "required": ["name", "age", "role"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not MODEL.exists():
        pytest.skip("default model not installed")
    with octet_server(["-m", str(MODEL), "--mode", "int8", "-c", "2048"]) as s:
        yield s


def client(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server['port']}/v1", api_key="x",
                         max_retries=0, timeout=300)


def ask(server, text, **kw):
    kw.setdefault("max_tokens", 96)
    return client(server).chat.completions.create(
        model=MODEL.stem, messages=[{"role": "user", "content": text}], **kw)


def schema_format(schema, name="out"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@pytest.mark.parametrize("temperature,seed", [(0, None), (0.8, 1), (1.5, 2)])
def test_json_schema_reply_validates(server, temperature, seed):
    r = ask(server, "Describe a person as JSON.", response_format=schema_format(PERSON),
            temperature=temperature, seed=seed)
    c = r.choices[0]
    assert c.finish_reason == "stop", c
    jsonschema.validate(json.loads(c.message.content), PERSON)


def test_json_object_and_small_max_tokens_close_in_time(server):
    r = ask(server, "Give me a JSON object about cats.", response_format={"type": "json_object"},
            temperature=1.0, seed=5)
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    # A free string would run on; the budget forces the closing in time.
    note = {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}
    for mt in (6, 12, 24):
        r = ask(server, "Write a long note.", response_format=schema_format(note), max_tokens=mt,
                temperature=1.0, seed=mt)
        c = r.choices[0]
        assert r.usage.completion_tokens <= mt
        assert c.finish_reason == "stop", (mt, c)
        jsonschema.validate(json.loads(c.message.content), note)
    # Too few tokens for any valid document: "length", as for plain text.
    r = ask(server, "Write.", response_format=schema_format(PERSON), max_tokens=2)
    assert r.choices[0].finish_reason == "length"


def test_json_schema_streaming_matches(server):
    kw = dict(response_format=schema_format(PERSON), temperature=0, max_tokens=96)
    full = ask(server, "A person, please.", **kw).choices[0].message.content
    stream = client(server).chat.completions.create(
        model=MODEL.stem, messages=[{"role": "user", "content": "A person, please."}],
        stream=True, **kw)
    parts, finish = [], None
    for ev in stream:
        if ev.choices:
            parts.append(ev.choices[0].delta.content or "")
            finish = ev.choices[0].finish_reason or finish
    assert "".join(parts) == full and finish == "stop"


def test_set_alarm_tool_call(server):
    for choice in ("required", {"type": "function", "function": {"name": "set_alarm"}}):
        r = ask(server, "Set an alarm for 7", tools=[ALARM, WEATHER], tool_choice=choice,
                temperature=0)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", c
        assert c.message.content is None
        (call,) = c.message.tool_calls
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name == "set_alarm"
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, ALARM["function"]["parameters"])
    # Sampled calls validate too, whichever tool the model picks.
    for seed in range(3):
        r = ask(server, "What's the weather in Paris? Or set an alarm.", tools=[ALARM, WEATHER],
                tool_choice="required", temperature=1.0, seed=seed)
        (call,) = r.choices[0].message.tool_calls
        tool = {"set_alarm": ALARM, "get_weather": WEATHER}[call.function.name]
        jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])


def test_tool_call_streaming_deltas(server):
    kw = dict(tools=[ALARM], tool_choice="required", temperature=0, max_tokens=64)
    full = ask(server, "Set an alarm for 7", **kw).choices[0].message.tool_calls[0]
    stream = client(server).chat.completions.create(
        model=MODEL.stem, messages=[{"role": "user", "content": "Set an alarm for 7"}],
        stream=True, **kw)
    name, call_id, args, finish, n_deltas = None, None, "", None, 0
    for ev in stream:
        if not ev.choices:
            continue
        d = ev.choices[0].delta
        finish = ev.choices[0].finish_reason or finish
        for tc in d.tool_calls or []:
            assert tc.index == 0
            n_deltas += 1
            if tc.id:
                call_id, name = tc.id, tc.function.name
            args += tc.function.arguments or ""
    assert finish == "tool_calls" and name == "set_alarm" and call_id.startswith("call_")
    assert args == full.function.arguments and n_deltas >= 2
    jsonschema.validate(json.loads(args), ALARM["function"]["parameters"])


def test_auto_and_none(server):
    # auto: either a text answer or a valid call (the first token decides, see docs/serve.md).
    for seed in range(3):
        r = ask(server, "Set an alarm for 7", tools=[ALARM], tool_choice="auto", temperature=1.0,
                seed=seed, max_tokens=48)
        c = r.choices[0]
        if c.message.tool_calls:
            assert c.finish_reason == "tool_calls"
            jsonschema.validate(json.loads(c.message.tool_calls[0].function.arguments),
                                ALARM["function"]["parameters"])
        else:
            assert isinstance(c.message.content, str) and c.finish_reason in ("stop", "length")
    r = ask(server, "Set an alarm for 7", tools=[ALARM], tool_choice="none", max_tokens=8)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason != "tool_calls"


def test_tool_results_in_messages(server):
    msgs = [
        {"role": "user", "content": "Set an alarm for 7"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "set_alarm", "arguments": '{"hour":7,"minute":0}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'},
    ]
    r = client(server).chat.completions.create(model=MODEL.stem, messages=msgs, tools=[ALARM],
                                               tool_choice="none", max_tokens=16, temperature=0)
    assert r.choices[0].message.content is not None
    assert r.usage.prompt_tokens > 40  # the call and the result are in the prompt


def test_bad_structured_requests(server):
    c = client(server)
    cases = [
        dict(response_format=schema_format({"type": "string", "pattern": "a+"})),
        dict(response_format={"type": "json_schema"}),
        dict(response_format={"type": "xml"}),
        dict(tools=[{"type": "function", "function": {"name": "bad name!"}}]),
        dict(tools=[ALARM], tool_choice={"type": "function", "function": {"name": "nope"}}),
        dict(tool_choice="required"),
        dict(tools=[{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}}}}]),
        dict(messages=[{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]),
    ]
    for kw in cases:
        kw.setdefault("messages", [{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(model=MODEL.stem, max_tokens=4, **kw)
        assert e.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=MODEL.stem, max_tokens=4, messages=[
            {"role": "user", "content": "x"}],
            response_format=schema_format({"type": "integer", "minimum": 1}))
    assert "'minimum'" in str(e.value)
    # /v1/completions takes response_format too, but not tools.
    r = c.completions.create(model=MODEL.stem, prompt="JSON:", max_tokens=24,
                             extra_body={"response_format": {"type": "json_object"}})
    assert isinstance(json.loads(r.choices[0].text), dict)
    # The server is fine afterwards.
    assert ask(server, "hi", max_tokens=2).choices[0].message.content is not None
