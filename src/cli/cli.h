// Shared pieces of the foundry command line: global options, how a command
// reports its result, and the registration hook of each command group.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "foundry/common/error.h"

namespace foundry::cli {

enum class OutputFormat { Table, Json };

struct Globals {
  int verbose = 0;
  OutputFormat output = OutputFormat::Table;
  std::string connect;       // libvirt URI; empty = layered default
  std::string storage_path;  // base of the default pools; empty = layered default
};

// A command's body. Its Status decides the exit code; main() prints errors.
using Action = std::function<Status()>;

// Sets the action a subcommand runs when selected.
void set_action(CLI::App* cmd, Action a);

// Prints an error once, at the edge: message, diagnostics, hint, and library
// detail when --verbose is on.
void print_error(const Error& e, const Globals& g);

// Each command group lives in its own file and registers itself at static
// initialisation time:
//   static const CommandGroup reg(10, [](CLI::App& app, Globals& g) { ... });
// Groups are added to the app in ascending `order` (the --help listing order).
using RegisterFn = void (*)(CLI::App&, Globals&);
struct CommandGroup {
  CommandGroup(int order, RegisterFn fn);
};
void register_all_groups(CLI::App& app, Globals& g);

// Seed 002's `foundry create --bundle-path P --container-id ID`: the
// top-level `create` (registered by the VM group) hands over here when it
// sees the container flags. Implemented in container.cpp.
Status container_create(const std::string& bundle, const std::string& id, const Globals& g);

}  // namespace foundry::cli
