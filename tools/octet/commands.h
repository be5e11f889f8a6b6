// Subcommand registration: one function per tools/octet/cmd_*.cpp file.
#pragma once
#include <CLI/CLI.hpp>

void register_run(CLI::App& app);
void register_chat(CLI::App& app);
void register_logits(CLI::App& app);
void register_ppl(CLI::App& app);
void register_bench(CLI::App& app);
void register_info(CLI::App& app);
