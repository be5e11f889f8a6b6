// Per-app LRU of KV snapshots (docs/serve.md, "Context cache").
#include <algorithm>

#include "octet/serve.h"

namespace octet::serve {

std::shared_ptr<const KvSnapshot> PrefixCache::lookup(const std::string& app,
                                                      const std::vector<Token>& prompt,
                                                      int64_t max_reuse, int64_t min_reuse,
                                                      int64_t* reuse) {
  *reuse = 0;
  Part& p = parts_[app];
  auto best = p.lru.end();
  int64_t best_len = 0;
  for (auto it = p.lru.begin(); it != p.lru.end(); ++it) {
    const auto& t = (*it)->tokens;
    const size_t lim = std::min({t.size(), prompt.size(), static_cast<size_t>(max_reuse)});
    size_t n = 0;
    while (n < lim && t[n] == prompt[n]) ++n;
    if (static_cast<int64_t>(n) > best_len) {
      best_len = static_cast<int64_t>(n);
      best = it;
    }
  }
  if (best == p.lru.end() || best_len < min_reuse) {
    ++p.st.misses;
    return nullptr;
  }
  ++p.st.hits;
  p.st.hit_tokens += static_cast<uint64_t>(best_len);
  p.lru.splice(p.lru.begin(), p.lru, best);
  *reuse = best_len;
  return p.lru.front();
}

void PrefixCache::insert(const std::string& app, std::shared_ptr<const KvSnapshot> snap) {
  Part& p = parts_[app];
  const size_t b = snap->bytes();
  if (b > budget_) return;
  auto drop = [&](std::list<std::shared_ptr<const KvSnapshot>>::iterator it) {
    p.st.bytes -= (*it)->bytes();
    --p.st.entries;
    return p.lru.erase(it);
  };
  // An entry that the new one extends (or equals) is now redundant.
  for (auto it = p.lru.begin(); it != p.lru.end();) {
    const auto& t = (*it)->tokens;
    if (t.size() <= snap->tokens.size() && std::equal(t.begin(), t.end(), snap->tokens.begin()))
      it = drop(it);
    else
      ++it;
  }
  while (p.st.bytes + b > budget_ && !p.lru.empty()) {
    drop(std::prev(p.lru.end()));
    ++p.st.evictions;
  }
  p.st.bytes += b;
  ++p.st.entries;
  p.lru.push_front(std::move(snap));
}

PrefixCache::Stats PrefixCache::stats(const std::string& app) const {
  auto it = parts_.find(app);
  return it == parts_.end() ? Stats{} : it->second.st;
}

}  // namespace octet::serve
