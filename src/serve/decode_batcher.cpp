#include "decode_batcher.h"

#include <algorithm>

namespace octet::serve {

void DecodeBatcher::begin(Session* s) {
  std::lock_guard<std::mutex> lk(mu_);
  decoding_.insert(s);
}

void DecodeBatcher::end(Session* s) {
  std::lock_guard<std::mutex> lk(mu_);
  decoding_.erase(s);
  cv_.notify_all();  // the others may now all be waiting: one of them leads
}

DecodeBatcher::Stats DecodeBatcher::stats() {
  std::lock_guard<std::mutex> lk(mu_);
  return st_;
}

Status DecodeBatcher::eval(Session& s, std::span<const Token> toks, bool all_logits,
                           std::vector<float>* logits) {
  std::unique_lock<std::mutex> lk(mu_);
  const bool decoding = decoding_.count(&s) > 0;
  if (toks.size() != 1 || !decoding || max_batch_ == 1) {
    if (decoding) ++direct_;
    lk.unlock();
    Status st = Status::Ok();
    {
      std::lock_guard<std::mutex> e(engine_);
      st = s.eval(toks, all_logits, logits);  // the hook is off while it runs: direct
    }
    lk.lock();
    if (decoding) {
      --direct_;
      if (toks.size() == 1) {
        ++st_.steps;
        ++st_.rows;
        st_.max_rows = std::max<uint64_t>(st_.max_rows, 1);
      }
      cv_.notify_all();
    }
    return st;
  }
  Req r{&s, toks[0], logits, Status::Ok()};
  pending_.push_back(&r);
  cv_.notify_all();
  while (!r.done) {
    // Lead a step once every decoding session is waiting here (or busy in a direct eval,
    // which holds the engine anyway): waiting longer would only add latency.
    const int64_t ready = static_cast<int64_t>(pending_.size()) + direct_;
    if (!leading_ && !pending_.empty() && ready >= static_cast<int64_t>(decoding_.size())) {
      leading_ = true;
      const size_t take = std::min(pending_.size(), static_cast<size_t>(max_batch_));
      std::vector<Req*> batch(pending_.begin(), pending_.begin() + take);
      pending_.erase(pending_.begin(), pending_.begin() + take);
      lk.unlock();
      {
        std::lock_guard<std::mutex> e(engine_);
        run(batch);
      }
      lk.lock();
      leading_ = false;
      ++st_.steps;
      st_.rows += batch.size();
      st_.max_rows = std::max<uint64_t>(st_.max_rows, batch.size());
      for (Req* q : batch) q->done = true;
      cv_.notify_all();
      continue;
    }
    cv_.wait(lk);
  }
  return r.st;
}

void DecodeBatcher::run(const std::vector<Req*>& batch) {
  // Each session waiting here is inside its own eval() (hook off), so s->eval is direct.
  if (batch.size() == 1) {
    Req& q = *batch[0];
    q.st = q.s->eval(std::span<const Token>(&q.t, 1), false, q.logits);
    return;
  }
  std::vector<Session*> ss;
  std::vector<Token> toks;
  std::vector<std::vector<float>*> lg;
  for (Req* q : batch) {
    ss.push_back(q->s);
    toks.push_back(q->t);
    lg.push_back(q->logits);
  }
  if (dec_.step(ss, toks, lg).ok()) return;
  // A bad row (e.g. a full context) fails the whole step before anything moved: run them one
  // by one so each request gets its own result.
  for (Req* q : batch) q->st = q->s->eval(std::span<const Token>(&q->t, 1), false, q->logits);
}

}  // namespace octet::serve
