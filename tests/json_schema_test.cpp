// The JSON-schema acceptor behind constrained decoding (include/octet/json_schema.h):
// hand-picked valid/invalid documents, every prefix of a valid document stays alive, and a
// randomised check that whatever a random writer produces through the acceptor (plus the
// acceptor's own shortest completion) parses and validates under an independent validator
// written here. tests/python/test_json_schema.py compares against the `jsonschema` package.
#include <gtest/gtest.h>

#include <random>

#include "../src/serve/constrained.h"  // utf8_complete_prefix (server-internal)
#include "octet/json_schema.h"

using namespace octet::serve;
using json = nlohmann::json;

namespace {

std::shared_ptr<const JsonSchema> compile(const char* text) {
  auto r = JsonSchema::compile(json::parse(text));
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : nullptr;
}

bool accepts_doc(const std::shared_ptr<const JsonSchema>& s, const std::string& text) {
  JsonAcceptor a(s);
  return a.feed(text) && a.complete();
}

// A small, independent validator for the supported keywords (what the acceptor must never
// contradict). additionalProperties absent means "anything" here, as in JSON Schema.
bool valid(const json& v, const json& s) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("anyOf")) {
    for (const auto& a : s["anyOf"]) if (valid(v, a)) return true;
    return false;
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& a : s["oneOf"]) n += valid(v, a);
    return n == 1;
  }
  if (s.contains("const") && v != s["const"]) return false;
  if (s.contains("enum")) {
    bool hit = false;
    for (const auto& e : s["enum"]) hit |= (e == v);
    if (!hit) return false;
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_string()) types.push_back(s["type"]);
    else for (const auto& t : s["type"]) types.push_back(t);
    bool ok = false;
    for (const auto& t : types)
      ok |= (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
            (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
            (t == "integer" && v.is_number_integer()) || (t == "boolean" && v.is_boolean()) ||
            (t == "null" && v.is_null());
    if (!ok) return false;
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"]) if (!v.contains(r.get<std::string>())) return false;
    for (const auto& [k, x] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (!valid(x, s["properties"][k])) return false;
      } else if (s.contains("additionalProperties") && !valid(x, s["additionalProperties"])) {
        return false;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    if (s.contains("items"))
      for (const auto& x : v) if (!valid(x, s["items"])) return false;
  }
  return true;
}

const char* kAlarm = R"({"type":"object","properties":{
  "hour":{"type":"integer"},"minute":{"type":"integer"},
  "label":{"type":"string"},"days":{"type":"array","items":{"enum":["mon","tue","wed"]},"maxItems":3},
  "repeat":{"type":"boolean"},"volume":{"type":["number","null"]}},
  "required":["hour","minute"],"additionalProperties":false})";

}  // namespace

TEST(JsonSchema, AcceptsValidDocuments) {
  auto s = compile(kAlarm);
  for (const char* t : {
           R"({"hour":7,"minute":0})", R"({"minute":30,"hour":-1})",
           R"({"hour":7,"minute":0,"label":"wake up \"now\" \u00e9 \n","repeat":true})",
           R"({"hour":7,"minute":0,"days":[]})", R"({"hour":7,"minute":0,"days":["mon","wed"]})",
           R"({"hour":7,"minute":0,"volume":null})", R"({"hour":7,"minute":0,"volume":-0.5e+3})",
           "{\"hour\":7,\"minute\":0,\"label\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}"})
    EXPECT_TRUE(accepts_doc(s, t)) << t;
}

TEST(JsonSchema, RejectsInvalidDocuments) {
  auto s = compile(kAlarm);
  for (const char* t : {
           R"({"hour":7})",                           // missing required
           R"({"hour":7,"minute":0,"extra":1})",      // additionalProperties false
           R"({"hour":7.5,"minute":0})",              // integer
           R"({"hour":07,"minute":0})",               // leading zero
           R"({"hour":7,"hour":8,"minute":0})",       // duplicate key
           R"({"hour":7,"minute":0,"days":["fri"]})", // enum
           R"({"hour":7,"minute":0,"days":["mon","tue","wed","mon"]})",  // maxItems
           R"({"hour":7,"minute":0,"repeat":1})", R"({"hour":"7","minute":0})",
           R"({"hour":7,"minute":0,"label":"\ud800"})",  // lone surrogate
           R"({"hour":7,"minute":0,"label":"a\qb"})", R"({"hour":7,"minute":0,"volume":1.})",
           R"({"hour":7,"minute":0,"volume":-})", R"({"hour":7,"minute":0,"volume":.5})",
           "{\"hour\":7,\"minute\":0,\"label\":\"\x01\"}",      // raw control character
           "{\"hour\":7,\"minute\":0,\"label\":\"\xC0\xAF\"}",  // overlong UTF-8
           "{\"hour\":7,\"minute\":0,\"label\":\"\xED\xA0\x80\"}",  // UTF-8 surrogate
           R"({"hour":7,"minute":0} )", R"( {"hour":7,"minute":0})",  // no whitespace
           R"({"hour":7,"minute":0}{})", R"([])", R"("x")"})
    EXPECT_FALSE(accepts_doc(s, t)) << t;
}

TEST(JsonSchema, PrefixesOfValidDocumentsStayAlive) {
  auto s = compile(kAlarm);
  const std::string t = R"({"hour":12,"minute":5,"label":"x\\y","days":["tue"],"volume":1e2})";
  JsonAcceptor a(s);
  for (size_t i = 0; i < t.size(); ++i) {
    ASSERT_TRUE(a.feed_byte(static_cast<uint8_t>(t[i]))) << "at " << i << ": " << t.substr(0, i + 1);
    EXPECT_EQ(a.complete(), i + 1 == t.size());
  }
  EXPECT_FALSE(a.can_continue());
  EXPECT_EQ(a.min_completion(), "");
}

TEST(JsonSchema, AnyValueAndJsonObject) {
  auto any = compile("{}");
  for (const char* t : {"1", "-2.5e3", "true", "null", "\"s\"", "[1,[2,{}]]", R"({"a":{"b":[]}})"})
    EXPECT_TRUE(accepts_doc(any, t)) << t;
  for (const char* t : {"tru", "[1,]", R"({"a"})", "01", R"({"a":1,})"})
    EXPECT_FALSE(accepts_doc(any, t)) << t;
  auto obj = JsonSchema::any_object();
  EXPECT_TRUE(accepts_doc(obj, R"({"x":[1,"2",null]})"));
  EXPECT_FALSE(accepts_doc(obj, "[1]"));
  // A top-level number is complete while digits may still follow.
  JsonAcceptor a(any);
  ASSERT_TRUE(a.feed("12"));
  EXPECT_TRUE(a.complete());
  EXPECT_TRUE(a.can_continue());
}

TEST(JsonSchema, AnyOfOneOfEnumConst) {
  auto s = compile(R"({"anyOf":[{"type":"object","properties":{"k":{"const":"a"},"n":{"type":"integer"}},
      "required":["k","n"]},{"type":"object","properties":{"k":{"const":"b"},"s":{"type":"string"}},
      "required":["k","s"]}]})");
  EXPECT_TRUE(accepts_doc(s, R"({"k":"a","n":1})"));
  EXPECT_TRUE(accepts_doc(s, R"({"k":"b","s":"x"})"));
  EXPECT_FALSE(accepts_doc(s, R"({"k":"a","s":"x"})"));
  EXPECT_FALSE(accepts_doc(s, R"({"k":"c","n":1})"));
  auto e = compile(R"({"enum":[1,12,"x",null,{"b":1,"a":[true]}]})");
  for (const char* t : {"1", "12", "\"x\"", "null", R"({"a":[true],"b":1})"})
    EXPECT_TRUE(accepts_doc(e, t)) << t;
  for (const char* t : {"2", "123", "\"y\"", R"({"b":1,"a":[true]})"})
    EXPECT_FALSE(accepts_doc(e, t)) << t;
  auto o = compile(R"({"oneOf":[{"type":"string"},{"type":"integer"}]})");
  EXPECT_TRUE(accepts_doc(o, "\"q\""));
  EXPECT_TRUE(accepts_doc(o, "-3"));
  EXPECT_FALSE(accepts_doc(o, "1.5"));
}

TEST(JsonSchema, AdditionalPropertiesAndKeys) {
  auto s = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],
      "additionalProperties":{"type":"string"}})");
  EXPECT_TRUE(accepts_doc(s, R"({"a":1,"b":"x","c\"d":""})"));
  EXPECT_FALSE(accepts_doc(s, R"({"a":1,"b":2})"));
  EXPECT_FALSE(accepts_doc(s, R"({"a":"s"})"));     // declared property keeps its schema
  EXPECT_FALSE(accepts_doc(s, R"({"a":1,"a":2})"));  // duplicate
  EXPECT_FALSE(accepts_doc(s, R"({"\u0061":1})"));   // one spelling per name
  auto r = compile(R"({"type":"object","required":["x"]})");  // required without properties
  EXPECT_TRUE(accepts_doc(r, R"({"x":[1]})"));
  EXPECT_FALSE(accepts_doc(r, "{}"));
}

TEST(JsonSchema, UnsupportedKeywordsAreErrors) {
  for (const char* t : {R"({"type":"string","pattern":"a+"})", R"({"type":"integer","minimum":0})",
                        R"({"$ref":"#/$defs/x"})", R"({"type":"array","items":[{}]})",
                        R"({"type":"object","properties":{"a":{"type":"str"}}})", "false",
                        R"({"oneOf":[{"type":"number"},{"type":"integer"}]})",
                        R"({"type":"object","required":["a"],"additionalProperties":false})",
                        R"({"enum":[]})", R"({"type":"array","minItems":3,"maxItems":2})"}) {
    auto r = JsonSchema::compile(json::parse(t));
    EXPECT_FALSE(r.ok()) << t;
  }
  auto r = JsonSchema::compile(json::parse(R"({"type":"object","properties":{"a":{"format":"x"}}})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("'format'"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("properties.a"), std::string::npos) << r.error();
}

TEST(JsonSchema, ToolCallsNameFirst) {
  auto r = JsonSchema::tool_calls(
      {{"set_alarm", json::parse(R"({"type":"object","properties":{"hour":{"type":"integer"}},
                                     "required":["hour"]})")},
       {"get_time", nullptr}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(accepts_doc(*r, R"({"name":"set_alarm","arguments":{"hour":7}})"));
  EXPECT_TRUE(accepts_doc(*r, R"({"name":"get_time","arguments":{}})"));
  EXPECT_FALSE(accepts_doc(*r, R"({"arguments":{"hour":7},"name":"set_alarm"})"));
  EXPECT_FALSE(accepts_doc(*r, R"({"name":"get_time","arguments":{"hour":7}})"));
  EXPECT_FALSE(accepts_doc(*r, R"({"name":"nope","arguments":{}})"));
  JsonAcceptor a(*r);
  ASSERT_TRUE(a.feed(R"({"name":"set_al)"));
  EXPECT_EQ(a.min_completion(), R"(arm","arguments":{"hour":0}})");
}

// Random writers: at each step pick a random byte the acceptor takes (from an alphabet that
// includes structure, digits, escapes and UTF-8), stop at a random point and close with
// min_completion(). The result must be complete, parse, and validate.
TEST(JsonSchema, RandomWritersAlwaysProduceValidDocuments) {
  const char* schemas[] = {
      kAlarm, "{}", R"({"type":"array","items":{"type":["integer","string"]},"minItems":2})",
      R"({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"array",
          "items":{"enum":["x","yy",3]}}},"required":["b"]}},"required":["a"],
          "additionalProperties":{"type":"boolean"}})",
      R"({"anyOf":[{"type":"null"},{"type":"object","properties":{"q":{"const":{"z":[1]}}},"required":["q"]}]})",
      R"({"type":"object","properties":{"s":{"type":"string"},"n":{"type":"number"}},"required":["s","n"]})",
  };
  std::string alphabet = "{}[],:\"\\/ -+.eE0123456789ADF_";
  for (char c = 'a'; c <= 'z'; ++c) alphabet += c;
  std::vector<std::string> extra = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF"};
  std::mt19937 rng(1234);
  for (const char* st : schemas) {
    const json sj = json::parse(st);
    auto s = compile(st);
    ASSERT_TRUE(s);
    for (int trial = 0; trial < 300; ++trial) {
      JsonAcceptor a(s);
      std::string text;
      const int len = static_cast<int>(rng() % 60);
      for (int i = 0; i < len && a.can_continue(); ++i) {
        std::vector<std::string> ok;
        for (char c : alphabet)
          if (a.accepts(std::string(1, c))) ok.push_back(std::string(1, c));
        for (const auto& e : extra)
          if (a.accepts(e)) ok.push_back(e);
        ASSERT_FALSE(ok.empty()) << "dead end after " << text;
        const std::string& pick = ok[rng() % ok.size()];
        ASSERT_TRUE(a.feed(pick));
        text += pick;
      }
      const std::string tail = a.min_completion();
      ASSERT_TRUE(a.feed(tail) || tail.empty()) << text << " + " << tail;
      text += tail;
      ASSERT_TRUE(a.complete()) << text;
      json v;
      ASSERT_NO_THROW(v = json::parse(text)) << text;
      EXPECT_TRUE(valid(v, sj)) << st << "\n" << text;
    }
  }
}

// Streaming a constrained reply hands out whole UTF-8 characters only.
TEST(JsonSchema, Utf8CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3\xA9"), 4u);
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x82"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x82\xAC"), 4u);
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98\x80x"), 5u);
}
