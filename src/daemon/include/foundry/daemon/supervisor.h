// foundryd's container supervisor: the JSON-RPC methods over the container
// library, and what the daemon knows that a daemonless runtime cannot: exit
// codes (the daemon is its containers' parent), output logs, and recovery
// after a restart or a crash.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"
#include "foundry/container/runtime.h"

namespace foundry::daemon {

struct SupervisorOptions {
  std::string state_root = "/run/foundry/containers";  // container library state (crash-safe files)
  std::string log_dir = "/var/log/foundry/containers";  // <id>.log: the container's stdout and stderr
  std::string cni_conf_dir = "/etc/foundry/cni";        // *.conflist networks
  std::vector<std::string> cni_plugin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
};

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions opts);

  // After a start: a container whose create was interrupted (the daemon
  // died mid-create) is removed with everything it had (cgroup, state, log);
  // a live one is adopted (its exit is noticed through a pidfd); a dead one
  // is recorded as stopped. Returns one line per container for the log.
  std::vector<std::string> recover();

  // One JSON-RPC method: create, start, state, kill, delete, list, logs,
  // exec, version. Unknown methods are ErrorKind::Config with
  // `method_not_found` set.
  Result<nlohmann::json> handle(const std::string& method, const nlohmann::json& params, bool& method_not_found);

  // exec is the one method whose answer waits: exec_start runs the process
  // (stdout and stderr go to memory files, stdin is /dev/null or the
  // "stdin" parameter) and returns a token; when the process has exited
  // and reap() collected it, take_finished_execs() hands out the answer
  // ({"exitCode", "stdout", "stderr", ...}) for that token.
  Result<uint64_t> exec_start(const nlohmann::json& params);
  std::vector<std::pair<uint64_t, nlohmann::json>> take_finished_execs();

  // Reaps exited children (container inits are ours) and records their
  // exit status. Called on SIGCHLD.
  void reap();
  // pidfds of adopted containers (not our children); readable at exit.
  std::vector<std::pair<int, std::string>> adopted_fds() const;
  void adopted_exited(const std::string& id);

  const SupervisorOptions& options() const { return opts_; }

 private:
  Result<nlohmann::json> create(const nlohmann::json& p);
  Result<nlohmann::json> start(const nlohmann::json& p);
  Result<nlohmann::json> state(const nlohmann::json& p);
  Result<nlohmann::json> kill(const nlohmann::json& p);
  Result<nlohmann::json> remove(const nlohmann::json& p);
  Result<nlohmann::json> list();
  Result<nlohmann::json> logs(const nlohmann::json& p);

  Result<nlohmann::json> describe(const std::string& id) const;
  std::string log_path(const std::string& id) const { return opts_.log_dir + "/" + id + ".log"; }
  std::string record_path(const std::string& id) const;
  std::string cni_path(const std::string& id) const;
  // CNI DEL for a container's stored ADD result (namespace already gone).
  Status detach_network(const std::string& id, const nlohmann::json& cni_record);
  void record_exit(const std::string& id, nlohmann::json exit);
  void finish_exec(pid_t pid, int status);

  struct Exec {
    std::string id;
    uint64_t token = 0;
    UniqueFd out, err;  // memfds the process writes to
  };

  SupervisorOptions opts_;
  std::map<pid_t, Exec> execs_;  // running exec processes (our children)
  std::vector<std::pair<uint64_t, nlohmann::json>> finished_execs_;
  uint64_t next_exec_token_ = 1;
  container::Runtime rt_;
  std::map<pid_t, std::string> children_;  // init pid -> container id
  std::map<std::string, UniqueFd> adopted_;
};

}  // namespace foundry::daemon
