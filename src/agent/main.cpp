// foundry-agent: keeps this host's XDP data plane and serves agent.proto.
//
// The forwarding state lives in pinned BPF maps and the programs stay
// attached to their interfaces, so stopping the agent does not stop traffic;
// starting it again adopts the state and swaps in its own program instances
// without a gap. SIGTERM or SIGINT end it.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "foundry/agent/host_dataplane.h"
#include "foundry/agent/server.h"
#include "foundry/common/log.h"

int main(int argc, char** argv) {
  using namespace foundry;
  CLI::App app{"foundry-agent: the XDP data plane's control plane (gRPC)", "foundry-agent"};
  std::vector<std::string> listen{agent::kDefaultAgentAddress};
  dataplane::LoaderOptions lo;
  int verbose = 0;
  app.add_option("--listen", listen, "Addresses to serve on: unix:/path or host:port (repeatable)")
      ->capture_default_str();
  app.add_option("--pin-dir", lo.pin_dir, "Where the maps are pinned (on a BPF filesystem)")->capture_default_str();
  app.add_option("--bpffs", lo.bpffs_mount, "BPF filesystem mount point (mounted if absent)")->capture_default_str();
  app.add_option("--fdb-size", lo.fdb_max_entries, "Forwarding database capacity")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "More logging (repeat for libbpf detail)");
  CLI11_PARSE(app, argc, argv);
  log::init(verbose);
  if (verbose == 0) spdlog::set_level(spdlog::level::info);  // a daemon says what it does

  // Signals are taken synchronously by this thread; every other thread
  // (gRPC, replicator, watcher) inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto dp = agent::HostDataplane::open(lo);
  if (!dp) {
    spdlog::error("{}", dp.error().to_string());
    if (!dp.error().hint().empty()) spdlog::error("hint: {}", dp.error().hint());
    if (!dp.error().detail().empty()) spdlog::debug("detail: {}", dp.error().detail());
    return dp.error().exit_code();
  }
  spdlog::info("data plane ready: maps in {} ({}), {} interface(s) re-attached", lo.pin_dir,
               (*dp)->adopted_pinned_state() ? "adopted" : "new", (*dp)->reattached());

  auto server = agent::AgentServer::start(**dp, listen);
  if (!server) {
    spdlog::error("{}", server.error().to_string());
    if (!server.error().hint().empty()) spdlog::error("hint: {}", server.error().hint());
    return server.error().exit_code();
  }
  spdlog::info("serving on {}", fmt::join(listen, ", "));

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("signal {}: stopping (the data plane keeps forwarding)", sig);
  (*server)->shutdown();
  (*server)->wait();
  return 0;
}
