// Constrained decoding for `octet serve`: a JSON-schema subset compiled into a byte-level,
// incremental acceptor. The acceptor says, byte by byte, whether a prefix can still grow
// into a document that parses and validates; the server only samples tokens whose bytes
// keep it so (docs/serve.md, "Structured output and tool calls").
//
// Supported: type (string, number, integer, boolean, null, object, array, or a list of
// these), properties, required, additionalProperties (bool or schema; absent means false:
// the acceptor writes a subset of the valid documents), items, minItems, maxItems, enum,
// const, anyOf, oneOf (alternatives must be told apart by type or by const/enum values),
// and annotations (title, description, default, examples, $schema, $id, $comment).
// Anything else is an error naming the keyword, so a schema is never silently weakened.
//
// The acceptor writes compact JSON: no whitespace outside strings, property names spelled
// the way nlohmann::json::dump() escapes them, at most 64 properties per object.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "octet/status.h"

namespace octet::serve {

struct SchemaNode {
  enum Kind { kObject, kArray, kString, kNumber, kInteger, kLiterals, kAnyOf };
  Kind kind = kLiterals;
  // kObject: property names as written inside the quotes (escaped), value nodes.
  std::vector<std::string> prop_names;
  std::vector<int> prop_nodes;
  uint64_t required = 0;   // bit i: prop i is required
  int additional = -1;     // node of extra properties' values; -1: none allowed
  bool ordered = false;    // internal (tool calls): every property, in declared order
  // kArray
  int items = -1;
  int64_t min_items = 0, max_items = -1;  // -1: unbounded
  // kLiterals: canonical JSON texts (enum, const, true/false, null)
  std::vector<std::string> literals;
  // kAnyOf
  std::vector<int> options;
};

class JsonSchema {
 public:
  // `schema`: a JSON schema object (or true / {} for any JSON value).
  static Expected<std::shared_ptr<const JsonSchema>> compile(const nlohmann::json& schema);
  // Any JSON object ({"type": "json_object"}).
  static std::shared_ptr<const JsonSchema> any_object();
  // Tool calls: {"name": NAME, "arguments": ARGS} for one of the tools, name first, where
  // ARGS follows that tool's parameter schema (null: an object with any properties).
  static Expected<std::shared_ptr<const JsonSchema>> tool_calls(
      const std::vector<std::pair<std::string, nlohmann::json>>& tools);

  const std::vector<SchemaNode>& nodes() const { return nodes_; }
  int root() const { return root_; }
  // The shortest document for node n (compact JSON).
  const std::string& min_text(int n) const { return min_text_[static_cast<size_t>(n)]; }

 private:
  friend class SchemaCompiler;
  std::vector<SchemaNode> nodes_;
  std::vector<std::string> min_text_;
  int root_ = 0;
};

// The state of a partly written document: a set of parse stacks (one per anyOf/enum
// alternative still possible). Copying it is cheap enough to test candidate tokens on a copy.
class JsonAcceptor {
 public:
  explicit JsonAcceptor(std::shared_ptr<const JsonSchema> schema);
  // Feeds bytes; false (and the state is then dead) when the prefix can no longer become a
  // valid document.
  bool feed(std::string_view bytes);
  bool feed_byte(uint8_t b);
  // Would feed(bytes) succeed? (Leaves this state unchanged.)
  bool accepts(std::string_view bytes) const;
  bool dead() const { return stacks_.empty(); }
  // The bytes so far form a complete valid document (generation may end here).
  bool complete() const;
  // Some byte can still follow (false once the document is closed for good).
  bool can_continue() const;
  // The shortest byte string that completes the document from here ("" when complete()).
  std::string min_completion() const;

  struct StrLex {  // string lexer state
    uint8_t esc = 0;     // 0 none, 1 after '\', 2..5 inside \uXXXX (digits seen + 2)
    uint8_t utf8 = 0;    // continuation bytes still expected
    uint8_t lo = 0x80, hi = 0xBF;  // range of the next continuation byte
    bool surrogate_guard = false;  // \uD...: next hex digit must be 0-7 (no surrogates)
  };
  struct Frame {
    int node = 0;
    uint8_t st = 0;
    int lit = 0;          // kLiterals: which literal; kNumber/kInteger: characters so far
    int64_t count = 0;    // kArray: items; kObject: property of the current key (-1: extra)
    uint64_t seen = 0;    // kObject: properties written
    std::string key;      // kObject: the key being written (escaped form)
    StrLex lex;
  };
  using Stack = std::vector<Frame>;

 private:
  void push_value(Stack s, int node, std::vector<Stack>& out) const;
  void step(Stack s, uint8_t b, std::vector<Stack>& out) const;
  void value_done(Stack& s) const;
  std::string frame_completion(const Frame& f, bool top) const;
  std::string stack_completion(const Stack& s) const;
  std::string required_rest(const SchemaNode& n, uint64_t seen, bool comma) const;

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Stack> stacks_;
};

}  // namespace octet::serve
