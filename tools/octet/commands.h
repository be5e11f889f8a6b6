// Subcommand registration: one function per tools/octet/cmd_*.cpp file.
#pragma once

namespace CLI {
class App;
}

void register_info(CLI::App& app);
