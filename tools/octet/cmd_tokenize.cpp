// `octet tokenize [-m MODEL] (-p TEXT | -f FILE | --batch FILE) [--json] [--no-bos]
// [--no-special]`: token ids of a text (loads only the tokenizer, so it is quick).
// --batch takes JSON lines, one JSON string each, and prints one JSON object per line (used
// by the parity tests to run many strings in one call).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "common.h"
#include "octet/gguf.h"
#include "octet/tokenizer.h"

namespace {

struct TokenizeArgs {
  std::string model, prompt, file, batch;
  bool prompt_set = false, json = false, no_bos = false, no_special = false;
};

nlohmann::json result_json(const octet::Tokenizer& tok, const std::vector<octet::Token>& ids) {
  nlohmann::json pieces = nlohmann::json::array();
  for (octet::Token t : ids) pieces.push_back(tok.token_to_piece(t, true));
  return {{"tokens", ids}, {"pieces", pieces}, {"decoded", tok.decode(ids)}};
}

std::string dump(const nlohmann::json& j) {
  // Pieces can be partial UTF-8 (byte tokens): write U+FFFD rather than fail.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void tokenize(const TokenizeArgs& a) {
  using namespace octet;
  const int sources = int(a.prompt_set) + int(!a.file.empty()) + int(!a.batch.empty());
  if (sources != 1) cli::fail("tokenize: give exactly one of -p TEXT, -f FILE, --batch FILE");
  const std::string path = cli::resolve_model(a.model);
  if (!std::filesystem::exists(path)) cli::fail("model file not found: " + path);
  auto f = gguf::File::open(path);
  if (!f) cli::fail(f.error());
  auto tok = Tokenizer::from_gguf(**f);
  if (!tok) cli::fail(tok.error());
  const Tokenizer& t = **tok;
  const bool add_special = !a.no_bos, parse_special = !a.no_special;

  if (!a.batch.empty()) {
    std::ifstream in(a.batch, std::ios::binary);
    if (!in) cli::fail("cannot read " + a.batch);
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      nlohmann::json s = nlohmann::json::parse(line, nullptr, false);
      if (!s.is_string())
        cli::fail("--batch: line " + std::to_string(lineno) + " is not a JSON string");
      const std::string text = s.get<std::string>();
      std::printf("%s\n", dump(result_json(t, t.encode(text, add_special, parse_special))).c_str());
    }
    return;
  }
  std::string text = a.prompt;
  if (!a.file.empty()) {
    bool ok;
    text = cli::read_file(a.file, &ok);
    if (!ok) cli::fail("cannot read " + a.file);
  }
  const std::vector<Token> ids = t.encode(text, add_special, parse_special);
  if (a.json) {
    std::printf("%s\n", dump(result_json(t, ids)).c_str());
    return;
  }
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", out.c_str());
}

}  // namespace

static void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Token ids of a text (tokenizer only)");
  cmd->add_option("-m,--model", a->model, "GGUF file, or 'default' (Gemma 3 270M Q4_K_M)");
  cmd->add_option("-p,--prompt", a->prompt, "text to tokenize")
      ->each([a](const std::string&) { a->prompt_set = true; });
  cmd->add_option("-f,--file", a->file, "read the text from a file");
  cmd->add_option("--batch", a->batch,
                  "JSON lines file, one JSON string per line; prints one JSON object per line");
  cmd->add_flag("--json", a->json, "print {\"tokens\":[...],\"pieces\":[...],\"decoded\":...}");
  cmd->add_flag("--no-bos", a->no_bos, "do not add BOS/EOS");
  cmd->add_flag("--no-special", a->no_special, "treat control-token texts as plain text");
  cmd->callback([a] { tokenize(*a); });
}
OCTET_COMMAND("tokenize", register_tokenize);
