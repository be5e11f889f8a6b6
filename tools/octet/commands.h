// Subcommands of the `octet` tool; each file registers its own.
#pragma once
#include <CLI/CLI.hpp>

void register_run(CLI::App& app);
void register_chat(CLI::App& app);
void register_logits(CLI::App& app);
void register_ppl(CLI::App& app);
void register_bench(CLI::App& app);
