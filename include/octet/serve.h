// `octet serve`: an OpenAI-compatible HTTP service over one loaded model. `batch` worker
// threads (one working Session each) share the engine, their decode steps batched; HTTP
// threads parse and validate requests and put them on a priority queue. A per-app prefix cache keeps KV snapshots of earlier
// conversations so a follow-up only prefills its new tokens. See docs/serve.md.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "octet/runtime.h"
#include "octet/status.h"

namespace octet::serve {

enum class Priority { kForeground = 0, kBackground = 1 };

struct AppConfig {
  std::string name;
  std::string key;              // API key (Bearer); empty: no key (only without an apps file)
  Priority priority = Priority::kForeground;
  int64_t max_context = 0;      // prompt + completion tokens; 0: the server's context
  int64_t max_tokens = 0;       // per request; 0: no limit beyond the context
  int64_t requests_per_minute = 0;  // 0: unlimited
};

// Parses an apps file: {"apps": [{"name", "key", "priority", "max_context", "max_tokens",
// "requests_per_minute"}, ...]}. Names and keys must be unique and non-empty.
Expected<std::vector<AppConfig>> parse_apps(const std::string& json_text);

// Per-app LRU of KV snapshots. Every app has its own partition with its own byte budget:
// lookups, inserts and evictions of one app only ever touch that app's partition, so an app
// can neither read another app's prefixes nor probe them through hits, timing or evictions.
class PrefixCache {
 public:
  explicit PrefixCache(size_t budget_bytes_per_app) : budget_(budget_bytes_per_app) {}
  struct Stats {
    uint64_t hits = 0, misses = 0, hit_tokens = 0, evictions = 0, entries = 0;
    size_t bytes = 0;
  };
  // The snapshot of `app` sharing the longest prefix with prompt (at most max_reuse tokens
  // counted), or nullptr; *reuse gets the shared length. A hit needs >= min_reuse tokens.
  std::shared_ptr<const KvSnapshot> lookup(const std::string& app,
                                           const std::vector<Token>& prompt, int64_t max_reuse,
                                           int64_t min_reuse, int64_t* reuse);
  // Stores a snapshot for app; drops the app's entries that are prefixes of it, then evicts
  // the app's least recently used entries until its budget holds. Snapshots over the budget
  // are not kept.
  void insert(const std::string& app, std::shared_ptr<const KvSnapshot> snap);
  Stats stats(const std::string& app) const;
  size_t budget() const { return budget_; }

 private:
  struct Part {
    std::list<std::shared_ptr<const KvSnapshot>> lru;  // front: most recently used
    Stats st;
  };
  size_t budget_;
  std::map<std::string, Part> parts_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string model_id;         // the name /v1/models reports and requests must use
  size_t cache_bytes = 512u << 20;  // split evenly between the apps
  size_t max_body_bytes = 4u << 20;
  int64_t default_max_tokens = 256;  // when a request gives none
  // Requests waiting for the engine; more get 503 (with Retry-After). HTTP threads are sized
  // from it (max_queue + 16), so excess clients are refused rather than left unanswered.
  int64_t max_queue = 32;
  std::vector<AppConfig> apps;  // empty: one open app "default" without a key
  std::string index_html;       // the chat page served at GET /
  bool verbose = false;
  // Requests in flight at once (one Session each); their decode steps run as one batch
  // (linears over B rows). 1: one request at a time, no batching.
  int64_t batch = 4;
};

struct EngineRef {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Weights> weights;
  SessionOptions session_opts;
  ThreadPool* pool = nullptr;
};

// Binds, serves until the process is stopped (SIGINT/SIGTERM end it cleanly), and returns a
// process exit code. Prints "octet serve: listening on http://HOST:PORT" once bound.
int run_server(const EngineRef& engine, const ServerOptions& opt);

}  // namespace octet::serve
