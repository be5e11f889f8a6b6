#include <CLI/CLI.hpp>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "octet/cpu.h"

namespace octet::cli {
std::vector<std::pair<const char*, Registrar>>& command_registry() {
  static std::vector<std::pair<const char*, Registrar>> r;
  return r;
}
}  // namespace octet::cli

namespace {
void register_cpu(CLI::App& app) {
  auto* cpu = app.add_subcommand("cpu", "Print the CPU features octet dispatches on");
  cpu->callback([] { std::printf("%s\n", octet::cpu_features().describe().c_str()); });
}
OCTET_COMMAND("cpu", register_cpu);
}  // namespace

int main(int argc, char** argv) {
  // A fixed mmap threshold: glibc otherwise raises it to the size of each large block freed,
  // so a request's buffers (KV cache, logits, scratch) land in the heap next time and stay
  // resident after it. Fixed, every block above 128 KiB is its own mapping and goes back to
  // the OS when freed: peak RSS of a Gemma 3 270M bench child drops ~10 MiB and repeats to
  // ±0.2 MiB (it swung ±5 MiB). Large buffers are allocated per session, not per token.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  CLI::App app{"octet: on-device LLM inference with fast INT8 chunked prefill"};
  app.require_subcommand(1);
  auto& reg = octet::cli::command_registry();
  std::sort(reg.begin(), reg.end(),
            [](const auto& a, const auto& b) { return std::strcmp(a.first, b.first) < 0; });
  for (auto& [name, fn] : reg) fn(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
