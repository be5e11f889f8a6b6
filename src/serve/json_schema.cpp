// JSON-schema subset -> byte-level acceptor (include/octet/json_schema.h).
//
// The acceptor is a set of parse stacks, like an NFA over pushdown states: anyOf, enum and
// "any value" fork one stack per alternative when their value starts, and a byte keeps
// the stacks that can take it. Each stack is a list of frames (object, array, string,
// number, literal), one per open value. Every state the acceptor admits can be completed
// (min_completion() builds the shortest completion), so a generator that only emits
// accepted bytes never paints itself into a corner.
#include "octet/json_schema.h"

#include <algorithm>
#include <bit>
#include <fmt/format.h>

namespace octet::serve {

using json = nlohmann::json;

namespace {

bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
bool is_hex(uint8_t b) {
  return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

// Lexes one byte of a JSON string body. 0: rejected, 1: part of the string, 2: closing quote.
// key_mode: property names allow only the escapes nlohmann's dump() writes (\" \\ \b \f \n
// \r \t), so a name has exactly one spelling and can be compared as text.
int lex_byte(JsonAcceptor::StrLex& l, uint8_t b, bool key_mode) {
  if (l.utf8) {
    if (b < l.lo || b > l.hi) return 0;
    --l.utf8;
    l.lo = 0x80, l.hi = 0xBF;
    return 1;
  }
  if (l.esc == 1) {
    switch (b) {
      case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
        l.esc = 0;
        return 1;
      case '/':
        if (key_mode) return 0;
        l.esc = 0;
        return 1;
      case 'u':
        if (key_mode) return 0;
        l.esc = 2;
        return 1;
      default:
        return 0;
    }
  }
  if (l.esc >= 2) {
    if (!is_hex(b)) return 0;
    if (l.surrogate_guard) {
      if (b > '7') return 0;  // \uD800-\uDFFF: lone surrogates are invalid JSON text
      l.surrogate_guard = false;
    }
    if (l.esc == 2 && (b == 'd' || b == 'D')) l.surrogate_guard = true;
    l.esc = static_cast<uint8_t>(l.esc == 5 ? 0 : l.esc + 1);
    return 1;
  }
  if (b == '"') return 2;
  if (b == '\\') {
    l.esc = 1;
    return 1;
  }
  if (b < 0x20) return 0;
  if (b < 0x80) return 1;
  // UTF-8 lead bytes with the ranges of their first continuation byte (RFC 3629: no
  // overlong forms, no surrogates, nothing above U+10FFFF).
  l.lo = 0x80, l.hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) l.utf8 = 1;
  else if (b == 0xE0) l.utf8 = 2, l.lo = 0xA0;
  else if (b == 0xED) l.utf8 = 2, l.hi = 0x9F;
  else if (b >= 0xE1 && b <= 0xEF) l.utf8 = 2;
  else if (b == 0xF0) l.utf8 = 3, l.lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) l.utf8 = 3;
  else if (b == 0xF4) l.utf8 = 3, l.hi = 0x8F;
  else return 0;
  return 1;
}

// The bytes that finish a pending escape or UTF-8 character.
std::string lex_finish(const JsonAcceptor::StrLex& l) {
  std::string s;
  if (l.utf8) {
    s += static_cast<char>(l.lo);
    for (int i = 1; i < l.utf8; ++i) s += static_cast<char>(0x80);
  } else if (l.esc == 1) {
    s += 'n';
  } else if (l.esc >= 2) {
    s.append(static_cast<size_t>(6 - l.esc), '0');
  }
  return s;
}

// Number states: 0 start, 1 after '-', 2 leading zero, 3 integer digits, 4 after '.',
// 5 fraction digits, 6 after 'e', 7 after the exponent sign, 8 exponent digits.
bool num_terminal(uint8_t st) { return st == 2 || st == 3 || st == 5 || st == 8; }
constexpr int kMaxNumberChars = 24;  // keeps a looping model from writing endless digits

const std::string& shortest(const std::vector<std::string>& v) {
  return *std::min_element(v.begin(), v.end(),
                           [](const auto& a, const auto& b) { return a.size() < b.size(); });
}

// JSON types a node can produce, as bits: object 1, array 2, string 4, number 8, bool 16,
// null 32.
int type_bits_of_literal(const std::string& lit) {
  switch (lit[0]) {
    case '{': return 1;
    case '[': return 2;
    case '"': return 4;
    case 't': case 'f': return 16;
    case 'n': return 32;
    default: return 8;
  }
}

SchemaNode mk(SchemaNode::Kind k) {
  SchemaNode n;
  n.kind = k;
  return n;
}

}  // namespace

class SchemaCompiler {
 public:
  explicit SchemaCompiler(bool internal) : s_(std::make_shared<JsonSchema>()), internal_(internal) {}

  Expected<std::shared_ptr<const JsonSchema>> run(const json& j) {
    auto r = node(j, "schema");
    if (!r.ok()) return r.status();
    s_->root_ = *r;
    finish();
    return std::shared_ptr<const JsonSchema>(s_);
  }
  std::shared_ptr<JsonSchema> run_any_object() {
    s_->root_ = any_object();
    finish();
    return s_;
  }

 private:
  int add(SchemaNode n) {
    s_->nodes_.push_back(std::move(n));
    return static_cast<int>(s_->nodes_.size()) - 1;
  }
  int any() {
    if (any_ >= 0) return any_;
    any_ = add(mk(SchemaNode::kAnyOf));
    SchemaNode obj = mk(SchemaNode::kObject);
    obj.additional = any_;
    SchemaNode arr = mk(SchemaNode::kArray);
    arr.items = any_;
    SchemaNode lits = mk(SchemaNode::kLiterals);
    lits.literals = {"true", "false", "null"};
    std::vector<int> opts = {add(obj), add(arr), add(mk(SchemaNode::kString)),
                             add(mk(SchemaNode::kNumber)), add(lits)};
    s_->nodes_[static_cast<size_t>(any_)].options = opts;
    any_object_ = opts[0];
    return any_;
  }
  int any_object() {
    any();
    return any_object_;
  }

  int type_bits(int n) const {
    const SchemaNode& x = s_->nodes_[static_cast<size_t>(n)];
    switch (x.kind) {
      case SchemaNode::kObject: return 1;
      case SchemaNode::kArray: return 2;
      case SchemaNode::kString: return 4;
      case SchemaNode::kNumber: case SchemaNode::kInteger: return 8;
      case SchemaNode::kLiterals: {
        int b = 0;
        for (const auto& l : x.literals) b |= type_bits_of_literal(l);
        return b;
      }
      case SchemaNode::kAnyOf: {
        int b = 0;
        for (int o : x.options) b |= type_bits(o);
        return b;
      }
    }
    return 63;
  }

  Expected<int> node(const json& j, const std::string& path) {
    if (j.is_boolean()) {
      if (j.get<bool>()) return any();
      return Status::Error(path + " is the schema 'false', which no value satisfies");
    }
    if (!j.is_object()) return Status::Error(path + " must be a JSON object (a schema)");
    static const char* kKnown[] = {"type", "properties", "required", "additionalProperties",
                                   "items", "minItems", "maxItems", "enum", "const", "anyOf",
                                   "oneOf", "title", "description", "default", "examples",
                                   "$schema", "$id", "$comment"};
    for (const auto& [k, v] : j.items()) {
      if (std::find(std::begin(kKnown), std::end(kKnown), k) != std::end(kKnown)) continue;
      if (internal_ && k == "x-octet-ordered") continue;
      return Status::Error(fmt::format(
          "unsupported JSON Schema keyword '{}' at {} (constrained decoding supports type, "
          "properties, required, additionalProperties, items, minItems, maxItems, enum, const, "
          "anyOf, oneOf and annotations)", k, path));
    }
    auto has = [&](const char* k) { return j.contains(k); };

    // anyOf / oneOf: alternatives, nothing else beside them but annotations.
    for (const char* kw : {"anyOf", "oneOf"}) {
      if (!has(kw)) continue;
      for (const char* other : {"type", "properties", "required", "additionalProperties", "items",
                                "minItems", "maxItems", "enum", "const",
                                kw[0] == 'a' ? "oneOf" : "anyOf"})
        if (has(other))
          return Status::Error(fmt::format("{}: '{}' together with '{}' is not supported; put "
                                           "the keywords inside each alternative", path, kw, other));
      const json& alts = j[kw];
      if (!alts.is_array() || alts.empty())
        return Status::Error(fmt::format("{}.{} must be a non-empty array", path, kw));
      SchemaNode n = mk(SchemaNode::kAnyOf);
      for (size_t i = 0; i < alts.size(); ++i) {
        auto r = node(alts[i], fmt::format("{}.{}[{}]", path, kw, i));
        if (!r.ok()) return r.status();
        n.options.push_back(*r);
      }
      if (kw[0] == 'o') {
        // oneOf needs exactly one alternative to match; the acceptor may write anything an
        // alternative allows, so the alternatives must not overlap.
        for (size_t a = 0; a < n.options.size(); ++a)
          for (size_t b = a + 1; b < n.options.size(); ++b) {
            const SchemaNode& x = s_->nodes_[static_cast<size_t>(n.options[a])];
            const SchemaNode& y = s_->nodes_[static_cast<size_t>(n.options[b])];
            bool overlap;
            if (x.kind == SchemaNode::kLiterals && y.kind == SchemaNode::kLiterals) {
              overlap = false;
              for (const auto& l : x.literals)
                if (std::find(y.literals.begin(), y.literals.end(), l) != y.literals.end())
                  overlap = true;
            } else {
              overlap = (type_bits(n.options[a]) & type_bits(n.options[b])) != 0;
            }
            if (overlap)
              return Status::Error(fmt::format(
                  "{}.oneOf[{}] and [{}] can match the same value; constrained decoding needs "
                  "oneOf alternatives that differ in type or const/enum values (or use anyOf)",
                  path, a, b));
          }
      }
      return add(std::move(n));
    }

    // Types: a list is an anyOf of the single types.
    std::vector<std::string> types;
    if (has("type")) {
      const json& t = j["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string()) return Status::Error(path + ".type must hold strings");
          types.push_back(x.get<std::string>());
        }
      } else {
        return Status::Error(path + ".type must be a string or a non-empty array of strings");
      }
      for (const auto& t1 : types)
        if (t1 != "object" && t1 != "array" && t1 != "string" && t1 != "number" &&
            t1 != "integer" && t1 != "boolean" && t1 != "null")
          return Status::Error(fmt::format("{}.type '{}' is not a JSON Schema type", path, t1));
    }

    // enum / const: the canonical texts of the allowed values (of the allowed types).
    if (has("enum") || has("const")) {
      if (has("enum") && has("const"))
        return Status::Error(path + ": use either 'enum' or 'const', not both");
      for (const char* other : {"properties", "required", "additionalProperties", "items",
                                "minItems", "maxItems"})
        if (has(other))
          return Status::Error(fmt::format("{}: '{}' beside enum/const is not supported", path,
                                           other));
      std::vector<json> vals;
      if (has("const")) {
        vals.push_back(j["const"]);
      } else {
        if (!j["enum"].is_array() || j["enum"].empty())
          return Status::Error(path + ".enum must be a non-empty array");
        for (const auto& v : j["enum"]) vals.push_back(v);
      }
      SchemaNode n = mk(SchemaNode::kLiterals);
      for (const auto& v : vals) {
        bool ok = types.empty();
        for (const auto& t : types) {
          if ((t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
              (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
              (t == "integer" && v.is_number_integer()) || (t == "boolean" && v.is_boolean()) ||
              (t == "null" && v.is_null()))
            ok = true;
          // 2.0 is an integer to JSON Schema; write it as 2.
          if (t == "integer" && v.is_number_float() && v.get<double>() == static_cast<double>(
                                                                  static_cast<int64_t>(v.get<double>())))
            ok = true;
        }
        if (!ok) continue;
        std::string text = v.dump(-1, ' ', false, json::error_handler_t::strict);
        if (v.is_number_float() && !types.empty() &&
            std::find(types.begin(), types.end(), "integer") != types.end() &&
            std::find(types.begin(), types.end(), "number") == types.end())
          text = std::to_string(static_cast<int64_t>(v.get<double>()));
        if (std::find(n.literals.begin(), n.literals.end(), text) == n.literals.end())
          n.literals.push_back(text);
      }
      if (n.literals.empty())
        return Status::Error(path + ": no enum/const value has the allowed type");
      return add(std::move(n));
    }

    if (types.size() > 1) {
      SchemaNode n = mk(SchemaNode::kAnyOf);
      for (const auto& t : types) {
        json one = j;
        one["type"] = t;
        auto r = node(one, path);
        if (!r.ok()) return r.status();
        n.options.push_back(*r);
      }
      return add(std::move(n));
    }
    std::string type = types.empty() ? "" : types[0];
    if (type.empty()) {
      if (has("properties") || has("required") || has("additionalProperties")) type = "object";
      else if (has("items") || has("minItems") || has("maxItems")) type = "array";
      else return any();
    }

    if (type == "string") return add(mk(SchemaNode::kString));
    if (type == "number") return add(mk(SchemaNode::kNumber));
    if (type == "integer") return add(mk(SchemaNode::kInteger));
    if (type == "boolean") {
      SchemaNode n = mk(SchemaNode::kLiterals);
      n.literals = {"true", "false"};
      return add(std::move(n));
    }
    if (type == "null") {
      SchemaNode n = mk(SchemaNode::kLiterals);
      n.literals = {"null"};
      return add(std::move(n));
    }
    if (type == "array") {
      SchemaNode n = mk(SchemaNode::kArray);
      if (has("items")) {
        if (j["items"].is_array())
          return Status::Error(path + ".items as a list (tuple validation) is not supported");
        auto r = node(j["items"], path + ".items");
        if (!r.ok()) return r.status();
        n.items = *r;
      } else {
        n.items = any();
      }
      for (const char* k : {"minItems", "maxItems"}) {
        if (!has(k)) continue;
        if (!j[k].is_number_unsigned() || j[k].get<uint64_t>() > 1000000)
          return Status::Error(fmt::format("{}.{} must be an integer in [0, 1000000]", path, k));
        (k[1] == 'i' ? n.min_items : n.max_items) = j[k].get<int64_t>();
      }
      if (n.max_items >= 0 && n.min_items > n.max_items)
        return Status::Error(path + ": minItems is above maxItems");
      return add(std::move(n));
    }
    // object
    SchemaNode n = mk(SchemaNode::kObject);
    n.ordered = internal_ && j.contains("x-octet-ordered");
    int extra = -1;
    bool extra_explicit_false = false;
    if (has("additionalProperties")) {
      const json& a = j["additionalProperties"];
      if (a.is_boolean()) {
        if (a.get<bool>()) extra = any();
        else extra_explicit_false = true;
      } else {
        auto r = node(a, path + ".additionalProperties");
        if (!r.ok()) return r.status();
        extra = *r;
      }
    }
    n.additional = extra;
    auto add_prop = [&](const std::string& name, int child) -> Status {
      for (unsigned char c : name)
        if (c < 0x20)
          return Status::Error(fmt::format("{}: property names with control characters are not "
                                           "supported", path));
      if (n.prop_names.size() >= 64)
        return Status::Error(path + ": more than 64 properties are not supported");
      const std::string q = json(name).dump(-1, ' ', false, json::error_handler_t::strict);
      n.prop_names.push_back(q.substr(1, q.size() - 2));
      n.prop_nodes.push_back(child);
      return Status::Ok();
    };
    std::vector<std::string> raw_names;
    if (has("properties")) {
      if (!j["properties"].is_object())
        return Status::Error(path + ".properties must be an object");
      for (const auto& [name, sub] : j["properties"].items()) {
        auto r = node(sub, path + ".properties." + name);
        if (!r.ok()) return r.status();
        OCTET_RETURN_IF_ERROR(add_prop(name, *r));
        raw_names.push_back(name);
      }
    }
    if (has("required")) {
      if (!j["required"].is_array()) return Status::Error(path + ".required must be an array");
      for (const auto& r : j["required"]) {
        if (!r.is_string()) return Status::Error(path + ".required must hold strings");
        const std::string name = r.get<std::string>();
        auto it = std::find(raw_names.begin(), raw_names.end(), name);
        size_t i = static_cast<size_t>(it - raw_names.begin());
        if (it == raw_names.end()) {
          // A required name without a property schema is an extra property.
          if (extra_explicit_false)
            return Status::Error(fmt::format("{}: required property '{}' is not in properties "
                                             "and additionalProperties is false", path, name));
          OCTET_RETURN_IF_ERROR(add_prop(name, extra >= 0 ? extra : any()));
          raw_names.push_back(name);
        }
        n.required |= uint64_t{1} << i;
      }
    }
    if (n.ordered) {
      // JSON objects do not keep key order: the order comes as a list of names.
      const json& order = j["x-octet-ordered"];
      std::vector<std::string> names;
      std::vector<int> nodes;
      for (const auto& name : order) {
        auto it = std::find(raw_names.begin(), raw_names.end(), name.get<std::string>());
        if (it == raw_names.end()) return Status::Error(path + ": bad property order");
        const size_t i = static_cast<size_t>(it - raw_names.begin());
        names.push_back(n.prop_names[i]);
        nodes.push_back(n.prop_nodes[i]);
      }
      if (names.size() != n.prop_names.size()) return Status::Error(path + ": bad property order");
      n.prop_names = std::move(names);
      n.prop_nodes = std::move(nodes);
    }
    if (n.ordered) n.required = n.prop_names.size() == 64 ? ~uint64_t{0}
                                                           : (uint64_t{1} << n.prop_names.size()) - 1;
    return add(std::move(n));
  }

  // Shortest documents, children first.
  void finish() {
    const size_t N = s_->nodes_.size();
    s_->min_text_.assign(N, "");
    std::vector<int> state(N, 0);  // 0 todo, 1 in progress, 2 done
    for (size_t i = 0; i < N; ++i) min_text(static_cast<int>(i), state);
  }
  const std::string& min_text(int i, std::vector<int>& state) {
    auto& out = s_->min_text_[static_cast<size_t>(i)];
    if (state[static_cast<size_t>(i)] != 0) return out;  // done (cycles only via "any")
    state[static_cast<size_t>(i)] = 1;
    const SchemaNode& n = s_->nodes_[static_cast<size_t>(i)];
    switch (n.kind) {
      case SchemaNode::kObject: {
        std::string t = "{";
        bool first = true;
        for (size_t p = 0; p < n.prop_names.size(); ++p)
          if (n.required >> p & 1) {
            if (!first) t += ',';
            first = false;
            t += "\"" + n.prop_names[p] + "\":" + min_text(n.prop_nodes[p], state);
          }
        out = t + "}";
        break;
      }
      case SchemaNode::kArray: {
        std::string t = "[";
        for (int64_t k = 0; k < n.min_items; ++k)
          t += (k ? "," : "") + min_text(n.items, state);
        out = t + "]";
        break;
      }
      case SchemaNode::kString: out = "\"\""; break;
      case SchemaNode::kNumber: case SchemaNode::kInteger: out = "0"; break;
      case SchemaNode::kLiterals: out = shortest(n.literals); break;
      case SchemaNode::kAnyOf: {
        std::string best;
        for (int o : n.options) {
          const std::string& t = min_text(o, state);
          if (state[static_cast<size_t>(o)] == 2 && (best.empty() || t.size() < best.size()))
            best = t;
        }
        out = best;
        break;
      }
    }
    state[static_cast<size_t>(i)] = 2;
    return out;
  }

  std::shared_ptr<JsonSchema> s_;
  bool internal_;
  int any_ = -1, any_object_ = -1;
};

Expected<std::shared_ptr<const JsonSchema>> JsonSchema::compile(const json& schema) {
  return SchemaCompiler(false).run(schema);
}

std::shared_ptr<const JsonSchema> JsonSchema::any_object() {
  return SchemaCompiler(false).run_any_object();
}

Expected<std::shared_ptr<const JsonSchema>> JsonSchema::tool_calls(
    const std::vector<std::pair<std::string, json>>& tools) {
  if (tools.empty()) return Status::Error("no tools to call");
  json alts = json::array();
  for (const auto& [name, params] : tools) {
    json p = params.is_null() ? json{{"type", "object"}, {"properties", json::object()}} : params;
    alts.push_back({{"type", "object"},
                    {"x-octet-ordered", {"name", "arguments"}},
                    {"properties", {{"name", {{"const", name}}}, {"arguments", p}}},
                    {"required", {"name", "arguments"}}});
  }
  return SchemaCompiler(true).run(json{{"anyOf", alts}});
}

// ---------------------------------------------------------------------------------------
// Acceptor.

JsonAcceptor::JsonAcceptor(std::shared_ptr<const JsonSchema> schema) : schema_(std::move(schema)) {
  push_value(Stack{}, schema_->root(), stacks_);
}

void JsonAcceptor::push_value(Stack s, int node, std::vector<Stack>& out) const {
  const SchemaNode& n = schema_->nodes()[static_cast<size_t>(node)];
  if (n.kind == SchemaNode::kAnyOf) {
    for (int o : n.options) push_value(s, o, out);
    return;
  }
  if (n.kind == SchemaNode::kLiterals) {
    for (size_t i = 0; i < n.literals.size(); ++i) {
      Stack t = s;
      Frame f;
      f.node = node;
      f.lit = static_cast<int>(i);
      t.push_back(std::move(f));
      out.push_back(std::move(t));
    }
    return;
  }
  Frame f;
  f.node = node;
  s.push_back(std::move(f));
  out.push_back(std::move(s));
}

void JsonAcceptor::value_done(Stack& s) const {
  s.pop_back();
  if (s.empty()) return;
  Frame& p = s.back();
  const SchemaNode& n = schema_->nodes()[static_cast<size_t>(p.node)];
  if (n.kind == SchemaNode::kObject) p.st = 5;
  else if (n.kind == SchemaNode::kArray) p.st = 3;
}

namespace {
// May another property follow in this object?
bool key_possible(const SchemaNode& n, uint64_t seen) {
  if (n.additional >= 0) return true;
  return static_cast<size_t>(std::popcount(seen)) < n.prop_names.size();
}
// Property indexes a key may still name (additionalProperties false).
template <class F>
void for_candidates(const SchemaNode& n, uint64_t seen, F&& f) {
  for (size_t i = 0; i < n.prop_names.size(); ++i) {
    if (seen >> i & 1) continue;
    f(i);
    if (n.ordered) return;  // only the next one in order
  }
}
}  // namespace

void JsonAcceptor::step(Stack s, uint8_t b, std::vector<Stack>& out) const {
  if (s.empty()) return;  // the document is closed
  Frame& f = s.back();
  const SchemaNode& n = schema_->nodes()[static_cast<size_t>(f.node)];
  switch (n.kind) {
    case SchemaNode::kObject:
      switch (f.st) {
        case 0:
          if (b == '{') f.st = 1, out.push_back(std::move(s));
          return;
        case 1: case 5:
          if (b == '}') {
            if ((n.required & ~f.seen) != 0) return;
            value_done(s);
            out.push_back(std::move(s));
            return;
          }
          if (f.st == 1 && b == '"' && key_possible(n, f.seen)) {
            f.st = 2, f.key.clear(), f.lex = StrLex{};
            out.push_back(std::move(s));
          } else if (f.st == 5 && b == ',' && key_possible(n, f.seen)) {
            f.st = 6;
            out.push_back(std::move(s));
          }
          return;
        case 6:
          if (b == '"') f.st = 2, f.key.clear(), f.lex = StrLex{}, out.push_back(std::move(s));
          return;
        case 2: {
          if (n.additional < 0) {
            if (b == '"') {
              int hit = -1;
              for_candidates(n, f.seen, [&](size_t i) {
                if (n.prop_names[i] == f.key) hit = static_cast<int>(i);
              });
              if (hit < 0) return;
              f.seen |= uint64_t{1} << hit, f.count = hit, f.st = 3;
              out.push_back(std::move(s));
              return;
            }
            f.key += static_cast<char>(b);
            bool ok = false;
            for_candidates(n, f.seen, [&](size_t i) {
              if (!ok && n.prop_names[i].compare(0, f.key.size(), f.key) == 0) ok = true;
            });
            if (ok) out.push_back(std::move(s));
            return;
          }
          const int r = lex_byte(f.lex, b, true);
          if (r == 0) return;
          if (r == 1) {
            f.key += static_cast<char>(b);
            out.push_back(std::move(s));
            return;
          }
          int hit = -1;
          for (size_t i = 0; i < n.prop_names.size(); ++i)
            if (n.prop_names[i] == f.key) hit = static_cast<int>(i);
          if (hit >= 0 && (f.seen >> hit & 1)) return;  // no duplicate properties
          if (hit >= 0 && n.ordered) {
            // (ordered objects have no extra properties; kept for completeness)
            return;
          }
          if (hit >= 0) f.seen |= uint64_t{1} << hit;
          f.count = hit, f.st = 3;
          out.push_back(std::move(s));
          return;
        }
        case 3: {
          if (b != ':') return;
          f.st = 4;
          const int child = f.count >= 0 ? n.prop_nodes[static_cast<size_t>(f.count)] : n.additional;
          push_value(std::move(s), child, out);
          return;
        }
        default:
          return;
      }
    case SchemaNode::kArray:
      switch (f.st) {
        case 0:
          if (b == '[') f.st = 1, out.push_back(std::move(s));
          return;
        case 1: {
          if (b == ']') {
            if (n.min_items > 0) return;
            value_done(s);
            out.push_back(std::move(s));
            return;
          }
          if (n.max_items == 0) return;
          f.st = 2, f.count = 1;
          std::vector<Stack> tmp;
          push_value(std::move(s), n.items, tmp);
          for (auto& t : tmp) step(std::move(t), b, out);
          return;
        }
        case 3:
          if (b == ']') {
            if (f.count < n.min_items) return;
            value_done(s);
            out.push_back(std::move(s));
          } else if (b == ',') {
            if (n.max_items >= 0 && f.count >= n.max_items) return;
            f.st = 2, ++f.count;
            push_value(std::move(s), n.items, out);
          }
          return;
        default:
          return;
      }
    case SchemaNode::kString: {
      if (f.st == 0) {
        if (b == '"') f.st = 1, out.push_back(std::move(s));
        return;
      }
      const int r = lex_byte(f.lex, b, false);
      if (r == 0) return;
      if (r == 2) value_done(s);
      out.push_back(std::move(s));
      return;
    }
    case SchemaNode::kNumber: case SchemaNode::kInteger: {
      const bool integer = n.kind == SchemaNode::kInteger;
      // Integers keep to 18 digits (19 with '-'), so every parser reads them as an int64.
      // (f.seen: 1 after a leading '-')
      const bool room = integer ? f.lit - static_cast<int>(f.seen) < 18 : f.lit < kMaxNumberChars;
      uint8_t next = 255;
      switch (f.st) {
        case 0:
          if (b == '-') next = 1, f.seen = 1;
          else if (b == '0') next = 2;
          else if (is_digit(b)) next = 3;
          break;
        case 1:
          if (b == '0') next = 2;
          else if (is_digit(b)) next = 3;
          break;
        case 2: case 3: case 5:
          if (f.st != 2 && is_digit(b)) next = f.st;
          else if (!integer && f.st != 5 && b == '.') next = 4;
          else if (!integer && (b == 'e' || b == 'E')) next = 6;
          break;
        case 4:
          if (is_digit(b)) next = 5;
          break;
        case 6:
          if (b == '+' || b == '-') next = 7;
          else if (is_digit(b)) next = 8;  // (count set below)
          break;
        case 7: case 8:
          // At most two exponent digits: 1e999 overflows a double, which parsers refuse.
          if (is_digit(b) && (f.st == 7 || f.count < 2)) next = 8;
          break;
      }
      if (next == 8) f.count = f.st == 8 ? f.count + 1 : 1;
      // A character that still needs a digit after it ('-', '.', 'e', the exponent sign)
      // is only taken when there is room for that digit.
      if (next != 255 && room && (num_terminal(next) || f.lit + 2 <= kMaxNumberChars)) {
        f.st = next, ++f.lit;
        out.push_back(std::move(s));
        return;
      }
      // Not part of the number: it ends here, and the byte belongs to the parent.
      if (!num_terminal(f.st)) return;
      value_done(s);
      if (s.empty()) return;
      step(std::move(s), b, out);
      return;
    }
    case SchemaNode::kLiterals: {
      const std::string& lit = n.literals[static_cast<size_t>(f.lit)];
      const size_t pos = static_cast<size_t>(f.count);
      if (static_cast<uint8_t>(lit[pos]) != b) return;
      if (pos + 1 == lit.size()) value_done(s);
      else ++f.count;
      out.push_back(std::move(s));
      return;
    }
    case SchemaNode::kAnyOf:
      return;  // never on a stack (push_value expands it)
  }
}

bool JsonAcceptor::feed_byte(uint8_t b) {
  std::vector<Stack> next;
  next.reserve(stacks_.size());
  for (auto& s : stacks_) step(std::move(s), b, next);
  // Bound the alternatives (pathological enums/anyOfs); dropping some never admits an
  // invalid byte, it only narrows what may be written.
  if (next.size() > 256) next.resize(256);
  stacks_ = std::move(next);
  return !stacks_.empty();
}

bool JsonAcceptor::feed(std::string_view bytes) {
  for (char c : bytes)
    if (!feed_byte(static_cast<uint8_t>(c))) return false;
  return !stacks_.empty();
}

bool JsonAcceptor::accepts(std::string_view bytes) const {
  JsonAcceptor copy = *this;
  return copy.feed(bytes);
}

bool JsonAcceptor::complete() const {
  for (const auto& s : stacks_) {
    if (s.empty()) return true;
    if (s.size() == 1) {
      const SchemaNode& n = schema_->nodes()[static_cast<size_t>(s[0].node)];
      if ((n.kind == SchemaNode::kNumber || n.kind == SchemaNode::kInteger) &&
          num_terminal(s[0].st))
        return true;
    }
  }
  return false;
}

bool JsonAcceptor::can_continue() const {
  for (const auto& s : stacks_) {
    if (s.empty()) continue;
    // A finished top-level number may be out of room for more characters; every other
    // open state has a continuation.
    const SchemaNode& n = schema_->nodes()[static_cast<size_t>(s[0].node)];
    if (s.size() == 1 && (n.kind == SchemaNode::kNumber || n.kind == SchemaNode::kInteger) &&
        num_terminal(s[0].st)) {
      for (uint8_t b : std::string_view("0123456789.eE")) {
        std::vector<Stack> out;
        step(s, b, out);
        if (!out.empty()) return true;
      }
      continue;
    }
    return true;
  }
  return false;
}

std::string JsonAcceptor::required_rest(const SchemaNode& n, uint64_t seen, bool comma) const {
  std::string t;
  for (size_t p = 0; p < n.prop_names.size(); ++p)
    if ((n.required >> p & 1) && !(seen >> p & 1)) {
      if (comma) t += ',';
      comma = true;
      t += "\"" + n.prop_names[p] + "\":" + schema_->min_text(n.prop_nodes[p]);
    }
  return t;
}

std::string JsonAcceptor::frame_completion(const Frame& f, bool top) const {
  const SchemaNode& n = schema_->nodes()[static_cast<size_t>(f.node)];
  switch (n.kind) {
    case SchemaNode::kObject: {
      uint8_t st = f.st;
      if (!top && st == 4) st = 5;
      switch (st) {
        case 0: return schema_->min_text(f.node);
        case 1: return required_rest(n, f.seen, false) + "}";
        case 5: return required_rest(n, f.seen, true) + "}";
        case 6: {
          if ((n.required & ~f.seen) != 0) return required_rest(n, f.seen, false) + "}";
          if (n.additional < 0) {
            std::string t;
            for_candidates(n, f.seen, [&](size_t i) {
              if (t.empty())
                t = "\"" + n.prop_names[i] + "\":" + schema_->min_text(n.prop_nodes[i]) + "}";
            });
            return t;
          }
          std::string key = "_";
          while (std::find(n.prop_names.begin(), n.prop_names.end(), key) != n.prop_names.end())
            key += '_';
          return "\"" + key + "\":" + schema_->min_text(n.additional) + "}";
        }
        case 2: {
          if (n.additional < 0) {
            std::string best;
            bool found = false;
            for_candidates(n, f.seen, [&](size_t i) {
              const std::string& name = n.prop_names[i];
              if (name.compare(0, f.key.size(), f.key) != 0) return;
              std::string t = name.substr(f.key.size()) + "\":" +
                              schema_->min_text(n.prop_nodes[i]) +
                              required_rest(n, f.seen | (uint64_t{1} << i), true) + "}";
              if (!found || t.size() < best.size()) best = t, found = true;
            });
            return best;
          }
          std::string fin = lex_finish(f.lex);
          std::string key = f.key + fin;
          int hit = -1;
          while (true) {
            hit = -1;
            for (size_t i = 0; i < n.prop_names.size(); ++i)
              if (n.prop_names[i] == key) hit = static_cast<int>(i);
            if (hit < 0 || !(f.seen >> hit & 1)) break;
            key += '_', fin += '_';
          }
          const int child = hit >= 0 ? n.prop_nodes[static_cast<size_t>(hit)] : n.additional;
          const uint64_t seen = hit >= 0 ? f.seen | (uint64_t{1} << hit) : f.seen;
          return fin + "\":" + schema_->min_text(child) + required_rest(n, seen, true) + "}";
        }
        case 3: {
          const int child = f.count >= 0 ? n.prop_nodes[static_cast<size_t>(f.count)] : n.additional;
          return ":" + schema_->min_text(child) + required_rest(n, f.seen, true) + "}";
        }
        default: return "}";
      }
    }
    case SchemaNode::kArray: {
      uint8_t st = f.st;
      if (!top && st == 2) st = 3;
      if (st == 0) return schema_->min_text(f.node);
      std::string t;
      int64_t have = st == 1 ? 0 : f.count;
      for (int64_t k = have; k < n.min_items; ++k)
        t += (k ? "," : "") + schema_->min_text(n.items);
      return t + "]";
    }
    case SchemaNode::kString:
      if (f.st == 0) return schema_->min_text(f.node);
      return lex_finish(f.lex) + "\"";
    case SchemaNode::kNumber: case SchemaNode::kInteger:
      return num_terminal(f.st) ? "" : "0";
    case SchemaNode::kLiterals:
      return n.literals[static_cast<size_t>(f.lit)].substr(static_cast<size_t>(f.count));
    case SchemaNode::kAnyOf:
      return "";
  }
  return "";
}

std::string JsonAcceptor::stack_completion(const Stack& s) const {
  std::string t;
  for (size_t i = s.size(); i-- > 0;) t += frame_completion(s[i], i + 1 == s.size());
  return t;
}

std::string JsonAcceptor::min_completion() const {
  std::string best;
  bool found = false;
  for (const auto& s : stacks_) {
    std::string t = stack_completion(s);
    if (!found || t.size() < best.size()) best = std::move(t), found = true;
  }
  return best;
}

}  // namespace octet::serve
