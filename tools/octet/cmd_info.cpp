// `octet info -m MODEL`: what is inside a GGUF file (metadata, tensor table, sizes), as text
// or JSON; `--dump TENSOR -o FILE` writes one tensor dequantised to raw float32, and
// `--dump-all FILE [--max-rows N]` every tensor (its first N rows), concatenated in file order
// (used by the Python oracle tests to check every dequantiser in one run).
#include <CLI/CLI.hpp>
#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <vector>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "octet/gguf.h"

namespace {

using octet::gguf::File;
using octet::gguf::TensorInfo;
using octet::gguf::Value;
using octet::gguf::ValueType;

struct InfoOptions {
  std::string model;
  std::string dump;
  std::string out;
  std::string dump_all;
  int64_t max_rows = 0;
  bool json = false;
  uint64_t max_array = 8;
};

std::string dims_str(const TensorInfo& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

// Keys and tensor names come from an untrusted file: escape control bytes before printing.
std::string printable(const std::string& s, size_t max = 96) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max) return out + "...";
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

bool write_floats(std::FILE* fp, const std::vector<float>& v) {
  return std::fwrite(v.data(), sizeof(float), v.size(), fp) == v.size();  // x86/arm: little-endian
}

// Every tensor (at most max_rows rows of each when max_rows > 0) as float32, in file order.
int dump_all(const File& f, const std::string& path, int64_t max_rows) {
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) {
    std::fprintf(stderr, "octet info: cannot create '%s'\n", path.c_str());
    return 1;
  }
  bool ok = true;
  std::vector<float> buf;
  for (const TensorInfo& t : f.tensors()) {
    const int64_t rows = max_rows > 0 ? std::min(max_rows, t.n_rows()) : t.n_rows();
    buf.resize(static_cast<size_t>(rows * t.row_len()));
    auto st = f.dequantize_rows(t, 0, rows, buf.data());
    if (!st.ok()) {
      std::fprintf(stderr, "octet info: tensor '%s': %s\n", printable(t.name).c_str(), st.message().c_str());
      ok = false;
      break;
    }
    if (!write_floats(fp, buf)) {
      ok = false;
      break;
    }
  }
  if (std::fclose(fp) != 0) ok = false;
  if (!ok) {
    std::fprintf(stderr, "octet info: writing '%s' failed\n", path.c_str());
    std::remove(path.c_str());
  }
  return ok ? 0 : 1;
}

// 1234567 -> "1,234,567"
std::string grouped(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

nlohmann::json value_json(const Value& v, uint64_t max_array) {
  using nlohmann::json;
  switch (v.type) {
    case ValueType::STRING: return v.s;
    case ValueType::BOOL: return v.u != 0;
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return v.f;
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64: return v.i;
    case ValueType::ARRAY: {
      json a = json::object();
      a["elem_type"] = octet::gguf::value_type_name(v.elem_type);
      a["count"] = v.count;
      json items = json::array();
      const uint64_t n = (max_array == 0 || v.count < max_array) ? v.count : max_array;
      for (uint64_t k = 0; k < n && v.elem_type != ValueType::ARRAY; ++k) {
        if (v.elem_type == ValueType::STRING) {
          items.push_back(v.strings[k]);
        } else if (v.elem_type == ValueType::BOOL) {
          items.push_back(v.array_number(k) != 0);
        } else {
          items.push_back(v.array_number(k));
        }
      }
      a["values"] = std::move(items);
      a["truncated"] = n < v.count;
      return a;
    }
    default: return v.u;
  }
}

int run_info(const InfoOptions& o) {
  auto opened = File::open(o.model);
  if (!opened.ok()) {
    std::fprintf(stderr, "octet info: %s\n", opened.error().c_str());
    return 1;
  }
  const File& f = **opened;

  if (!o.dump_all.empty()) return dump_all(f, o.dump_all, o.max_rows);
  if (!o.dump.empty()) {
    if (o.out.empty()) {
      std::fprintf(stderr, "octet info: --dump needs -o FILE\n");
      return 1;
    }
    const TensorInfo* t = f.tensor(o.dump);
    if (!t) {
      std::fprintf(stderr, "octet info: no tensor '%s' in %s\n", o.dump.c_str(), o.model.c_str());
      return 1;
    }
    auto data = f.to_float(*t);
    if (!data.ok()) {
      std::fprintf(stderr, "octet info: %s\n", data.error().c_str());
      return 1;
    }
    std::FILE* fp = std::fopen(o.out.c_str(), "wb");
    if (!fp) {
      std::fprintf(stderr, "octet info: cannot create '%s'\n", o.out.c_str());
      return 1;
    }
    const bool ok = write_floats(fp, *data);
    if (std::fclose(fp) != 0 || !ok) {
      std::fprintf(stderr, "octet info: writing '%s' failed\n", o.out.c_str());
      return 1;
    }
    return 0;
  }

  uint64_t params = 0, total = 0;
  struct Count {
    uint64_t tensors = 0, bytes = 0, params = 0;
  };
  std::map<std::string, Count> by_type;
  for (const auto& t : f.tensors()) {
    params += static_cast<uint64_t>(t.n_elements());
    total += t.nbytes;
    Count& c = by_type[octet::gguf::type_name(static_cast<uint32_t>(t.type))];
    c.tensors++;
    c.bytes += t.nbytes;
    c.params += static_cast<uint64_t>(t.n_elements());
  }

  if (o.json) {
    using nlohmann::json;
    json j;
    j["path"] = o.model;
    j["version"] = f.version();
    j["alignment"] = f.alignment();
    j["data_offset"] = f.data_offset();
    j["file_size"] = f.size();
    json meta = json::object();
    json types = json::object();
    for (const auto& kv : f.kvs()) {
      meta[kv.key] = value_json(kv.value, o.max_array);
      types[kv.key] = octet::gguf::value_type_name(kv.value.type);
    }
    j["metadata"] = std::move(meta);
    j["metadata_types"] = std::move(types);
    json ts = json::array();
    for (const auto& t : f.tensors()) {
      ts.push_back({{"name", t.name},
                    {"type", octet::gguf::type_name(static_cast<uint32_t>(t.type))},
                    {"type_id", static_cast<uint32_t>(t.type)},
                    {"dims", t.dims},
                    {"offset", f.data_offset() + t.offset},
                    {"nbytes", t.nbytes}});
    }
    j["tensors"] = std::move(ts);
    json counts = json::object();
    for (const auto& [name, c] : by_type) counts[name] = {{"tensors", c.tensors}, {"bytes", c.bytes}, {"params", c.params}};
    j["counts_by_type"] = std::move(counts);
    j["total_tensor_bytes"] = total;
    j["params"] = params;
    // Metadata strings are arbitrary bytes: replace invalid UTF-8 rather than fail.
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }

  std::printf("file:        %s\n", o.model.c_str());
  std::printf("version:     GGUF v%u\n", f.version());
  std::printf("alignment:   %" PRIu64 "\n", f.alignment());
  std::printf("data offset: %" PRIu64 "\n", f.data_offset());
  std::printf("file size:   %s bytes\n", grouped(f.size()).c_str());
  std::printf("\nmetadata (%zu keys):\n", f.kvs().size());
  size_t width = 0;
  for (const auto& kv : f.kvs()) width = std::max(width, printable(kv.key).size());
  for (const auto& kv : f.kvs()) {
    const std::string val = kv.value.to_string(o.max_array ? o.max_array : SIZE_MAX, 100);
    std::printf("  %-*s %-4s %s\n", static_cast<int>(width), printable(kv.key).c_str(),
                octet::gguf::value_type_name(kv.value.type), val.c_str());
  }
  std::printf("\ntensors (%zu):\n", f.tensors().size());
  width = 4;
  for (const auto& t : f.tensors()) width = std::max(width, printable(t.name).size());
  std::printf("  %-*s %-8s %-24s %14s %14s\n", static_cast<int>(width), "name", "type", "shape (ne0 first)", "bytes",
              "offset");
  for (const auto& t : f.tensors()) {
    std::printf("  %-*s %-8s %-24s %14s %14s\n", static_cast<int>(width), printable(t.name).c_str(),
                octet::gguf::type_name(static_cast<uint32_t>(t.type)).c_str(), dims_str(t).c_str(),
                grouped(t.nbytes).c_str(), grouped(f.data_offset() + t.offset).c_str());
  }
  std::printf("\nby type:\n");
  for (const auto& [name, c] : by_type) {
    std::printf("  %-8s %5" PRIu64 " tensors %16s bytes %16s params %6.2f bits/param\n", name.c_str(), c.tensors,
                grouped(c.bytes).c_str(), grouped(c.params).c_str(),
                c.params ? 8.0 * static_cast<double>(c.bytes) / static_cast<double>(c.params) : 0.0);
  }
  std::printf("\ntotal tensor bytes: %s (%.2f MiB)\n", grouped(total).c_str(), static_cast<double>(total) / (1 << 20));
  std::printf("params:             %s\n", grouped(params).c_str());
  return 0;
}

}  // namespace

static void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Show a GGUF file's metadata and tensors, or dump a tensor as float32");
  cmd->add_option("-m,--model", opts->model, "GGUF file")->required();
  cmd->add_option("--dump", opts->dump, "Tensor to write dequantised as raw little-endian float32");
  cmd->add_option("-o,--output", opts->out, "Output file for --dump");
  cmd->add_option("--dump-all", opts->dump_all, "Write every tensor dequantised (raw float32, file order) to FILE");
  cmd->add_option("--max-rows", opts->max_rows, "With --dump-all: at most N rows of each tensor (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", opts->json, "Machine-readable metadata and tensor list");
  cmd->add_option("--max-array", opts->max_array, "Array elements to show (0 = all)")->capture_default_str();
  cmd->callback([opts] {
    if (int rc = run_info(*opts); rc != 0) throw CLI::RuntimeError(rc);
  });
}
OCTET_COMMAND("info", register_info);
