#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"
#include "octet/cpu.h"

int main(int argc, char** argv) {
  CLI::App app{"octet: on-device LLM inference with fast INT8 chunked prefill"};
  app.require_subcommand(1);
  register_run(app);
  register_chat(app);
  register_logits(app);
  register_ppl(app);
  register_bench(app);
  auto* cpu = app.add_subcommand("cpu", "Print the CPU features octet dispatches on");
  cpu->callback([] { std::printf("%s\n", octet::cpu_features().describe().c_str()); });
  register_info(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
