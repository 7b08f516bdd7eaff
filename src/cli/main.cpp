// foundry: the command line. Thin: parses arguments, calls the libraries,
// prints. Every command exits with the codes of seed 001.
#include <cstdio>
#include <exception>
#include <algorithm>
#include <map>
#include <vector>

#include "cli.h"
#include "foundry/common/log.h"

namespace foundry::cli {

namespace {
Action* g_selected = nullptr;
std::map<CLI::App*, Action>& actions() {
  static std::map<CLI::App*, Action> m;
  return m;
}
}  // namespace

void set_action(CLI::App* cmd, Action a) {
  actions()[cmd] = std::move(a);
  cmd->callback([cmd] { g_selected = &actions()[cmd]; });
}

namespace {
std::vector<std::pair<int, RegisterFn>>& groups() {
  static std::vector<std::pair<int, RegisterFn>> v;
  return v;
}
}  // namespace

CommandGroup::CommandGroup(int order, RegisterFn fn) { groups().emplace_back(order, fn); }

void register_all_groups(CLI::App& app, Globals& g) {
  auto v = groups();
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, fn] : v) fn(app, g);
}

void print_error(const Error& e, const Globals& g) {
  if (!e.diagnostics().empty()) {
    for (const auto& d : e.diagnostics()) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  } else {
    std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  }
  if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
  if (!e.detail().empty()) {
    if (g.verbose > 0) std::fprintf(stderr, "detail: %s\n", e.detail().c_str());
  }
}

}  // namespace foundry::cli

int main(int argc, char** argv) {
  using namespace foundry::cli;
  Globals g;
  CLI::App app{"foundry: manufactures and runs clusters from declarative files", "foundry"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "foundry 0.1.0");
  app.add_flag("-v,--verbose", g.verbose, "Show library detail (repeat for more)");
  std::string out = "table";
  app.add_option("-o,--output", out, "Output format for listings: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("-c,--connect", g.connect, "libvirt URI (default: $FOUNDRY_URI, config file, qemu:///system)");
  app.add_option("--storage-path", g.storage_path,
                 "Directory of the default pools (default: $FOUNDRY_STORAGE_PATH, config file, "
                 "/var/lib/libvirt/images/foundry)");

  register_all_groups(app, g);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage mistakes are configuration errors (exit 1); --help exits 0.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  g.output = out == "json" ? OutputFormat::Json : OutputFormat::Table;
  foundry::log::init(g.verbose);
  if (!g_selected) return 1;
  try {
    auto st = (*g_selected)();
    if (!st) {
      print_error(st.error(), g);
      return st.error().exit_code();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 4;
  }
  return 0;
}
