// Internal: the pieces the container's init runs in its own process, and the
// clone that creates it. Everything here runs in a freshly cloned,
// single-threaded child of the runtime; it reports failures as Status and the
// init sends them to the parent over the sync channel.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include <seccomp.h>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"
#include "foundry/container/cgroup.h"
#include "foundry/container/spec.h"

namespace foundry::container::detail {

struct InitConfig {
  const Spec* spec = nullptr;
  std::string bundle;             // absolute
  std::string rootfs;             // absolute
  const Cgroup* cgroup = nullptr;  // may be null (no cgroup)
  // When set, the init starts in the cgroup's v2 directory (CLONE_INTO_CGROUP)
  // and, with enter_v1_self, moves itself into the v1 ones (see CgroupEntry).
  const CgroupEntry* cgroup_entry = nullptr;
  bool enter_v1_self = false;
  int sync_fd = -1;                // the child's end of the channel
  int fifo_fd = -1;                // exec fifo (O_RDWR); -1: exec without waiting
  bool no_pivot = false;
  int preserve_fds = 0;
  int stdio[3] = {-1, -1, -1};     // dup2'ed onto 0, 1, 2 when >= 0
  // NeedRuntimeHooks/HooksDone happen only when something needs them
  // (hooks, or the caller's on_namespaces_ready): each round trip is two
  // context switches on the critical path of create.
  bool runtime_round_trip = true;
};

struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd sync;  // the parent's end
  bool in_v2_cgroup = false;  // cloned into cgroup_entry's v2 directory
};

// Clones the init with the spec's new user and pid namespaces (joining a pid
// namespace by path happens here, in the parent, since it only affects
// children). The child runs container_init and never returns.
Result<Spawned> spawn_init(const InitConfig& cfg);

// ---- rootfs.cpp ----
struct RootfsContext {
  const Spec* spec;
  std::string bundle;
  std::string rootfs;
  const Cgroup* cgroup;
  bool userns;  // in a new user namespace: no mknod, locked mount flags
};
// Makes the mount tree private/slave, bind-mounts the rootfs on itself and
// performs every mount of the spec plus the devices, all below rootfs.
Status prepare_rootfs(const RootfsContext& ctx);
// Creates a pty from the container's devpts; returns the master, and puts
// the slave on /dev/console. slave_out gets the slave fd.
Result<UniqueFd> create_console(const RootfsContext& ctx, UniqueFd& slave_out);
// pivot_root (or chroot with no_pivot) into rootfs; afterwards / is the
// container's root.
Status enter_rootfs(const std::string& rootfs, bool no_pivot);
// After the pivot: sysctl, masked and read-only paths, read-only root,
// rootfs propagation.
Status finish_rootfs(const Spec& spec);

// ---- security.cpp ----
// Clamps (with a warning) limits above the hard limit when CAP_SYS_RESOURCE is missing.
Status apply_rlimits(const Process& p, std::vector<std::string>& warnings);
// A compiled but not yet loaded filter; nullptr when the spec has none.
struct SeccompFilter {
  scmp_filter_ctx ctx = nullptr;
  ~SeccompFilter();
  SeccompFilter() = default;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;
};
Status compile_seccomp(const Seccomp& sc, SeccompFilter& out);
Status load_seccomp(SeccompFilter& f);
// setgroups/setresgid/setresuid keeping capabilities, then the spec's sets.
Status switch_user_and_caps(const Process& p, bool in_new_userns);
// Resolves args[0] like execvp would, inside the (already entered) rootfs.
Result<std::string> find_executable(const Process& p);
// HOME from the container's /etc/passwd when the spec does not set it.
std::vector<std::string> final_environment(const Process& p);

// What execve needs, worked out inside the container.
struct ProcessImage {
  std::string exe;
  std::vector<std::string> env;
  std::vector<std::string> warnings;  // rlimits clamped for want of CAP_SYS_RESOURCE
};
// The last steps before execve, the same for the container's init and an
// exec'd process: rlimits, umask, the executable and the environment,
// seccomp (loaded while CAP_SYS_ADMIN remains, unless noNewPrivileges lets it
// wait until last), user and capabilities, cwd, no_new_privs; afterwards only
// stdio and the preserve_fds fds after it survive the execve.
Result<ProcessImage> become_process(const Process& p, const Seccomp* seccomp, bool in_new_userns,
                                    int preserve_fds);
// execve of p.args with the image; returns only when it failed (errno set).
void exec_image(const Process& p, ProcessImage& image);
// process.oomScoreAdj, when the spec sets it.
Status apply_oom_score_adj(const Process& p);
// Default dispositions and an empty mask for every signal: the runtime
// blocks some (foundryd its signalfd set, run/exec_wait the ones they
// forward) and the container must not inherit that.
void reset_signals();

// ---- runtime.cpp ----
// For run and exec_wait: while this object lives, the signals meant for the
// container's process are blocked, taken synchronously (sigwaitinfo) and
// forwarded; SIGCHLD only says it exited. The process unblocks them for
// itself (reset_signals).
class ForwardedSignals {
 public:
  ForwardedSignals();
  ~ForwardedSignals();
  ForwardedSignals(const ForwardedSignals&) = delete;
  ForwardedSignals& operator=(const ForwardedSignals&) = delete;
  // Waits for the child pid, forwarding; its wait status.
  int wait(pid_t pid) const;

 private:
  sigset_t set_{}, old_{};
};
// The shell convention for a wait status: the exit code, or 128 + the
// signal that killed it (signal is then set, else 0).
void exit_status(int status, int& exit_code, int& signal);

[[noreturn]] void container_init(const InitConfig& cfg);

}  // namespace foundry::container::detail
