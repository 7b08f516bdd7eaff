// foundryd's JSON-RPC server: a single-threaded poll loop over the listening
// socket, the clients, a signalfd (SIGCHLD reaps containers, SIGTERM/SIGINT
// stop the daemon, leaving containers running) and the pidfds of adopted
// containers. Single-threaded on purpose: the container library clones the
// daemon to make each container's init, which is only safe without threads.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"
#include "foundry/daemon/supervisor.h"

namespace foundry::daemon {

struct ServerOptions {
  std::string socket = "/run/foundry/foundryd.sock";
  std::string group = "foundry";  // besides root, members may connect
};

class Server {
 public:
  Server(ServerOptions opts, Supervisor& sup);
  // Binds the socket (mode 0660, group `foundry` when it exists). A stale
  // socket file is replaced; a live daemon on it is an error.
  Status listen();
  // Serves until SIGTERM or SIGINT. Signals must be blocked by the caller
  // before any thread or child exists (main does it first thing).
  Status run();

 private:
  bool peer_allowed(int fd, std::string& who) const;
  // The response line, or "" when there is none yet (a notification, or
  // an exec whose answer comes when its process exits).
  std::string handle_line(int client, const std::string& line);
  void send_line(int client, std::string line);

  struct PendingExec {
    int client;
    nlohmann::json request_id;
  };
  std::map<uint64_t, PendingExec> pending_execs_;

  ServerOptions opts_;
  Supervisor& sup_;
  UniqueFd listen_fd_;
  gid_t group_gid_ = static_cast<gid_t>(-1);
};

}  // namespace foundry::daemon
