// foundry vm ...: VM files and VM lifecycle (seed 001).
#include "cli.h"

namespace foundry::cli {

namespace {

void register_vm(CLI::App& app, Globals& g) {
  (void)g;
  auto* vm = app.add_subcommand("vm", "Virtual machines from YAML files (libvirt)");
  vm->require_subcommand(1);
}

const CommandGroup reg(10, register_vm);

}  // namespace

}  // namespace foundry::cli
