// The container lifecycle of the OCI runtime specification, daemonless:
// every operation reads and writes the state directory, so separate
// processes (foundry-oci create, then foundry-oci start, ...) cooperate.
//
//   create  spawns the container's init in its namespaces and cgroup, sets
//           up the root filesystem, and leaves the init blocked on the exec
//           fifo (status "created"). The caller's stdio becomes the
//           container's unless process.terminal asks for a pty.
//   start   releases the init, which execs process.args ("running").
//   kill    signals the init (or every process of the cgroup).
//   remove  (delete) kills what is left and frees cgroup and state.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "foundry/common/error.h"
#include "foundry/container/cgroup.h"
#include "foundry/container/spec.h"
#include "foundry/container/state.h"

namespace foundry::container {

struct CreateOptions {
  std::string id;
  std::string bundle;          // directory with config.json; "" = current directory
  std::string pid_file;        // written with the init's pid after create
  std::string console_socket;  // AF_UNIX socket that receives the pty master (terminal: true)
  int preserve_fds = 0;        // fds 3 .. 3+N-1 are passed to the container
  bool no_pivot = false;       // chroot instead of pivot_root (for ramfs roots)
  // The container's stdin, stdout, stderr; -1 = the caller's own (what
  // runc does). A daemon passes /dev/null and its log file.
  int stdio[3] = {-1, -1, -1};
  // Called by create once the init's namespaces exist and before it
  // pivots (right after the createRuntime hooks): the place to configure
  // its network namespace (/proc/<pid>/ns/net) from outside, as CNI does.
  // A failure fails the create (and undoes it).
  std::function<Status(const ContainerState&)> on_namespaces_ready;
};

struct RunResult {
  int exit_code = 0;      // the shell convention: status, or 128 + signal
  int signal = 0;         // the signal that killed the init, 0 if it exited
  uint64_t oom_kills = 0; // OOM-killer events in the container's cgroup
};

class Runtime {
 public:
  explicit Runtime(std::string state_root = kDefaultStateRoot);

  // Returns once the init waits for start. On any failure nothing is left:
  // no process, no cgroup, no state directory.
  Result<ContainerState> create(const CreateOptions& opts);
  Status start(const std::string& id);
  // OCI state document (state-schema.json).
  Result<nlohmann::json> state(const std::string& id) const;
  Status kill(const std::string& id, int sig, bool all = false);
  // Without force only created or stopped containers are deleted.
  Status remove(const std::string& id, bool force);
  // create + start + wait + delete; the container's exit status.
  // Signals sent to this process (INT, TERM, HUP, QUIT, USR1, USR2) are
  // forwarded to the container. detach: return after start.
  Result<RunResult> run(const CreateOptions& opts, bool detach = false);

  std::vector<std::string> list() const { return store_.list(); }
  const StateStore& store() const { return store_; }

 private:
  Result<ContainerState> create_impl(const CreateOptions& opts, bool foreground);

  StateStore store_;
};

// "SIGKILL", "KILL", "kill", "9" -> 9. Errors name the bad input.
Result<int> parse_signal(const std::string& s);

// The `features` document (features-schema.json), including which cgroup
// layout this host uses.
nlohmann::json features_json();

}  // namespace foundry::container
