// foundryd: the container daemon. JSON-RPC 2.0 on a Unix socket
// (/run/foundry/foundryd.sock), containers from OCI bundles through
// foundry_container, their output in /var/log/foundry/containers/<id>.log.
// Containers outlive the daemon; a restarted daemon adopts them and cleans
// whatever a create interrupted by a crash left behind.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "foundry/container/cni.h"
#include "foundry/daemon/server.h"
#include "foundry/daemon/supervisor.h"

int main(int argc, char** argv) {
  // Before anything else (no thread, no child yet): the signals the server
  // takes through its signalfd are blocked for the whole process. Each
  // container's init restores an empty mask for itself.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  foundry::daemon::ServerOptions so;
  foundry::daemon::SupervisorOptions vo;
  bool debug = false;
  CLI::App app{"foundryd: Foundry's container daemon (JSON-RPC 2.0 over a Unix socket)", "foundryd"};
  app.set_version_flag("--version", "foundryd 0.1.0");
  app.add_option("--socket", so.socket, "Socket to listen on")->capture_default_str();
  app.add_option("--group", so.group, "Group whose members may connect besides root")->capture_default_str();
  app.add_option("--root", vo.state_root, "Container state directory")->capture_default_str();
  app.add_option("--log-dir", vo.log_dir, "Directory of the containers' output logs")->capture_default_str();
  app.add_option("--cni-conf-dir", vo.cni_conf_dir, "CNI networks (*.conflist)")->capture_default_str();
  app.add_option("--cni-plugin-dir", vo.cni_plugin_dirs, "Where CNI plugins are (repeatable)");
  bool no_default_network = false;
  app.add_flag("--no-default-network", no_default_network,
               "Do not install the default bridge network \"foundry\" into --cni-conf-dir");
  app.add_flag("--debug", debug, "Log debug messages");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("foundryd", sink);
  logger->set_pattern("foundryd: %l: %v");
  logger->set_level(debug ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);

  if (::geteuid() != 0) {
    std::fprintf(stderr, "foundryd: error: must run as root (namespaces, cgroups, mounts)\n");
    return 4;
  }
  // Orphans of our containers' hooks and helpers come back to us to be reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  if (!no_default_network)
    if (auto st = foundry::container::install_default_network(vo.cni_conf_dir); !st)
      spdlog::warn("cannot install the default network: {}", st.error().to_string());
  foundry::daemon::Supervisor sup(vo);
  foundry::daemon::Server server(so, sup);
  if (auto st = server.listen(); !st) {
    std::fprintf(stderr, "foundryd: error: %s\n", st.error().to_string().c_str());
    if (!st.error().hint().empty()) std::fprintf(stderr, "hint: %s\n", st.error().hint().c_str());
    return st.error().exit_code();
  }
  for (const auto& line : sup.recover()) spdlog::info("recover: {}", line);
  spdlog::info("listening on {} (state {}, logs {})", so.socket, vo.state_root, vo.log_dir);
  if (auto st = server.run(); !st) {
    std::fprintf(stderr, "foundryd: error: %s\n", st.error().to_string().c_str());
    return st.error().exit_code();
  }
  return 0;
}
