// GGUF v2/v3 parser. The file is untrusted: every length, count and offset is checked against
// the bytes that remain before it is used, with overflow-safe arithmetic, and every failure
// names what was wrong and where.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "octet/gguf.h"

namespace octet::gguf {

namespace {

// Minimum encoded sizes, used to reject counts that cannot fit in the bytes left.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // key length, value type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset
constexpr int kMaxArrayDepth = 8;                    // nested arrays: bounded recursion
constexpr uint32_t kMaxDims = 4;

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

Status err(const std::string& m) { return Status::Error("gguf: " + m); }

// Printable, bounded rendering of an untrusted name for error messages.
std::string quote(std::string_view s) {
  std::string out = "'";
  size_t n = 0;
  for (unsigned char ch : s) {
    if (++n > 80) {
      out += "...";
      break;
    }
    if (ch >= 0x20 && ch < 0x7f && ch != '\'') {
      out += static_cast<char>(ch);
    } else {
      out += fmt("\\x%02x", ch);
    }
  }
  return out + "'";
}

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    default: return 0;  // STRING, ARRAY, unknown
  }
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  bool read(void* dst, size_t k) {
    if (k > remaining()) return false;
    if (k) std::memcpy(dst, p_ + pos_, k);
    pos_ += k;
    return true;
  }
  template <class T>
  bool get(T& v) { return read(&v, sizeof v); }
  bool skip(uint64_t k) {
    if (k > remaining()) return false;
    pos_ += static_cast<size_t>(k);
    return true;
  }
  const uint8_t* here() const { return p_ + pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

// Reads a length-prefixed string as a view into the buffer.
Status read_str(Cursor& c, std::string_view& out, const std::string& what) {
  uint64_t len;
  const size_t at = c.pos();
  if (!c.get(len)) return err(fmt("truncated file: %s length at offset %zu", what.c_str(), at));
  if (len > c.remaining()) {
    return err(fmt("%s length %" PRIu64 " at offset %zu exceeds the %zu bytes left in the file",
                   what.c_str(), len, at, c.remaining()));
  }
  out = std::string_view(reinterpret_cast<const char*>(c.here()), static_cast<size_t>(len));
  c.skip(len);
  return Status::Ok();
}

// Skips an array body whose element type and count have been read (nested arrays).
Status skip_array(Cursor& c, uint32_t elem, uint64_t count, const std::string& what, int depth) {
  if (!known_value_type(elem)) return err(fmt("%s: unknown array element type %u", what.c_str(), elem));
  const auto et = static_cast<ValueType>(elem);
  if (size_t es = scalar_size(et)) {
    if (count > c.remaining() / es) {
      return err(fmt("%s: array of %" PRIu64 " %s needs more than the %zu bytes left", what.c_str(),
                     count, value_type_name(et), c.remaining()));
    }
    c.skip(count * es);
    return Status::Ok();
  }
  const uint64_t min_elem = et == ValueType::STRING ? 8 : 12;
  if (count > c.remaining() / min_elem) {
    return err(fmt("%s: array of %" PRIu64 " %s needs more than the %zu bytes left", what.c_str(),
                   count, value_type_name(et), c.remaining()));
  }
  if (et == ValueType::ARRAY && depth >= kMaxArrayDepth) {
    return err(fmt("%s: arrays nested deeper than %d levels", what.c_str(), kMaxArrayDepth));
  }
  for (uint64_t k = 0; k < count; ++k) {
    if (et == ValueType::STRING) {
      std::string_view s;
      OCTET_RETURN_IF_ERROR(read_str(c, s, what + " element"));
    } else {
      uint32_t sub;
      uint64_t n;
      if (!c.get(sub) || !c.get(n)) return err(fmt("truncated file: %s nested array header", what.c_str()));
      OCTET_RETURN_IF_ERROR(skip_array(c, sub, n, what, depth + 1));
    }
  }
  return Status::Ok();
}

Status read_value(Cursor& c, ValueType t, Value& v, const std::string& what) {
  v.type = t;
  switch (t) {
    case ValueType::STRING: {
      std::string_view s;
      OCTET_RETURN_IF_ERROR(read_str(c, s, what));
      v.s.assign(s);
      return Status::Ok();
    }
    case ValueType::ARRAY: {
      uint32_t elem;
      uint64_t count;
      if (!c.get(elem) || !c.get(count)) return err(fmt("truncated file: %s array header", what.c_str()));
      if (!known_value_type(elem)) return err(fmt("%s: unknown array element type %u", what.c_str(), elem));
      v.elem_type = static_cast<ValueType>(elem);
      v.count = count;
      if (v.elem_type == ValueType::STRING) {
        if (count > c.remaining() / 8) {
          return err(fmt("%s: array of %" PRIu64 " strings needs more than the %zu bytes left",
                         what.c_str(), count, c.remaining()));
        }
        v.strings.reserve(static_cast<size_t>(count));
        for (uint64_t k = 0; k < count; ++k) {
          std::string_view s;
          OCTET_RETURN_IF_ERROR(read_str(c, s, what + fmt(" element %" PRIu64, k)));
          v.strings.emplace_back(s);
        }
        return Status::Ok();
      }
      if (v.elem_type != ValueType::ARRAY) v.raw = c.here();
      return skip_array(c, elem, count, what, 1);
    }
    default: {
      const size_t n = scalar_size(t);
      uint8_t b[8] = {};
      if (!c.read(b, n)) return err(fmt("truncated file: %s value", what.c_str()));
      switch (t) {
        case ValueType::UINT8: v.u = b[0]; break;
        case ValueType::BOOL: v.u = b[0] != 0; break;
        case ValueType::INT8: v.i = static_cast<int8_t>(b[0]); break;
        case ValueType::UINT16: { uint16_t x; std::memcpy(&x, b, 2); v.u = x; break; }
        case ValueType::INT16: { int16_t x; std::memcpy(&x, b, 2); v.i = x; break; }
        case ValueType::UINT32: { uint32_t x; std::memcpy(&x, b, 4); v.u = x; break; }
        case ValueType::INT32: { int32_t x; std::memcpy(&x, b, 4); v.i = x; break; }
        case ValueType::UINT64: { uint64_t x; std::memcpy(&x, b, 8); v.u = x; break; }
        case ValueType::INT64: { int64_t x; std::memcpy(&x, b, 8); v.i = x; break; }
        case ValueType::FLOAT32: { float x; std::memcpy(&x, b, 4); v.f = x; break; }
        case ValueType::FLOAT64: { double x; std::memcpy(&x, b, 8); v.f = x; break; }
        default: break;
      }
      // Keep the sibling fields consistent so as_int()/as_double() need not care.
      if (t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64) {
        v.f = static_cast<double>(v.i);
      } else if (t != ValueType::FLOAT32 && t != ValueType::FLOAT64) {
        v.f = static_cast<double>(v.u);
      }
      return Status::Ok();
    }
  }
}

}  // namespace

File::~File() {
  MappedFile::unmap(mapping_, size_);
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::unique_ptr<File>> File::open(const std::string& path) {
  OCTET_ASSIGN_OR_RETURN(MappedFile m, MappedFile::open(path));
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->size_ = m.size();
  f->base_ = m.data();
  f->mapping_ = m.release();
  // A second handle for read_rows; without it read_rows reads the mapping (still correct).
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  Status st = f->parse();
  if (!st.ok()) return Status::Error(st.message() + " (in '" + path + "')");
  return f;
}

Expected<std::unique_ptr<File>> File::from_memory(const uint8_t* data, size_t size) {
  if (!data && size) return err("null buffer");
  std::unique_ptr<File> f(new File());
  f->base_ = data;
  f->size_ = size;
  OCTET_RETURN_IF_ERROR(f->parse());
  return f;
}

Status File::parse() {
  try {
    Cursor c(base_, size_);
    char magic[4];
    if (!c.read(magic, 4)) return err(fmt("file too small (%zu bytes) to be GGUF", size_));
    if (std::memcmp(magic, "GGUF", 4) != 0) {
      return err("bad magic " + quote(std::string_view(magic, 4)) + " (expected 'GGUF')");
    }
    if (!c.get(version_)) return err("truncated file: no version after the magic");
    if (version_ != 2 && version_ != 3) {
      if (version_ == 1) return err("version 1 files are not supported (only GGUF v2 and v3)");
      const uint32_t swapped = __builtin_bswap32(version_);
      if (swapped >= 1 && swapped <= 3) return err("big-endian GGUF files are not supported");
      return err(fmt("unsupported version %u (only GGUF v2 and v3)", version_));
    }
    uint64_t n_tensors, n_kv;
    if (!c.get(n_tensors) || !c.get(n_kv)) return err("truncated file: header counts");
    if (n_kv > c.remaining() / kMinKvBytes) {
      return err(fmt("metadata KV count %" PRIu64 " is impossible in a file of %zu bytes", n_kv, size_));
    }
    if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
      return err(fmt("tensor count %" PRIu64 " is impossible in a file of %zu bytes", n_tensors, size_));
    }
    if (n_kv * kMinKvBytes + n_tensors * kMinTensorInfoBytes > c.remaining()) {
      return err(fmt("%" PRIu64 " KVs and %" PRIu64 " tensors cannot fit in a file of %zu bytes", n_kv,
                     n_tensors, size_));
    }

    kvs_.reserve(static_cast<size_t>(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
      std::string_view key;
      OCTET_RETURN_IF_ERROR(read_str(c, key, fmt("kv #%" PRIu64 " key", k)));
      const std::string what = fmt("kv #%" PRIu64 " ", k) + quote(key);
      uint32_t vt;
      if (!c.get(vt)) return err("truncated file: " + what + " value type");
      if (!known_value_type(vt)) return err(what + fmt(" has unknown value type %u", vt));
      if (!kv_index_.emplace(key, kvs_.size()).second) return err("duplicate metadata key " + quote(key));
      KV kv;
      kv.key.assign(key);
      OCTET_RETURN_IF_ERROR(read_value(c, static_cast<ValueType>(vt), kv.value, what));
      kvs_.push_back(std::move(kv));
    }

    alignment_ = 32;
    if (const Value* a = find("general.alignment")) {
      const auto v = a->as_int();
      if (!v || a->type == ValueType::BOOL) {
        return err(std::string("general.alignment must be an integer, not ") + value_type_name(a->type));
      }
      if (*v <= 0 || (*v & (*v - 1)) != 0) {
        return err(fmt("general.alignment %" PRId64 " is not a power of two", *v));
      }
      alignment_ = static_cast<uint64_t>(*v);
    }

    tensors_.reserve(static_cast<size_t>(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
      std::string_view name;
      OCTET_RETURN_IF_ERROR(read_str(c, name, fmt("tensor #%" PRIu64 " name", k)));
      const std::string what = "tensor " + quote(name);
      TensorInfo t;
      t.name.assign(name);
      uint32_t n_dims;
      if (!c.get(n_dims)) return err("truncated file: " + what + " n_dims");
      if (n_dims > kMaxDims) return err(what + fmt(" has %u dimensions (at most %u)", n_dims, kMaxDims));
      int64_t nel = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne;
        if (!c.get(ne)) return err("truncated file: " + what + " dims");
        if (ne == 0) return err(what + fmt(" has a zero dimension ne[%u]", d));
        if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return err(what + fmt(" has a negative dimension ne[%u] = %" PRId64, d, static_cast<int64_t>(ne)));
        }
        if (__builtin_mul_overflow(nel, static_cast<int64_t>(ne), &nel)) {
          return err(what + " element count overflows int64");
        }
        t.dims.push_back(static_cast<int64_t>(ne));
      }
      uint32_t type;
      if (!c.get(type)) return err("truncated file: " + what + " type");
      const TypeInfo* ti = type_info(type);
      if (!ti) return err(what + fmt(" has unknown type %u", type));
      t.type = static_cast<Type>(type);
      if (t.ne(0) % ti->block_size != 0) {
        return err(what + fmt(" row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                              t.ne(0), ti->name, ti->block_size));
      }
      if (__builtin_mul_overflow(static_cast<uint64_t>(nel / ti->block_size),
                                 static_cast<uint64_t>(ti->type_size), &t.nbytes)) {
        return err(what + " byte size overflows");
      }
      if (!c.get(t.offset)) return err("truncated file: " + what + " offset");
      if (!tensor_index_.emplace(name, tensors_.size()).second) return err("duplicate tensor name " + quote(name));
      tensors_.push_back(std::move(t));
    }

    // Tensor data starts at the next multiple of the alignment after the tables.
    const uint64_t pos = c.pos();
    const uint64_t pad = (alignment_ - pos % alignment_) % alignment_;
    if (__builtin_add_overflow(pos, pad, &data_offset_)) return err("data offset overflows");

    for (TensorInfo& t : tensors_) {
      const std::string what = "tensor " + quote(t.name);
      if (t.offset % alignment_ != 0) {
        return err(what + fmt(" data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                              t.offset, alignment_));
      }
      uint64_t begin, end;
      if (__builtin_add_overflow(data_offset_, t.offset, &begin)) {
        return err(what + fmt(" data offset %" PRIu64 " overflows", t.offset));
      }
      if (__builtin_add_overflow(begin, t.nbytes, &end) || end > size_) {
        return err(what + fmt(" data [%" PRIu64 ", %" PRIu64 " + %" PRIu64 ") beyond end of file (size %zu)",
                              begin, begin, t.nbytes, size_));
      }
      t.data = base_ + begin;
    }

    // Tensors may come in any order, but their byte ranges must not overlap.
    std::vector<const TensorInfo*> by_off;
    by_off.reserve(tensors_.size());
    for (const TensorInfo& t : tensors_) by_off.push_back(&t);
    std::sort(by_off.begin(), by_off.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_off.size(); ++k) {
      const TensorInfo* a = by_off[k - 1];
      const TensorInfo* b = by_off[k];
      if (b->offset < a->offset + a->nbytes) {
        return err(fmt("tensors %s [%" PRIu64 ", %" PRIu64 ") and %s [%" PRIu64 ", %" PRIu64 ") overlap",
                       quote(a->name).c_str(), a->offset, a->offset + a->nbytes, quote(b->name).c_str(),
                       b->offset, b->offset + b->nbytes));
      }
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return err("out of memory while parsing the metadata");
  }
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::STRING) return std::nullopt;
  return v->s;
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->is_integer()) return std::nullopt;
  return v->as_int();
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  return v ? v->as_double() : std::nullopt;
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::BOOL) return std::nullopt;
  return v->u != 0;
}

const std::vector<std::string>* File::get_strings(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) return nullptr;
  return &v->strings;
}

std::optional<std::vector<float>> File::get_f32_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::ARRAY || !v->raw || v->elem_type == ValueType::BOOL) return std::nullopt;
  std::vector<float> out(static_cast<size_t>(v->count));
  for (uint64_t k = 0; k < v->count; ++k) out[k] = static_cast<float>(v->array_number(k));
  return out;
}

std::optional<std::vector<int32_t>> File::get_i32_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::ARRAY || !v->raw) return std::nullopt;
  switch (v->elem_type) {
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
    case ValueType::BOOL: return std::nullopt;
    default: break;
  }
  std::vector<int32_t> out(static_cast<size_t>(v->count));
  for (uint64_t k = 0; k < v->count; ++k) {
    const double x = v->array_number(k);  // exact for every integer that fits in int32
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) return std::nullopt;
    out[k] = static_cast<int32_t>(x);
  }
  return out;
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Status File::row_span(const TensorInfo& t, int64_t row0, int64_t nrows, uint64_t* off,
                      uint64_t* len) const {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t.type));
  if (!ti) return err("tensor " + quote(t.name) + " has an unknown type");
  // The TensorInfo must describe bytes inside this file (it could be a caller's copy).
  if (!t.data || t.data < base_ || t.nbytes > size_ ||
      static_cast<size_t>(t.data - base_) > size_ - t.nbytes) {
    return err("tensor " + quote(t.name) + " does not belong to this file");
  }
  const int64_t rows = t.n_rows();
  if (row0 < 0 || nrows < 0 || row0 > rows || nrows > rows - row0) {
    return err(fmt("tensor %s rows [%" PRId64 ", %" PRId64 "+%" PRId64 ") out of range (%" PRId64 " rows)",
                   quote(t.name).c_str(), row0, row0, nrows, rows));
  }
  const uint64_t rb = row_bytes(t.type, t.row_len());
  uint64_t end;
  if (t.row_len() % ti->block_size != 0 ||
      __builtin_mul_overflow(static_cast<uint64_t>(row0 + nrows), rb, &end) || end > t.nbytes) {
    return err("tensor " + quote(t.name) + " shape does not match its byte size");
  }
  *off = static_cast<uint64_t>(row0) * rb;
  *len = static_cast<uint64_t>(nrows) * rb;
  return Status::Ok();
}

Status File::dequantize_rows(const TensorInfo& t, int64_t row0, int64_t nrows, float* dst) const {
  uint64_t off = 0, len = 0;
  OCTET_RETURN_IF_ERROR(row_span(t, row0, nrows, &off, &len));
  return dequantize(t.type, t.data + off, dst, nrows * t.row_len());
}

Status File::read_rows(const TensorInfo& t, int64_t row0, int64_t nrows, float* dst) const {
  if (fd_ < 0) return dequantize_rows(t, row0, nrows, dst);
  uint64_t off = 0, len = 0;
  OCTET_RETURN_IF_ERROR(row_span(t, row0, nrows, &off, &len));
  thread_local std::vector<uint8_t> bytes;
  bytes.resize(static_cast<size_t>(len));
  const off_t pos = static_cast<off_t>(static_cast<uint64_t>(t.data - base_) + off);
  for (uint64_t got = 0; got < len;) {
    const ssize_t r = ::pread(fd_, bytes.data() + got, len - got, pos + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return err(fmt("reading tensor %s from '%s': %s", quote(t.name).c_str(), path_.c_str(),
                     r < 0 ? std::strerror(errno) : "unexpected end of file"));
    got += static_cast<uint64_t>(r);
  }
  return dequantize(t.type, bytes.data(), dst, nrows * t.row_len());
}

Expected<std::vector<float>> File::to_float(const TensorInfo& t) const {
  try {
    std::vector<float> out(static_cast<size_t>(t.n_elements()));
    OCTET_RETURN_IF_ERROR(dequantize_rows(t, 0, t.n_rows(), out.data()));
    return out;
  } catch (const std::bad_alloc&) {
    return err(fmt("out of memory converting tensor %s (%" PRId64 " elements) to float", quote(t.name).c_str(),
                   t.n_elements()));
  } catch (const std::length_error&) {
    return err("tensor " + quote(t.name) + " is too large to convert to float");
  }
}

}  // namespace octet::gguf
