#include "octet/session_file.h"

#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <vector>

namespace octet {

namespace {
constexpr char kMagic[8] = {'O', 'C', 'T', 'S', 'E', 'S', 'S', '\0'};
constexpr uint32_t kVersion = 1;

uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct Writer {
  std::vector<uint8_t> buf;
  template <class T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  template <class T>
  void array(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    buf.insert(buf.end(), p, p + v.size() * sizeof(T));
  }
};

struct Reader {
  const std::vector<uint8_t>& buf;
  size_t at = 0;
  bool ok = true;
  template <class T>
  T get() {
    T v{};
    if (at + sizeof(T) > buf.size()) {
      ok = false;
      return v;
    }
    std::memcpy(&v, buf.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  template <class T>
  void array(std::vector<T>* v) {
    const uint64_t n = get<uint64_t>();
    if (!ok || n > (buf.size() - at) / sizeof(T)) {
      ok = false;
      return;
    }
    v->resize(static_cast<size_t>(n));
    std::memcpy(v->data(), buf.data() + at, static_cast<size_t>(n) * sizeof(T));
    at += static_cast<size_t>(n) * sizeof(T);
  }
};

struct Shape {
  int64_t n_embd, n_layer, n_head_kv, head_dim, window;
};
Shape shape_of(const Model& m) {
  const HParams& hp = m.hparams();
  return {hp.n_embd, hp.n_layer, hp.n_head_kv, hp.head_dim, hp.sliding_window};
}
}  // namespace

uint64_t model_fingerprint(const Model& m) {
  const gguf::File& f = m.file();
  const uint8_t* base = f.base();
  const size_t hdr = static_cast<size_t>(std::min<uint64_t>(f.data_offset(), f.size()));
  uint64_t h = fnv1a(base, hdr);
  for (size_t at = hdr; at < f.size(); at += size_t{1} << 20)
    h = fnv1a(base + at, std::min<size_t>(64, f.size() - at), h);
  return h;
}

Status save_session_file(const std::string& path, const Model& m, const KvSnapshot& s) {
  Writer w;
  w.buf.insert(w.buf.end(), kMagic, kMagic + 8);
  w.put(kVersion);
  w.put<uint64_t>(m.file().size());
  w.put<uint64_t>(model_fingerprint(m));
  const Shape sh = shape_of(m);
  for (int64_t v : {sh.n_embd, sh.n_layer, sh.n_head_kv, sh.head_dim, sh.window}) w.put(v);
  w.put<uint32_t>(static_cast<uint32_t>(s.type));
  w.put<int64_t>(s.window_first);
  w.array(s.tokens);
  w.array(s.k);
  w.array(s.v);
  w.array(s.kq);
  w.array(s.vq);
  w.array(s.k_scale);
  w.array(s.v_scale);
  w.put<uint64_t>(fnv1a(w.buf.data(), w.buf.size()));
  // Write to a temporary name and rename, so a crash never leaves a half-written session.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(w.buf.data()), static_cast<std::streamsize>(w.buf.size()));
    if (!out) return Status::Error("session: cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Error("session: cannot rename " + tmp + " to " + path);
  return Status::Ok();
}

Expected<KvSnapshot> load_session_file(const std::string& path, const Model& m) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("session: cannot open " + path);
  const std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) {
    return Status::Error("session file " + path + ": " + why);
  };
  if (buf.size() < 8 + 4 + 8 || std::memcmp(buf.data(), kMagic, 8) != 0)
    return bad("not an octet session file");
  if (fnv1a(buf.data(), buf.size() - 8) !=
      [&] { uint64_t h; std::memcpy(&h, buf.data() + buf.size() - 8, 8); return h; }())
    return bad("checksum mismatch (truncated or corrupted)");
  Reader r{buf, 8};
  const uint32_t ver = r.get<uint32_t>();
  if (ver != kVersion) return bad(fmt::format("version {} (this octet reads {})", ver, kVersion));
  const uint64_t size = r.get<uint64_t>(), fp = r.get<uint64_t>();
  if (size != m.file().size() || fp != model_fingerprint(m))
    return bad("made with another model file (size/fingerprint differ)");
  const Shape sh = shape_of(m);
  for (int64_t want : {sh.n_embd, sh.n_layer, sh.n_head_kv, sh.head_dim, sh.window})
    if (r.get<int64_t>() != want) return bad("model shape differs");
  KvSnapshot s;
  const uint32_t type = r.get<uint32_t>();
  if (type > static_cast<uint32_t>(kernels::KvType::kInt8)) return bad("unknown KV type");
  s.type = static_cast<kernels::KvType>(type);
  s.window_first = r.get<int64_t>();
  r.array(&s.tokens);
  r.array(&s.k);
  r.array(&s.v);
  r.array(&s.kq);
  r.array(&s.vq);
  r.array(&s.k_scale);
  r.array(&s.v_scale);
  if (!r.ok || r.at + 8 != buf.size()) return bad("malformed");
  for (Token t : s.tokens)
    if (t < 0 || t >= m.hparams().n_vocab) return bad("token id out of range");
  return s;
}

}  // namespace octet
