// Steps the decode phases of concurrent requests together (docs/serve.md, "Batching").
// Every server Session routes eval() here (Session::set_eval_hook). Model work is serialised
// on one engine lock (the sessions share one thread pool). Single-token evals of sessions in
// their decode phase wait until every decoding session has one ready, then one thread runs
// them as one BatchDecoder step (linears once over B rows); everything else (prefill chunks,
// speculative multi-token checks) runs alone under the lock. Results are bit for bit those
// of separate evals (tests/batch_test.cpp), so batching changes timing, never text.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <vector>

#include "octet/batch.h"
#include "octet/runtime.h"

namespace octet::serve {

class DecodeBatcher final : public EvalHook {
 public:
  DecodeBatcher(ThreadPool* pool, int64_t max_batch)
      : max_batch_(std::max<int64_t>(1, max_batch)), dec_(pool) {}
  Status eval(Session& s, std::span<const Token> toks, bool all_logits,
              std::vector<float>* logits) override;
  // s enters / leaves its decode phase: while in it, its single-token evals are batched.
  void begin(Session* s);
  void end(Session* s);
  struct Stats {
    uint64_t steps = 0, rows = 0;  // decode steps run (batched or alone) and their tokens
    uint64_t max_rows = 0;
  };
  Stats stats();

 private:
  struct Req {
    Session* s;
    Token t;
    std::vector<float>* logits;
    Status st;
    bool done = false;
  };
  void run(const std::vector<Req*>& batch);  // under engine_

  const int64_t max_batch_;
  std::mutex engine_;  // one model computation at a time
  std::mutex mu_;      // guards everything below
  std::condition_variable cv_;
  std::set<Session*> decoding_;
  int64_t direct_ = 0;  // decoding sessions inside a non-batched eval
  std::vector<Req*> pending_;
  bool leading_ = false;  // a thread is running a batch
  BatchDecoder dec_;      // under engine_
  Stats st_;
};

// Marks a session as decoding for a scope.
class DecodeScope {
 public:
  DecodeScope(DecodeBatcher* b, Session* s) : b_(b), s_(s) { b_->begin(s_); }
  ~DecodeScope() { b_->end(s_); }
  DecodeScope(const DecodeScope&) = delete;
  DecodeScope& operator=(const DecodeScope&) = delete;

 private:
  DecodeBatcher* b_;
  Session* s_;
};

}  // namespace octet::serve
