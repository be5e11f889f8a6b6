// `octet schema SCHEMA_FILE [--batch FILE]`: runs the constrained-decoding JSON-schema
// acceptor (include/octet/json_schema.h) outside the server. Without --batch it compiles the
// schema and prints "ok" or the error (exit 1). With --batch, FILE holds JSON lines, each a
// JSON string (a candidate document); the output has one line per input:
// {"alive": prefix accepted, "complete": a complete valid document, "completion": the
// shortest completion when alive}. Used by tests/python/test_json_schema.py to compare the
// acceptor with the `jsonschema` package.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "common.h"
#include "octet/json_schema.h"

namespace {

struct SchemaArgs {
  std::string schema, batch;
};

void run_schema(const SchemaArgs& a) {
  using json = nlohmann::json;
  std::ifstream f(a.schema);
  if (!f) octet::cli::fail("schema: cannot read " + a.schema);
  std::stringstream ss;
  ss << f.rdbuf();
  json sj;
  try {
    sj = json::parse(ss.str());
  } catch (const json::exception& e) {
    octet::cli::fail(std::string("schema: not JSON: ") + e.what());
  }
  auto s = octet::serve::JsonSchema::compile(sj);
  if (!s.ok()) {
    std::printf("error: %s\n", s.error().c_str());
    std::exit(1);
  }
  if (a.batch.empty()) {
    std::printf("ok\n");
    return;
  }
  std::ifstream in(a.batch);
  if (!in) octet::cli::fail("schema: cannot read " + a.batch);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // A line is a JSON string, or {"bytes": [...]} for byte sequences that are not UTF-8.
    json j = json::parse(line);
    std::string bytes;
    if (j.is_object()) {
      for (const auto& b : j["bytes"]) bytes += static_cast<char>(b.get<int>());
    } else {
      bytes = j.get<std::string>();
    }
    octet::serve::JsonAcceptor acc(*s);
    const bool alive = acc.feed(bytes);
    json out = {{"alive", alive}, {"complete", alive && acc.complete()}};
    if (alive) out["completion"] = acc.min_completion();
    std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  }
}

void register_schema(CLI::App& app) {
  auto a = std::make_shared<SchemaArgs>();
  auto* c = app.add_subcommand("schema", "check documents against the constrained-decoding "
                                         "JSON-schema acceptor");
  c->add_option("schema", a->schema, "JSON schema file")->required();
  c->add_option("--batch", a->batch, "JSON lines: candidate documents (strings or {bytes: [..]})");
  c->callback([a] { run_schema(*a); });
}

}  // namespace

OCTET_COMMAND("schema", register_schema);
