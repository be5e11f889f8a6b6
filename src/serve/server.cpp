// The HTTP front end and the engine worker of `octet serve` (docs/serve.md).
//
// Threads: httplib's pool parses, authenticates and validates requests (tokenising there, so
// the workers only run the model) and enqueues a Job; `--batch` worker threads pop jobs in
// (priority, arrival) order, each with its own working Session; their decode steps run as
// batches (decode_batcher.h). Results flow back through
// the Job: a final result for plain requests, a queue of SSE payloads for streaming ones.
// httplib's default listen backlog (5) overflows when many clients connect at once (a load
// test's refused clients reconnecting); a full accept queue turns into connection errors.
#define CPPHTTPLIB_LISTEN_BACKLOG 512
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <thread>

#include "constrained.h"
#include "decode_batcher.h"
#include "octet/generate.h"
#include "octet/json_schema.h"
#include "octet/serve.h"

namespace octet::serve {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A prefix shorter than this is not worth restoring (every prompt shares BOS and the turn
// header); it counts as a miss.
constexpr int64_t kMinReuse = 16;

struct ApiError {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;
};

// Request text can reach a message (e.g. the parser quoting bad bytes): never throw on it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", err}};
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_json(e)), "application/json");
}

ApiError bad(std::string msg, std::string param = "", std::string code = "") {
  return ApiError{400, std::move(msg), "invalid_request_error", std::move(param), std::move(code)};
}

struct Job {
  // Request (filled by the HTTP thread, read-only afterwards).
  std::string app, id, model;
  Priority priority = Priority::kForeground;
  uint64_t seq = 0;
  bool chat = true, stream = false, progress = true, include_usage = false;
  int64_t created = 0;
  std::vector<Token> prompt;
  GenerateOptions gen;
  Clock::time_point enqueued;
  // Structured output: `schema` constrains the reply (json_schema / json_object); tool calls
  // use `tool_schema` ("required"/named: always; "auto": when the first token opens a JSON
  // object). tool_names: canonical JSON of the callable names (for streaming the call).
  enum class Tools { kNone, kAuto, kRequired };
  Tools tools = Tools::kNone;
  std::shared_ptr<const JsonSchema> schema, tool_schema;
  std::vector<std::string> tool_names;

  // Channel back to the HTTP thread.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> events;  // SSE payloads, streaming only
  bool done = false;
  std::atomic<bool> cancelled{false};

  // Result.
  ApiError error;
  bool failed = false;
  std::string text, finish_reason;
  bool tool_call = false;  // text is {"name":..,"arguments":..}: reply with tool_calls
  std::string call_id, call_name, call_args;
  int64_t completion_tokens = 0, cached_tokens = 0;
  double queue_ms = 0, ttft_ms = 0, prefill_ms = 0, decode_ms = 0;
  double constrain_ms = -1;  // time choosing tokens under a constraint (-1: unconstrained)

  void push(std::string ev) {
    std::lock_guard<std::mutex> lk(mu);
    events.push_back(std::move(ev));
    cv.notify_all();
  }
  void finish() {
    std::lock_guard<std::mutex> lk(mu);
    done = true;
    cv.notify_all();
  }
};

struct JobOrder {
  bool operator()(const std::shared_ptr<Job>& a, const std::shared_ptr<Job>& b) const {
    if (a->priority != b->priority) return a->priority > b->priority;  // foreground first
    return a->seq > b->seq;                                             // then FIFO
  }
};

struct AppMetrics {
  std::map<std::string, uint64_t> requests;  // "endpoint|code" -> count
  uint64_t prompt_tokens = 0, completion_tokens = 0, cancelled = 0;
};

class Server {
 public:
  Server(const EngineRef& eng, const ServerOptions& opt)
      : eng_(eng), opt_(opt), cache_(0),
        batcher_(eng.pool, std::max<int64_t>(1, opt.batch)) {
    apps_ = opt.apps;
    keyed_ = !apps_.empty();
    if (apps_.empty()) apps_.push_back(AppConfig{"default", "", Priority::kForeground, 0, 0, 0});
    cache_ = PrefixCache(opt.cache_bytes / apps_.size());
    // One session per engine slot: up to `batch` requests run at once, their prefill chunks
    // taking turns and their decode steps batched (decode_batcher.h).
    for (int64_t i = 0; i < std::max<int64_t>(1, opt.batch); ++i) {
      sessions_.push_back(
          std::make_unique<Session>(eng.model, eng.weights, eng.session_opts, eng.pool));
      sessions_.back()->set_eval_hook(&batcher_);
    }
    tokens_ = std::make_unique<TokenTable>(eng.model->tokenizer());
    n_ctx_ = sessions_[0]->n_ctx();
    rng_.seed(std::random_device{}());
  }

  int run();

 private:
  // --- request handling (HTTP threads) ---
  const AppConfig* authenticate(const httplib::Request& req) const;
  bool admit(const httplib::Request& req, httplib::Response& res, const char* endpoint,
             const AppConfig** app);
  void handle_generate(const httplib::Request& req, httplib::Response& res, bool chat);
  std::optional<ApiError> parse_common(const json& j, const AppConfig& app, Job* job);
  std::optional<ApiError> parse_chat_prompt(const json& j, Job* job, const std::string& note);
  std::optional<ApiError> parse_structured(const json& j, bool chat, Job* job,
                                           std::string* system_note);
  std::optional<ApiError> parse_completion_prompt(const json& j, Job* job);
  json final_response(const Job& job) const;
  json usage(const Job& job) const;
  json chunk(const Job& job, json choice) const;
  void count(const std::string& app, const std::string& endpoint, int status);
  std::string metrics();

  // --- worker ---
  void worker(Session& s);
  void process(Job& job, Session& s);
  Status decode_structured(Job& job, Clock::time_point t0, bool* first);

  EngineRef eng_;
  ServerOptions opt_;
  std::vector<AppConfig> apps_;
  bool keyed_ = false;
  int64_t n_ctx_ = 0;
  httplib::Server http_;

  std::mutex qmu_;
  std::condition_variable qcv_;
  std::priority_queue<std::shared_ptr<Job>, std::vector<std::shared_ptr<Job>>, JobOrder> queue_;
  uint64_t seq_ = 0;
  bool stopping_ = false;

  std::mutex cache_mu_;
  std::condition_variable cache_cv_;
  PrefixCache cache_;
  // Per app: snapshots being copied after a reply went out. A request of that app waits for
  // them before its lookup (its conversation's last turn is usually the one being filed).
  std::map<std::string, int> filing_;
  DecodeBatcher batcher_;
  std::vector<std::unique_ptr<Session>> sessions_;  // one per worker thread
  std::unique_ptr<TokenTable> tokens_;  // token bytes for constrained decoding

  std::mutex mmu_;  // metrics, rate limits, rng
  std::map<std::string, AppMetrics> am_;
  std::map<std::string, std::deque<Clock::time_point>> recent_;  // per app, last 60 s
  uint64_t prefill_tokens_ = 0, decode_tokens_ = 0;
  double prefill_s_ = 0, decode_s_ = 0, last_prefill_tps_ = 0, last_decode_tps_ = 0,
         last_ttft_ms_ = 0;
  int running_ = 0;
  std::mt19937_64 rng_;
};

const AppConfig* Server::authenticate(const httplib::Request& req) const {
  if (!keyed_) return &apps_[0];
  const std::string h = req.get_header_value("Authorization");
  const std::string pre = "Bearer ";
  if (h.size() <= pre.size() || h.compare(0, pre.size(), pre) != 0) return nullptr;
  const std::string key = h.substr(pre.size());
  for (const auto& a : apps_) {
    // Compare every byte so the time taken does not tell how much of a key matched.
    if (a.key.size() != key.size()) continue;
    unsigned diff = 0;
    for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(a.key[i] ^ key[i]);
    if (diff == 0) return &a;
  }
  return nullptr;
}

void Server::count(const std::string& app, const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lk(mmu_);
  ++am_[app].requests[endpoint + "|" + std::to_string(status)];
}

// Authentication and rate limit; on failure fills res and returns false.
bool Server::admit(const httplib::Request& req, httplib::Response& res, const char* endpoint,
                   const AppConfig** app) {
  *app = authenticate(req);
  if (!*app) {
    send_error(res, ApiError{401, "invalid or missing API key (Authorization: Bearer KEY)",
                             "invalid_request_error", "", "invalid_api_key"});
    count("", endpoint, 401);
    return false;
  }
  const int64_t rpm = (*app)->requests_per_minute;
  if (rpm > 0) {
    std::lock_guard<std::mutex> lk(mmu_);
    auto& q = recent_[(*app)->name];
    const auto now = Clock::now();
    while (!q.empty() && now - q.front() >= std::chrono::seconds(60)) q.pop_front();
    if (static_cast<int64_t>(q.size()) >= rpm) {
      const auto wait = std::chrono::duration_cast<std::chrono::seconds>(
                            q.front() + std::chrono::seconds(60) - now).count() + 1;
      res.set_header("Retry-After", std::to_string(wait));
      send_error(res, ApiError{429,
                               fmt::format("rate limit of {} requests per minute reached for "
                                           "app '{}'", rpm, (*app)->name),
                               "rate_limit_error", "", "rate_limit_exceeded"});
      ++am_[(*app)->name].requests[std::string(endpoint) + "|429"];
      return false;
    }
    q.push_back(now);
  }
  return true;
}

std::optional<ApiError> Server::parse_common(const json& j, const AppConfig& app, Job* job) {
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) return bad("'model' must be a string", "model");
    if (j["model"].get<std::string>() != opt_.model_id)
      return ApiError{404, fmt::format("model '{}' does not exist; this server has '{}'",
                                       j["model"].get<std::string>(), opt_.model_id),
                      "invalid_request_error", "model", "model_not_found"};
  }
  auto opt_bool = [&](const char* k, bool* out) -> std::optional<ApiError> {
    if (!j.contains(k) || j[k].is_null()) return std::nullopt;
    if (!j[k].is_boolean()) return bad(fmt::format("'{}' must be a boolean", k), k);
    *out = j[k].get<bool>();
    return std::nullopt;
  };
  auto opt_num = [&](const char* k, double lo, double hi, double* out) -> std::optional<ApiError> {
    if (!j.contains(k) || j[k].is_null()) return std::nullopt;
    if (!j[k].is_number()) return bad(fmt::format("'{}' must be a number", k), k);
    const double v = j[k].get<double>();
    if (!(v >= lo && v <= hi))
      return bad(fmt::format("'{}' must be between {} and {}", k, lo, hi), k);
    *out = v;
    return std::nullopt;
  };
  auto opt_int = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> std::optional<ApiError> {
    if (!j.contains(k) || j[k].is_null()) return std::nullopt;
    if (!j[k].is_number_integer()) return bad(fmt::format("'{}' must be an integer", k), k);
    // Unsigned JSON integers above INT64_MAX read as negative: treat them as out of range.
    if (j[k].is_number_unsigned() && j[k].get<uint64_t>() > static_cast<uint64_t>(hi))
      return bad(fmt::format("'{}' must be between {} and {}", k, lo, hi), k);
    const int64_t v = j[k].get<int64_t>();
    if (v < lo || v > hi) return bad(fmt::format("'{}' must be between {} and {}", k, lo, hi), k);
    *out = v;
    return std::nullopt;
  };
  if (auto e = opt_bool("stream", &job->stream)) return e;
  if (auto e = opt_bool("return_progress", &job->progress)) return e;
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const auto& so = j["stream_options"];
    if (!so.is_object()) return bad("'stream_options' must be an object", "stream_options");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        return bad("'stream_options.include_usage' must be a boolean", "stream_options");
      job->include_usage = so["include_usage"].get<bool>();
    }
  }
  int64_t n = 1;
  if (auto e = opt_int("n", 1, 128, &n)) return e;
  if (n != 1) return bad("only n=1 is supported", "n", "unsupported_value");

  // Sampling: fields not given keep the engine's defaults, as llama.cpp's server does
  // (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05); top_k, min_p and repeat_penalty are
  // llama.cpp-style extensions.
  SamplerParams& sp = job->gen.sampling;
  sp = SamplerParams{};
  double temp = sp.temperature, top_p = sp.top_p, min_p = sp.min_p, rep = sp.repeat_penalty;
  int64_t top_k = sp.top_k, seed = -1;
  if (auto e = opt_num("temperature", 0, 2, &temp)) return e;
  if (auto e = opt_num("top_p", 0, 1, &top_p)) return e;
  if (auto e = opt_num("min_p", 0, 1, &min_p)) return e;
  if (auto e = opt_num("repeat_penalty", 0.01, 10, &rep)) return e;
  if (auto e = opt_int("top_k", 0, 1 << 20, &top_k)) return e;
  if (auto e = opt_int("seed", INT64_MIN, INT64_MAX, &seed)) return e;
  double ignored = 0;
  if (auto e = opt_num("presence_penalty", -2, 2, &ignored)) return e;
  if (auto e = opt_num("frequency_penalty", -2, 2, &ignored)) return e;
  sp.temperature = static_cast<float>(temp);
  sp.top_p = static_cast<float>(top_p);
  sp.min_p = static_cast<float>(min_p);
  sp.top_k = static_cast<int32_t>(top_k);
  sp.repeat_penalty = static_cast<float>(rep);
  if (j.contains("seed") && !j["seed"].is_null()) {
    sp.seed = static_cast<uint64_t>(seed);
  } else {
    std::lock_guard<std::mutex> lk(mmu_);
    sp.seed = rng_();
  }

  job->gen.stop.clear();
  if (j.contains("stop") && !j["stop"].is_null()) {
    const auto& s = j["stop"];
    if (s.is_string()) {
      job->gen.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (s.size() > 16) return bad("'stop' may hold at most 16 strings", "stop");
      for (const auto& x : s) {
        if (!x.is_string()) return bad("'stop' must be a string or a list of strings", "stop");
        job->gen.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad("'stop' must be a string or a list of strings", "stop");
    }
    for (const auto& x : job->gen.stop)
      if (x.empty() || x.size() > 256)
        return bad("stop strings must be 1 to 256 bytes long", "stop");
  }

  if (j.contains("logprobs") && !j["logprobs"].is_null() && j["logprobs"] != false)
    return bad("'logprobs' is not supported", "logprobs", "unsupported_parameter");

  int64_t max_tokens = -1;
  const char* mt_key = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (auto e = opt_int(mt_key, 1, INT64_MAX, &max_tokens)) return e;
  const int64_t ctx = app.max_context > 0 ? std::min(app.max_context, n_ctx_) : n_ctx_;
  const int64_t cap = app.max_tokens > 0 ? std::min(app.max_tokens, ctx) : ctx;
  if (max_tokens > cap)
    return bad(fmt::format("'{}' is {}, above this app's limit of {}", mt_key, max_tokens, cap),
               mt_key, "max_tokens_exceeded");
  job->gen.max_tokens = max_tokens > 0 ? max_tokens : std::min(opt_.default_max_tokens, cap);
  return std::nullopt;
}

// response_format and tools/tool_choice. Compiles the schemas (unsupported keywords: 400)
// and writes the instructions the prompt gets into *system_note.
std::optional<ApiError> Server::parse_structured(const json& j, bool chat, Job* job,
                                                 std::string* system_note) {
  system_note->clear();
  if (j.contains("response_format") && !j["response_format"].is_null()) {
    const auto& rf = j["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      return bad("'response_format' must be an object with a string 'type'", "response_format");
    const std::string type = rf["type"].get<std::string>();
    if (type == "json_object") {
      job->schema = JsonSchema::any_object();
      *system_note = "Reply with only a JSON object.";
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
        return bad("response_format.json_schema must be an object {name, schema, strict}",
                   "response_format");
      const auto& js = rf["json_schema"];
      if (!js.contains("name") || !js["name"].is_string())
        return bad("response_format.json_schema.name must be a string", "response_format");
      if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean())
        return bad("response_format.json_schema.strict must be a boolean", "response_format");
      if (!js.contains("schema") || !(js["schema"].is_object() || js["schema"].is_boolean()))
        return bad("response_format.json_schema.schema must be a JSON schema object",
                   "response_format");
      auto r = JsonSchema::compile(js["schema"]);
      if (!r.ok())
        return bad("response_format.json_schema: " + r.error(), "response_format",
                   "unsupported_schema");
      job->schema = *r;
      *system_note = "Reply with only a JSON value that follows this JSON schema:\n" +
                     dump(js["schema"]);
    } else if (type != "text") {
      return bad(fmt::format("response_format type '{}' is not one of text, json_object, "
                             "json_schema", type), "response_format");
    }
  }

  const bool has_tools = j.contains("tools") && !j["tools"].is_null();
  const bool has_choice = j.contains("tool_choice") && !j["tool_choice"].is_null();
  if (j.contains("parallel_tool_calls") && !j["parallel_tool_calls"].is_null() &&
      !j["parallel_tool_calls"].is_boolean())
    return bad("'parallel_tool_calls' must be a boolean", "parallel_tool_calls");
  if (!has_tools) {
    if (has_choice && j["tool_choice"] != "none")
      return bad("'tool_choice' needs 'tools'", "tool_choice");
    return std::nullopt;
  }
  if (!chat) return bad("'tools' is only for /v1/chat/completions", "tools");
  const auto& tools = j["tools"];
  if (!tools.is_array()) return bad("'tools' must be an array", "tools");
  if (tools.empty()) return std::nullopt;
  if (tools.size() > 128) return bad("at most 128 tools are supported", "tools");
  std::vector<std::pair<std::string, json>> fns;
  std::string listing;
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    const std::string p = fmt::format("tools[{}]", i);
    if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
        !t["function"].is_object())
      return bad(p + " must be {\"type\": \"function\", \"function\": {...}}", p);
    const auto& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string())
      return bad(p + ".function.name must be a string", p);
    const std::string name = f["name"].get<std::string>();
    if (name.empty() || name.size() > 64 ||
        !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        }))
      return bad(p + ".function.name must be 1-64 characters of a-z, A-Z, 0-9, _ and -", p);
    for (const auto& [other, unused] : fns)
      if (other == name) return bad(fmt::format("tool name '{}' is used twice", name), "tools");
    json params = f.contains("parameters") ? f["parameters"] : json(nullptr);
    if (!params.is_null()) {
      auto r = JsonSchema::compile(params);
      if (!r.ok())
        return bad(p + ".function.parameters: " + r.error(), "tools", "unsupported_schema");
    }
    fns.emplace_back(name, params);
    std::string shown = "{\"name\":" + dump(json(name));
    if (f.contains("description") && f["description"].is_string())
      shown += ",\"description\":" + dump(f["description"]);
    shown += ",\"parameters\":" + dump(params.is_null() ? json::object() : params) + "}";
    listing += shown + "\n";
  }

  job->tools = Job::Tools::kAuto;
  std::string must;
  if (has_choice) {
    const auto& c = j["tool_choice"];
    if (c.is_string()) {
      const std::string v = c.get<std::string>();
      if (v == "none") job->tools = Job::Tools::kNone;
      else if (v == "required") job->tools = Job::Tools::kRequired, must = "You must call a function.";
      else if (v != "auto")
        return bad("'tool_choice' must be none, auto, required or {\"type\": \"function\", "
                   "\"function\": {\"name\": ...}}", "tool_choice");
    } else if (c.is_object() && c.value("type", "") == "function" && c.contains("function") &&
               c["function"].is_object() && c["function"].contains("name") &&
               c["function"]["name"].is_string()) {
      const std::string want = c["function"]["name"].get<std::string>();
      auto it = std::find_if(fns.begin(), fns.end(), [&](const auto& x) { return x.first == want; });
      if (it == fns.end())
        return bad(fmt::format("tool_choice names '{}', which is not in 'tools'", want),
                   "tool_choice");
      fns = {*it};
      job->tools = Job::Tools::kRequired;
      must = fmt::format("You must call the function {}.", want);
    } else {
      return bad("'tool_choice' must be none, auto, required or {\"type\": \"function\", "
                 "\"function\": {\"name\": ...}}", "tool_choice");
    }
  }
  if (job->tools == Job::Tools::kNone) return std::nullopt;
  auto r = JsonSchema::tool_calls(fns);
  if (!r.ok()) return bad("tools: " + r.error(), "tools", "unsupported_schema");
  job->tool_schema = *r;
  for (const auto& [name, unused] : fns) job->tool_names.push_back(dump(json(name)));
  std::string note = "You can call these functions:\n" + listing +
                     "To call a function, reply with only a JSON object of the form "
                     "{\"name\": <function name>, \"arguments\": <arguments object>}.";
  if (!must.empty()) note += " " + must;
  if (!system_note->empty()) note += " Otherwise, r" + system_note->substr(1);
  *system_note = note;
  return std::nullopt;
}

std::optional<ApiError> Server::parse_chat_prompt(const json& j, Job* job,
                                                  const std::string& note) {
  if (!j.contains("messages")) return bad("'messages' is required", "messages");
  const auto& ms = j["messages"];
  if (!ms.is_array() || ms.empty())
    return bad("'messages' must be a non-empty array", "messages");
  std::vector<ChatMessage> msgs;
  std::map<std::string, std::string> call_names;  // tool_call id -> function name
  for (size_t i = 0; i < ms.size(); ++i) {
    const auto& m = ms[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad(p + " must be an object", p);
    if (!m.contains("role") || !m["role"].is_string())
      return bad(p + ".role must be a string", p + ".role");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      return bad(fmt::format("{}.role '{}' is not one of system, developer, user, assistant, "
                             "tool", p, role), p + ".role");
    std::string content;
    if (m.contains("content") && !m["content"].is_null()) {
      const auto& c = m["content"];
      if (c.is_string()) {
        content = c.get<std::string>();
      } else if (c.is_array()) {
        for (const auto& part : c) {
          if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
              !part.contains("text") || !part["text"].is_string())
            return bad(p + ".content parts must be {\"type\": \"text\", \"text\": \"...\"}",
                       p + ".content");
          content += part["text"].get<std::string>();
        }
      } else {
        return bad(p + ".content must be a string or an array of text parts", p + ".content");
      }
    } else if (role != "assistant") {
      return bad(p + ".content is required", p + ".content");
    }
    // An assistant turn that called tools is rendered as the JSON the model would write.
    if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      const auto& tc = m["tool_calls"];
      if (!tc.is_array()) return bad(p + ".tool_calls must be an array", p + ".tool_calls");
      for (size_t k = 0; k < tc.size(); ++k) {
        const auto& c = tc[k];
        const std::string q = fmt::format("{}.tool_calls[{}]", p, k);
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
            !c["function"].contains("name") || !c["function"]["name"].is_string())
          return bad(q + " must be {\"id\", \"type\": \"function\", \"function\": "
                     "{\"name\", \"arguments\"}}", q);
        json args = json::object();
        const auto& f = c["function"];
        if (f.contains("arguments") && !f["arguments"].is_null()) {
          if (!f["arguments"].is_string())
            return bad(q + ".function.arguments must be a string (JSON text)", q);
          try {
            args = json::parse(f["arguments"].get<std::string>());
          } catch (const json::exception&) {
            return bad(q + ".function.arguments is not valid JSON", q);
          }
        }
        if (c.contains("id") && c["id"].is_string())
          call_names[c["id"].get<std::string>()] = f["name"].get<std::string>();
        if (!content.empty()) content += "\n";
        // Name first, as the model is asked to write it (json objects sort their keys).
        content += "{\"name\":" + dump(f["name"]) + ",\"arguments\":" + dump(args) + "}";
      }
    }
    // Tool results go back as a user turn (templates differ in whether they know a tool
    // role; Gemma has none).
    if (role == "tool") {
      std::string name;
      if (m.contains("tool_call_id") && m["tool_call_id"].is_string()) {
        auto it = call_names.find(m["tool_call_id"].get<std::string>());
        if (it != call_names.end()) name = it->second;
      }
      content = (name.empty() ? std::string("Function result:\n")
                              : fmt::format("Result of {}:\n", name)) + content;
      role = "user";
    }
    msgs.push_back({role, content});
  }
  if (!note.empty()) {
    // The tool / schema instructions join the system message (or become one).
    if (!msgs.empty() && msgs[0].role == "system") msgs[0].content += "\n\n" + note;
    else msgs.insert(msgs.begin(), ChatMessage{"system", note});
  }
  const Tokenizer& tok = eng_.model->tokenizer();
  const std::string text = apply_chat_template(eng_.model->chat_template(), msgs, true);
  job->prompt = tok.encode(text, true, true);
  return std::nullopt;
}

std::optional<ApiError> Server::parse_completion_prompt(const json& j, Job* job) {
  if (j.contains("echo") && j["echo"] == true)
    return bad("'echo' is not supported", "echo", "unsupported_parameter");
  if (j.contains("suffix") && !j["suffix"].is_null())
    return bad("'suffix' is not supported", "suffix", "unsupported_parameter");
  if (!j.contains("prompt")) return bad("'prompt' is required", "prompt");
  json p = j["prompt"];
  // A list holding one prompt (string or token ids) is the same as that prompt.
  if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) p = p[0];
  const Tokenizer& tok = eng_.model->tokenizer();
  if (p.is_string()) {
    job->prompt = tok.encode(p.get<std::string>(), true, true);
  } else if (p.is_array() && !p.empty() && p[0].is_number()) {
    for (const auto& t : p) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
        return bad(fmt::format("token ids in 'prompt' must be integers in [0, {})",
                               tok.n_vocab()), "prompt");
      job->prompt.push_back(static_cast<Token>(t.get<int64_t>()));
    }
  } else if (p.is_array() && p.size() > 1) {
    return bad("only one prompt per request is supported", "prompt", "unsupported_value");
  } else {
    return bad("'prompt' must be a string, a list of token ids, or a list with one of these",
               "prompt");
  }
  return std::nullopt;
}

void Server::handle_generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  const char* endpoint = chat ? "chat_completions" : "completions";
  const AppConfig* app = nullptr;
  if (!admit(req, res, endpoint, &app)) return;
  auto fail = [&](const ApiError& e) {
    send_error(res, e);
    count(app->name, endpoint, e.status);
  };
  json j;
  try {
    j = json::parse(req.body);
  } catch (const json::exception& e) {
    // nlohmann validates UTF-8 while lexing strings, so invalid UTF-8 lands here too.
    return fail(bad(fmt::format("request body is not valid JSON (UTF-8): {}", e.what()), "",
                    "invalid_json"));
  }
  if (!j.is_object()) return fail(bad("request body must be a JSON object"));
  auto job = std::make_shared<Job>();
  job->chat = chat;
  job->app = app->name;
  job->priority = app->priority;
  job->model = opt_.model_id;
  if (auto e = parse_common(j, *app, job.get())) return fail(*e);
  std::string note;
  if (auto e = parse_structured(j, chat, job.get(), &note)) return fail(*e);
  if (auto e = chat ? parse_chat_prompt(j, job.get(), note) : parse_completion_prompt(j, job.get()))
    return fail(*e);
  if (job->prompt.empty()) return fail(bad("the prompt is empty", chat ? "messages" : "prompt"));
  const int64_t ctx = app->max_context > 0 ? std::min(app->max_context, n_ctx_) : n_ctx_;
  const int64_t np = static_cast<int64_t>(job->prompt.size());
  if (np + 1 > ctx)
    return fail(bad(fmt::format("the prompt has {} tokens; this app's context is {} tokens "
                                "(room for at least one generated token is needed)", np, ctx),
                    chat ? "messages" : "prompt", "context_length_exceeded"));
  job->gen.max_tokens = std::min(job->gen.max_tokens, ctx - np);

  {
    std::lock_guard<std::mutex> lk(mmu_);
    job->id = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", rng_());
  }
  job->created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  job->enqueued = Clock::now();
  {
    std::lock_guard<std::mutex> lk(qmu_);
    if (static_cast<int64_t>(queue_.size()) >= opt_.max_queue) {
      res.set_header("Retry-After", "1");
      return fail(ApiError{503, fmt::format("the server is busy ({} requests waiting); retry "
                                            "later", queue_.size()),
                           "server_error", "", "server_busy"});
    }
    job->seq = seq_++;
    queue_.push(job);
  }
  qcv_.notify_one();

  if (!job->stream) {
    std::unique_lock<std::mutex> lk(job->mu);
    job->cv.wait(lk, [&] { return job->done; });
    lk.unlock();
    if (job->failed) return fail(job->error);
    res.set_content(dump(final_response(*job)), "application/json");
    count(app->name, endpoint, 200);
    return;
  }
  count(app->name, endpoint, 200);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job](size_t, httplib::DataSink& sink) {
        std::unique_lock<std::mutex> lk(job->mu);
        job->cv.wait(lk, [&] { return job->done || !job->events.empty(); });
        std::deque<std::string> evs;
        evs.swap(job->events);
        const bool done = job->done;
        lk.unlock();
        for (const auto& e : evs) {
          const std::string line = "data: " + e + "\n\n";
          if (!sink.write(line.data(), line.size())) {
            job->cancelled = true;  // the client went away: stop generating
            return false;
          }
        }
        if (done) {
          if (job->failed) {
            const std::string line = "data: " + dump(error_json(job->error)) + "\n\n";
            sink.write(line.data(), line.size());
          }
          static const std::string kDone = "data: [DONE]\n\n";
          sink.write(kDone.data(), kDone.size());
          sink.done();
        }
        return true;
      },
      [job](bool) {
        // Runs when the response is finished or abandoned (client disconnect).
        std::lock_guard<std::mutex> lk(job->mu);
        if (!job->done) job->cancelled = true;
      });
}

// The `timings` extension object; constrain_ms (time spent choosing tokens under a schema,
// part of decode_ms) only for constrained replies.
json timings(const Job& job) {
  json t = {{"queue_ms", job.queue_ms}, {"ttft_ms", job.ttft_ms}, {"prefill_ms", job.prefill_ms},
            {"decode_ms", job.decode_ms}, {"cached_tokens", job.cached_tokens}};
  if (job.constrain_ms >= 0) t["constrain_ms"] = job.constrain_ms;
  return t;
}

json Server::usage(const Job& job) const {
  const int64_t np = static_cast<int64_t>(job.prompt.size());
  return json{{"prompt_tokens", np},
              {"completion_tokens", job.completion_tokens},
              {"total_tokens", np + job.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", job.cached_tokens}}}};
}

json Server::final_response(const Job& job) const {
  json choice = {{"index", 0}, {"finish_reason", job.finish_reason}, {"logprobs", nullptr}};
  if (job.chat && job.tool_call) {
    json call = {{"id", job.call_id}, {"type", "function"},
                 {"function", {{"name", job.call_name}, {"arguments", job.call_args}}}};
    choice["message"] = {{"role", "assistant"}, {"content", nullptr},
                         {"tool_calls", json::array({call})}};
  } else if (job.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", job.text}};
  }
  else
    choice["text"] = job.text;
  return json{{"id", job.id},
              {"object", job.chat ? "chat.completion" : "text_completion"},
              {"created", job.created},
              {"model", job.model},
              {"choices", json::array({choice})},
              {"usage", usage(job)},
              {"timings", timings(job)}};
}

json Server::chunk(const Job& job, json choice) const {
  json c = {{"id", job.id},
            {"object", job.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", job.created},
            {"model", job.model}};
  c["choices"] = choice.is_null() ? json::array() : json::array({choice});
  return c;
}

// ---------------------------------------------------------------------------------------
// Worker.

void Server::worker(Session& session) {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(qmu_);
      qcv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.top();
      queue_.pop();
    }
    {
      std::lock_guard<std::mutex> lk(mmu_);
      ++running_;
    }
    job->queue_ms = ms_between(job->enqueued, Clock::now());
    if (job->cancelled) {
      job->failed = true;
      job->error = ApiError{499, "request cancelled", "cancelled", "", "cancelled"};
      job->finish();
    } else {
      process(*job, session);
    }
    {
      std::lock_guard<std::mutex> lk(mmu_);
      --running_;
      AppMetrics& m = am_[job->app];
      if (job->cancelled || job->finish_reason == "cancelled") ++m.cancelled;
    }
  }
}

void Server::process(Job& job, Session& s) {
  const auto t0 = Clock::now();
  const auto& prompt = job.prompt;
  const int64_t np = static_cast<int64_t>(prompt.size());

  // Restore the longest cached prefix of this app (always leaving one token to evaluate, so
  // generation has fresh logits).
  int64_t reuse = 0;
  std::shared_ptr<const KvSnapshot> snap;
  {
    std::unique_lock<std::mutex> lk(cache_mu_);
    cache_cv_.wait(lk, [&] { return filing_[job.app] == 0; });
    snap = cache_.lookup(job.app, prompt, np - 1, kMinReuse, &reuse);
  }
  Status st = snap ? s.load_kv(*snap, reuse) : Status::Ok();
  if (!snap || !st.ok()) {
    s.truncate(0);
    reuse = 0;
  }
  snap.reset();
  job.cached_tokens = reuse;

  // Prefill all but the last token in chunks, reporting progress between chunks.
  const int64_t step = std::max<int64_t>(1, eng_.session_opts.chunk);
  const int64_t todo = np - 1 - reuse;
  const bool report = job.stream && job.progress && todo > step;
  auto progress_event = [&](int64_t processed) {
    json c = chunk(job, nullptr);
    c["prompt_progress"] = {{"total", np}, {"cache", reuse}, {"processed", reuse + processed},
                            {"time_ms", ms_between(t0, Clock::now())}};
    job.push(dump(c));
  };
  if (report) progress_event(0);
  for (int64_t done = 0; done < todo && !job.cancelled;) {
    const int64_t m = std::min(step, todo - done);
    st = s.eval(std::span<const Token>(prompt.data() + reuse + done, static_cast<size_t>(m)),
                false, nullptr);
    if (!st.ok()) break;
    done += m;
    if (report) progress_event(done);
  }
  if (!st.ok()) {
    job.failed = true;
    job.error = ApiError{500, "engine error: " + st.message(), "server_error", "", ""};
    s.truncate(0);
    job.finish();
    return;
  }

  // From here on this session's one-token steps may be batched with other requests'.
  // (Ended as soon as generation is over: the others' steps wait for every decoding session.)
  std::optional<DecodeScope> decoding;
  decoding.emplace(&batcher_, &s);
  bool first = true;
  auto push_text = [&](const std::string& text) {
    json ch = job.chat ? json{{"index", 0}, {"delta", {{"content", text}}},
                              {"logprobs", nullptr}, {"finish_reason", nullptr}}
                       : json{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                              {"finish_reason", nullptr}};
    job.push(dump(chunk(job, ch)));
  };
  auto push_role = [&] {
    if (job.stream && job.chat)
      job.push(dump(chunk(job, {{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                           {"logprobs", nullptr}, {"finish_reason", nullptr}})));
  };
  auto on_text = [&](const std::string& text) {
    if (first) {
      first = false;
      job.ttft_ms = ms_between(t0, Clock::now());
      push_role();
    }
    if (job.stream) push_text(text);
    return !job.cancelled.load();
  };

  // Tool calls: "required" (or a named function) always calls; "auto" calls when the first
  // token (sampled as usual, unconstrained) opens a JSON object, and answers in text (or in
  // the response_format) otherwise. The peeked token is evaluated again by the decoder,
  // with the same sampler seed, so the choice costs one extra token.
  bool use_tools = job.tools == Job::Tools::kRequired;
  if (job.tools == Job::Tools::kAuto && !job.cancelled) {
    std::vector<float> lg;
    st = s.eval(std::span<const Token>(&prompt.back(), 1), false, &lg);
    if (st.ok()) {
      Sampler peek(job.gen.sampling);
      const Token t = peek.sample(lg.data(), static_cast<int64_t>(lg.size()), s.history());
      std::string_view piece = tokens_->piece[static_cast<size_t>(t)];
      while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece[0])))
        piece.remove_prefix(1);
      use_tools = !piece.empty() && piece[0] == '{';
      s.truncate(s.n_past() - 1);
    }
  }
  const auto& schema = use_tools ? job.tool_schema : job.schema;

  Expected<GenerateResult> r = Status::Error("cancelled");
  bool complete = false;
  if (job.cancelled || !st.ok()) {
    if (!st.ok()) r = st;
  } else if (!schema) {
    r = generate(s, std::vector<Token>{prompt.back()}, job.gen, on_text);
  } else {
    // Constrained: stream the JSON text (complete UTF-8 characters only), or for a tool call
    // a first chunk with the function's name once it is written, then the arguments.
    size_t emitted = 0, args_at = 0;
    bool header = false;
    auto on_json = [&](const std::string& text) {
      if (first) {
        first = false;
        job.ttft_ms = ms_between(t0, Clock::now());
        if (!use_tools) push_role();
      }
      if (!job.stream) return !job.cancelled.load();
      if (!use_tools) {
        const size_t safe = utf8_complete_prefix(text);
        if (safe > emitted) push_text(text.substr(emitted, safe - emitted));
        emitted = std::max(emitted, safe);
        return !job.cancelled.load();
      }
      if (!header) {
        for (const auto& name : job.tool_names) {
          const std::string pre = "{\"name\":" + name + ",\"arguments\":";
          if (text.compare(0, pre.size(), pre) != 0) continue;
          header = true;
          args_at = emitted = pre.size();
          job.call_name = json::parse(name).get<std::string>();
          {
            std::lock_guard<std::mutex> lk(mmu_);
            job.call_id = fmt::format("call_{:016x}", rng_());
          }
          json call = {{"index", 0}, {"id", job.call_id}, {"type", "function"},
                       {"function", {{"name", job.call_name}, {"arguments", ""}}}};
          job.push(dump(chunk(job, {{"index", 0},
                                    {"delta", {{"role", "assistant"}, {"content", nullptr},
                                               {"tool_calls", json::array({call})}}},
                                    {"logprobs", nullptr}, {"finish_reason", nullptr}})));
          break;
        }
      }
      if (header && text.size() > args_at + 1) {
        // Hold back the last byte: it may be the call object's closing brace.
        const std::string body = text.substr(args_at, text.size() - 1 - args_at);
        const size_t safe = args_at + utf8_complete_prefix(body);
        if (safe > emitted) {
          json call = {{"index", 0}, {"function", {{"arguments", text.substr(emitted, safe - emitted)}}}};
          job.push(dump(chunk(job, {{"index", 0}, {"delta", {{"tool_calls", json::array({call})}}},
                                    {"logprobs", nullptr}, {"finish_reason", nullptr}})));
          emitted = safe;
        }
      }
      return !job.cancelled.load();
    };
    auto cr = generate_constrained(s, prompt.back(), job.gen.max_tokens, job.gen.sampling,
                                   JsonAcceptor(schema), *tokens_, on_json);
    if (!cr.ok()) {
      r = cr.status();
    } else {
      GenerateResult g;
      g.text = cr->text;
      g.tokens = cr->tokens;
      g.finish_reason = cr->finish_reason;
      g.decode_ms = cr->decode_ms;
      job.constrain_ms = cr->select_ms;
      complete = cr->complete;
      if (use_tools && complete) {
        // {"name":NAME,"arguments":ARGS}: ARGS is the text between the prefix and the last '}'.
        const json call = json::parse(g.text);
        job.tool_call = true;
        job.call_name = call["name"].get<std::string>();
        const std::string pre = "{\"name\":" + dump(call["name"]) + ",\"arguments\":";
        job.call_args = g.text.substr(pre.size(), g.text.size() - 1 - pre.size());
        if (job.call_id.empty()) {
          std::lock_guard<std::mutex> lk(mmu_);
          job.call_id = fmt::format("call_{:016x}", rng_());
        }
        g.finish_reason = "tool_calls";
        if (job.stream && !header) {
          // (not streamed: the header never matched; send the whole call now)
          json c = {{"index", 0}, {"id", job.call_id}, {"type", "function"},
                    {"function", {{"name", job.call_name}, {"arguments", job.call_args}}}};
          job.push(dump(chunk(job, {{"index", 0},
                                    {"delta", {{"role", "assistant"}, {"content", nullptr},
                                               {"tool_calls", json::array({c})}}},
                                    {"logprobs", nullptr}, {"finish_reason", nullptr}})));
        } else if (job.stream && g.text.size() - 1 > emitted) {
          json c = {{"index", 0},
                    {"function", {{"arguments", g.text.substr(emitted, g.text.size() - 1 - emitted)}}}};
          job.push(dump(chunk(job, {{"index", 0}, {"delta", {{"tool_calls", json::array({c})}}},
                                    {"logprobs", nullptr}, {"finish_reason", nullptr}})));
        }
      } else if (job.stream && !use_tools && g.text.size() > emitted) {
        push_text(g.text.substr(emitted));
      } else if (job.stream && use_tools && !header && !g.text.empty()) {
        push_text(g.text);  // a cut-off call (finish_reason "length") goes out as text
      }
      r = std::move(g);
    }
  }
  (void)complete;
  decoding.reset();
  const auto t1 = Clock::now();
  if (!r.ok()) {
    job.failed = true;
    job.error = job.cancelled
                    ? ApiError{499, "request cancelled", "cancelled", "", "cancelled"}
                    : ApiError{500, "engine error: " + r.error(), "server_error", "", ""};
    job.finish();
    return;
  }
  job.text = r->text;
  job.finish_reason = r->finish_reason;
  job.completion_tokens = static_cast<int64_t>(r->tokens.size());
  job.prefill_ms = ms_between(t0, t1) - r->decode_ms;
  job.decode_ms = r->decode_ms;
  if (first) job.ttft_ms = ms_between(t0, t1);
  if (job.stream) {
    if (first && !job.tool_call) push_role();
    json fin = job.chat ? json{{"index", 0}, {"delta", json::object()}, {"logprobs", nullptr},
                               {"finish_reason", job.finish_reason}}
                        : json{{"index", 0}, {"text", ""}, {"logprobs", nullptr},
                               {"finish_reason", job.finish_reason}};
    json c = chunk(job, fin);
    c["timings"] = timings(job);
    job.push(dump(c));
    if (job.include_usage) {
      json u = chunk(job, nullptr);
      u["usage"] = usage(job);
      job.push(dump(u));
    }
  }
  {
    std::lock_guard<std::mutex> lk(mmu_);
    AppMetrics& m = am_[job.app];
    m.prompt_tokens += static_cast<uint64_t>(np);
    m.completion_tokens += static_cast<uint64_t>(job.completion_tokens);
    const int64_t prefilled = np - reuse;
    prefill_tokens_ += static_cast<uint64_t>(prefilled);
    prefill_s_ += job.prefill_ms / 1e3;
    if (job.prefill_ms > 0) last_prefill_tps_ = prefilled / (job.prefill_ms / 1e3);
    if (job.completion_tokens > 1) {
      decode_tokens_ += static_cast<uint64_t>(job.completion_tokens - 1);
      decode_s_ += job.decode_ms / 1e3;
      last_decode_tps_ = r->decode_tok_s();
    }
    last_ttft_ms_ = job.ttft_ms;
  }
  // Keep what the session now holds (prompt + reply) for this app's next turn. Copied after
  // the reply went out, so the copy does not delay it; announced before, so the app's next
  // request (which may arrive as soon as the reply does) waits for it instead of missing it.
  const bool file = !job.cancelled && s.n_past() >= kMinReuse;
  if (file) {
    std::lock_guard<std::mutex> lk(cache_mu_);
    ++filing_[job.app];
  }
  job.finish();
  if (!file) return;
  std::shared_ptr<const KvSnapshot> keep;
  try {
    keep = std::make_shared<const KvSnapshot>(s.save_kv(s.n_past()));
  } catch (const std::exception&) {
    // No memory for the copy: the next turn prefills in full (the waiters must not hang).
  }
  std::lock_guard<std::mutex> lk(cache_mu_);
  if (keep) cache_.insert(job.app, std::move(keep));
  --filing_[job.app];
  cache_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------

std::string Server::metrics() {
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  size_t qlen;
  {
    std::lock_guard<std::mutex> lk(qmu_);
    qlen = queue_.size();
  }
  std::lock_guard<std::mutex> lk(mmu_);
  head("octet_requests_total", "counter", "HTTP generation requests by app, endpoint and status");
  for (const auto& [app, m] : am_)
    for (const auto& [k, v] : m.requests) {
      const size_t bar = k.find('|');
      o += fmt::format("octet_requests_total{{app=\"{}\",endpoint=\"{}\",code=\"{}\"}} {}\n",
                       app, k.substr(0, bar), k.substr(bar + 1), v);
    }
  head("octet_prompt_tokens_total", "counter", "prompt tokens of finished requests");
  for (const auto& [app, m] : am_)
    if (!app.empty()) o += fmt::format("octet_prompt_tokens_total{{app=\"{}\"}} {}\n", app, m.prompt_tokens);
  head("octet_completion_tokens_total", "counter", "generated tokens");
  for (const auto& [app, m] : am_)
    if (!app.empty())
      o += fmt::format("octet_completion_tokens_total{{app=\"{}\"}} {}\n", app, m.completion_tokens);
  head("octet_cancelled_total", "counter", "requests cancelled by a client disconnect");
  for (const auto& [app, m] : am_)
    if (!app.empty()) o += fmt::format("octet_cancelled_total{{app=\"{}\"}} {}\n", app, m.cancelled);
  head("octet_prefill_tokens_total", "counter", "prompt tokens actually prefilled (not cached)");
  o += fmt::format("octet_prefill_tokens_total {}\n", prefill_tokens_);
  head("octet_prefill_seconds_total", "counter", "time spent prefilling");
  o += fmt::format("octet_prefill_seconds_total {:.6f}\n", prefill_s_);
  head("octet_decode_tokens_total", "counter", "tokens decoded after the first of each reply");
  o += fmt::format("octet_decode_tokens_total {}\n", decode_tokens_);
  head("octet_decode_seconds_total", "counter", "time spent decoding");
  o += fmt::format("octet_decode_seconds_total {:.6f}\n", decode_s_);
  head("octet_prefill_tokens_per_second", "gauge", "prefill speed of the last request");
  o += fmt::format("octet_prefill_tokens_per_second {:.3f}\n", last_prefill_tps_);
  head("octet_decode_tokens_per_second", "gauge", "decode speed of the last request");
  o += fmt::format("octet_decode_tokens_per_second {:.3f}\n", last_decode_tps_);
  head("octet_last_ttft_milliseconds", "gauge", "time to first token of the last request (after queueing)");
  o += fmt::format("octet_last_ttft_milliseconds {:.3f}\n", last_ttft_ms_);
  head("octet_queue_length", "gauge", "requests waiting for the engine");
  o += fmt::format("octet_queue_length {}\n", qlen);
  head("octet_requests_running", "gauge", "requests on the engine now");
  o += fmt::format("octet_requests_running {}\n", running_);
  const DecodeBatcher::Stats bs = batcher_.stats();
  head("octet_decode_steps_total", "counter", "decode steps run (several requests' tokens each when batched)");
  o += fmt::format("octet_decode_steps_total {}\n", bs.steps);
  head("octet_decode_step_rows_total", "counter", "tokens those decode steps computed");
  o += fmt::format("octet_decode_step_rows_total {}\n", bs.rows);
  head("octet_decode_batch_limit", "gauge", "most requests in flight, decode steps batched (--batch)");
  o += fmt::format("octet_decode_batch_limit {}\n", std::max<int64_t>(1, opt_.batch));
  std::lock_guard<std::mutex> lk2(cache_mu_);
  const char* names[] = {"hits", "misses", "hit_tokens", "evictions", "entries", "bytes"};
  const char* types[] = {"counter", "counter", "counter", "counter", "gauge", "gauge"};
  for (int i = 0; i < 6; ++i) {
    const std::string n = std::string("octet_cache_") + names[i] + (i < 4 ? "_total" : "");
    head(n.c_str(), types[i], "per-app prefix cache");
    for (const auto& a : apps_) {
      const auto s = cache_.stats(a.name);
      const uint64_t v[] = {s.hits, s.misses, s.hit_tokens, s.evictions, s.entries, s.bytes};
      o += fmt::format("{}{{app=\"{}\"}} {}\n", n, a.name, v[i]);
    }
  }
  head("octet_cache_budget_bytes", "gauge", "prefix cache budget of each app");
  o += fmt::format("octet_cache_budget_bytes {}\n", cache_.budget());
  return o;
}

int Server::run() {
  http_.set_payload_max_length(opt_.max_body_bytes);
  // Every waiting or streaming request holds an HTTP thread: size the pool so the queue
  // limit, not the pool, decides who waits (clients beyond it get a quick 503).
  const size_t n_http = static_cast<size_t>(opt_.max_queue) + 16;
  http_.new_task_queue = [n_http] { return new httplib::ThreadPool(n_http); };
  http_.set_read_timeout(30, 0);
  http_.set_write_timeout(30, 0);
  http_.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
    // Give httplib's own errors (404 route, 413 body too large, 400 bad request line) an
    // OpenAI-style body; responses that already carry one pass through.
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e{res.status, "", "invalid_request_error", "", ""};
    if (res.status == 404) e.message = "no such endpoint", e.code = "not_found";
    else if (res.status == 413) e.message = "request body too large", e.code = "payload_too_large";
    else e.message = fmt::format("HTTP error {}", res.status);
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
    handle_generate(q, r, true);
  });
  http_.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) {
    handle_generate(q, r, false);
  });
  http_.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& r) {
    const AppConfig* app = nullptr;
    if (!admit(q, r, "models", &app)) return;
    json m = {{"id", opt_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "octet"},
              {"context_length", n_ctx_}};
    r.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}),
                  "application/json");
  });
  http_.Get("/health", [](const httplib::Request&, httplib::Response& r) {
    r.set_content(R"({"status":"ok"})", "application/json");
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
    r.set_content(metrics(), "text/plain; version=0.0.4");
  });
  http_.Get("/", [this](const httplib::Request&, httplib::Response& r) {
    r.set_content(opt_.index_html, "text/html; charset=utf-8");
  });

  // SIGINT/SIGTERM only set a flag (the engine's threads exist already, so the signal may
  // land on any thread); a watcher thread turns it into a clean stop.
  static std::atomic<bool> g_stop{false};
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGPIPE, SIG_IGN);

  int port = opt_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(opt_.host);
  } else if (!http_.bind_to_port(opt_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "octet serve: cannot listen on %s:%d\n", opt_.host.c_str(), opt_.port);
    return 1;
  }
  std::vector<std::thread> workers;
  for (auto& s : sessions_) workers.emplace_back([this, p = s.get()] { worker(*p); });
  std::atomic<bool> listening_done{false};
  std::thread sig([this, &listening_done] {
    while (!g_stop && !listening_done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    http_.stop();
  });
  std::fprintf(stderr, "octet serve: listening on http://%s:%d (model %s, %zu app%s, ctx %lld)\n",
               opt_.host.c_str(), port, opt_.model_id.c_str(), apps_.size(),
               apps_.size() == 1 ? "" : "s", static_cast<long long>(n_ctx_));
  const bool ok = http_.listen_after_bind();
  listening_done = true;
  sig.join();
  {
    std::lock_guard<std::mutex> lk(qmu_);
    stopping_ = true;
  }
  qcv_.notify_all();
  for (auto& w : workers) w.join();
  std::fprintf(stderr, "octet serve: stopped\n");
  return ok ? 0 : 1;
}

}  // namespace

int run_server(const EngineRef& engine, const ServerOptions& opt) {
  Server s(engine, opt);
  return s.run();
}

}  // namespace octet::serve
