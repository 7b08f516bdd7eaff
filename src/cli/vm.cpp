// foundry vm ...: VM files and VM lifecycle (seed 001).
#include "cli.h"

namespace foundry::cli {

void register_vm_commands(CLI::App& app, Globals& g) {
  (void)g;
  auto* vm = app.add_subcommand("vm", "Virtual machines from YAML files (libvirt)");
  vm->require_subcommand(1);
}

}  // namespace foundry::cli
