// Subcommand registration. Each tools/octet/cmd_*.cpp registers itself with
// OCTET_COMMAND(fn), so adding a command touches only its own file.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace octet::cli {
using Registrar = void (*)(CLI::App&);
// Sorted by name at startup so `octet --help` lists commands in a stable order.
std::vector<std::pair<const char*, Registrar>>& command_registry();
struct CommandRegistration {
  CommandRegistration(const char* name, Registrar fn) { command_registry().emplace_back(name, fn); }
};
}  // namespace octet::cli

#define OCTET_COMMAND(name, fn) \
  static ::octet::cli::CommandRegistration octet_command_registration_##fn{name, fn}
