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

// A process to run inside an existing container (runc exec).
struct ExecOptions {
  std::string id;
  // The whole process: from a process.json (parse_process_spec), or the
  // container's own process with changes (exec_process()).
  Process process;
  std::string console_socket;  // process.terminal: receives the pty master
  std::string pid_file;        // written with the process' pid once it runs
  int preserve_fds = 0;        // fds 3 .. 3+N-1 are passed to the process
  // stdin, stdout, stderr; -1 = the caller's own.
  int stdio[3] = {-1, -1, -1};
};

// What `exec ID cmd...` may change of the container's own process.
struct ExecChanges {
  std::vector<std::string> args;  // required
  std::vector<std::string> env;   // KEY=value; replaces the same KEY
  std::string cwd;                // "" = the container's
  std::string user;               // "uid[:gid]"; "" = the container's
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;  // CAP_* added to every set
  bool no_new_privileges = false;
  bool tty = false;
};

// The container's process (base) with the changes applied. Errors name the
// bad input (an unknown capability, a user that is not uid[:gid]).
Result<Process> exec_process(const Process& base, const ExecChanges& changes);

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

  // Runs a process in a created or running container: it joins the
  // init's namespaces (user first, mount last; pid and time apply to the
  // process, which is forked after the joins), its cgroup and root, and
  // gets the capabilities, user, rlimits, seccomp filter (the container's
  // linux.seccomp), environment and cwd of opts.process. Returns the pid
  // once the program is executing; the caller is its parent and reaps it.
  // A missing executable or an unusable cwd fails here, before anything
  // runs.
  Result<pid_t> exec(const ExecOptions& opts);
  // exec, then wait for the process, forwarding signals sent to this one.
  Result<RunResult> exec_wait(const ExecOptions& opts, bool detach = false);
  // The process of the container's config.json: the base of an exec.
  Result<Process> container_process(const std::string& id) const;

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
