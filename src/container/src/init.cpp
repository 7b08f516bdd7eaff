// The container's init: cloned from the runtime, it turns itself into the
// container step by step and finally execs process.args.
//
// Protocol with the parent (channel.h), in order:
//   parent: clone3(CLONE_NEWUSER?, CLONE_NEWPID?) -> write uid/gid maps ->
//           join the cgroup -> Go
//   child:  join namespaces by path, unshare the other new ones (the cgroup
//           namespace last-but-not-least: after the cgroup was joined, so its
//           root is the container's cgroup), hostname, mounts, devices
//           -> NeedRuntimeHooks
//   parent: prestart + createRuntime hooks -> HooksDone(state)
//   child:  createContainer hooks, pivot_root, masking, rlimits, seccomp,
//           user, capabilities -> Ready(warnings)
//   parent: records the state -> Done
//   child:  waits on the exec fifo until `start`, startContainer hooks, exec.
// Any failure in the child is sent as Failed(error) and the child exits; the
// parent then undoes everything it made.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "channel.h"
#include "foundry/container/hooks.h"
#include "linux.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace foundry::container::detail {

namespace {

bool maps_root(const std::vector<IdMapping>& maps) {
  for (const auto& m : maps)
    if (m.container_id == 0) return true;
  return false;
}

[[noreturn]] void die_quietly() { ::_exit(1); }

Status wait_for(int sock, Msg want, std::string* payload = nullptr) {
  auto m = FOUNDRY_TRY(recv_msg(sock));
  // The parent is gone (killed mid-create): nothing to report to anyone.
  if (m.eof) die_quietly();
  if (m.type != want) return fail(ErrorKind::Operation, "sync channel: unexpected message {}", static_cast<int>(m.type));
  if (payload) *payload = std::move(m.payload);
  return ok();
}

// Everything up to the exec. Returns only on failure.
Status init_steps(const InitConfig& cfg) {
  const Spec& s = *cfg.spec;
  const Process& p = *s.process;
  const LinuxSpec& l = s.linux_spec;
  int sock = cfg.sync_fd;

  // A clean slate for signals: the runtime may have blocked some (run
  // forwards them with sigwaitinfo) and the container must see defaults.
  reset_signals();
  // Until it is created, the container dies with the runtime that creates it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  FOUNDRY_TRY(wait_for(sock, Msg::Go));
  if (cfg.cgroup_entry && cfg.enter_v1_self) FOUNDRY_TRY(Cgroup::enter_v1(*cfg.cgroup_entry));
  for (int fd = 0; fd < 3; ++fd)
    if (cfg.stdio[fd] >= 0 && cfg.stdio[fd] != fd && ::dup2(cfg.stdio[fd], fd) < 0)
      return fail_errno(ErrorKind::Operation, "cannot attach the container's fd {}", fd);

  bool new_userns = l.new_namespace(NamespaceType::User);
  if (new_userns && maps_root(l.uid_mappings) && maps_root(l.gid_mappings)) {
    // Become root of the new namespace: files the mapped root owns in the
    // rootfs are then ours to mount over and create in.
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)
      return fail_errno(ErrorKind::Operation, "cannot become root in the user namespace");
  }

  // Join namespaces given by path. All files are opened first: joining the
  // mount namespace changes what paths mean. The user namespace goes first
  // (it grants the rights for the others), mount last.
  struct Join {
    UniqueFd fd;
    NamespaceType type;
    size_t index;
  };
  std::vector<Join> joins;
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    const auto& ns = l.namespaces[i];
    if (ns.path.empty() || ns.type == NamespaceType::Pid) continue;
    UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
      return fail(sys_error(ErrorKind::Operation,
                            fmt::format("linux.namespaces[{}]: cannot open the {} namespace {}", i, to_string(ns.type),
                                        ns.path))
                      .with_hint("give an existing namespace file, e.g. /proc/<pid>/ns/net or /run/netns/<name>"));
    joins.push_back({std::move(fd), ns.type, i});
  }
  auto rank = [](NamespaceType t) { return t == NamespaceType::User ? 0 : t == NamespaceType::Mount ? 2 : 1; };
  std::stable_sort(joins.begin(), joins.end(), [&](const Join& a, const Join& b) { return rank(a.type) < rank(b.type); });
  for (auto& j : joins) {
    if (::setns(j.fd.get(), clone_flag(j.type)) != 0)
      return fail(sys_error(ErrorKind::Operation, fmt::format("linux.namespaces[{}]: cannot join the {} namespace {}",
                                                              j.index, to_string(j.type),
                                                              l.namespaces[j.index].path))
                      .with_hint("the file must be a namespace of that type"));
  }

  // The runtime moves us into the cgroup while we work here (the first
  // write to a v1 cgroup.procs waits for an RCU grace period, milliseconds
  // that would otherwise be spent idle). The cgroup namespace takes the
  // cgroup we are in at unshare time, so it waits for CgroupJoined: before
  // the mounts when the rootfs mounts a fresh cgroup2 (it shows that
  // namespace), after them otherwise (v1 cgroup mounts are binds of the
  // container's directories).
  int unshare_flags = 0;
  for (const auto& ns : l.namespaces)
    if (ns.path.empty() && ns.type != NamespaceType::User && ns.type != NamespaceType::Pid &&
        ns.type != NamespaceType::Cgroup)
      unshare_flags |= clone_flag(ns.type);
  if (unshare_flags && ::unshare(unshare_flags) != 0)
    return fail_errno(ErrorKind::Operation, "cannot create the container's namespaces (unshare 0x{:x})",
                      static_cast<unsigned>(unshare_flags));
  bool joined = false;
  auto join_cgroup = [&]() -> Status {
    if (joined) return ok();
    joined = true;
    FOUNDRY_TRY(wait_for(sock, Msg::CgroupJoined));
    if (l.new_namespace(NamespaceType::Cgroup) && ::unshare(CLONE_NEWCGROUP) != 0)
      return fail_errno(ErrorKind::Operation, "cannot create the container's cgroup namespace");
    return ok();
  };
  bool fresh_cgroup2 = cfg.cgroup && cfg.cgroup->layout() == CgroupLayout::Unified;
  if (fresh_cgroup2 || !cfg.cgroup) FOUNDRY_TRY(join_cgroup());

  if (!s.hostname.empty() && ::sethostname(s.hostname.data(), s.hostname.size()) != 0)
    return fail_errno(ErrorKind::Operation, "hostname: cannot set \"{}\"", s.hostname);
  if (!s.domainname.empty() && ::setdomainname(s.domainname.data(), s.domainname.size()) != 0)
    return fail_errno(ErrorKind::Operation, "domainname: cannot set \"{}\"", s.domainname);

  FOUNDRY_TRY(apply_oom_score_adj(p));

  RootfsContext ctx{&s, cfg.bundle, cfg.rootfs, cfg.cgroup, l.find_namespace(NamespaceType::User) != nullptr};
  FOUNDRY_TRY(prepare_rootfs(ctx));
  FOUNDRY_TRY(join_cgroup());

  UniqueFd slave;
  if (p.terminal) {
    UniqueFd master = FOUNDRY_TRY(create_console(ctx, slave));
    FOUNDRY_TRY(send_msg(sock, Msg::Console, "", master.get()));
  }

  std::string state_json;
  if (cfg.runtime_round_trip) {
    FOUNDRY_TRY(send_msg(sock, Msg::NeedRuntimeHooks));
    FOUNDRY_TRY(wait_for(sock, Msg::HooksDone, &state_json));
    FOUNDRY_TRY(run_hooks(s.hooks.create_container, "createContainer", state_json));
  }

  FOUNDRY_TRY(enter_rootfs(cfg.rootfs, cfg.no_pivot));
  FOUNDRY_TRY(finish_rootfs(s));

  // A session of its own: the caller's terminal (if any) keeps its job
  // control, and a pty becomes this session's controlling terminal.
  ::setsid();
  if (slave) {
    if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0)
      return fail_errno(ErrorKind::Operation, "cannot make the pty the controlling terminal");
    for (int fd = 0; fd < 3; ++fd)
      if (::dup2(slave.get(), fd) < 0) return fail_errno(ErrorKind::Operation, "cannot attach the pty to fd {}", fd);
    slave.reset();
  }

  ProcessImage image =
      FOUNDRY_TRY(become_process(p, l.seccomp ? &*l.seccomp : nullptr, new_userns, cfg.preserve_fds));

  // From here the parent may exit at any moment (create returns once the
  // state is saved); the init must outlive it. A parent dying before Done
  // is still noticed: the channel reads end-of-file below.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  nlohmann::json ready = {{"warnings", image.warnings}};
  FOUNDRY_TRY(send_msg(sock, Msg::Ready, ready.dump()));
  FOUNDRY_TRY(wait_for(sock, Msg::Done));

  if (cfg.fifo_fd >= 0) {
    char b;
    for (;;) {
      ssize_t n = ::read(cfg.fifo_fd, &b, 1);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      die_quietly();
    }
  }
  // Nobody listens on the channel any more: from here errors go to stderr.
  if (auto st = run_hooks(s.hooks.start_container, "startContainer", state_json); !st) {
    std::fprintf(stderr, "foundry-oci: %s\n", st.error().to_string().c_str());
    ::_exit(1);
  }
  exec_image(p, image);
  int e = errno;
  std::fprintf(stderr, "foundry-oci: exec %s: %s\n", image.exe.c_str(), std::strerror(e));
  ::_exit(e == ENOENT ? 127 : 126);
}

}  // namespace

[[noreturn]] void container_init(const InitConfig& cfg) {
  auto st = init_steps(cfg);
  if (!st) (void)send_msg(cfg.sync_fd, Msg::Failed, serialize_error(st.error()));
  ::_exit(1);
}

Result<Spawned> spawn_init(const InitConfig& cfg_in) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno(ErrorKind::Operation, "cannot create the sync channel");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);
  InitConfig cfg = cfg_in;
  cfg.sync_fd = child_end.get();

  const LinuxSpec& l = cfg.spec->linux_spec;
  uint64_t flags = 0;
  if (l.new_namespace(NamespaceType::User)) flags |= CLONE_NEWUSER;
  if (l.new_namespace(NamespaceType::Pid)) flags |= CLONE_NEWPID;

  // Joining a pid namespace only affects children: do it here, around the
  // clone, and return to our own right after.
  UniqueFd own_pidns;
  const Namespace* pidns = l.find_namespace(NamespaceType::Pid);
  if (pidns && !pidns->path.empty()) {
    UniqueFd target(::open(pidns->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target)
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot open the pid namespace {}", pidns->path))
                      .wrap("linux.namespaces"));
    own_pidns.reset(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
    if (!own_pidns || ::setns(target.get(), CLONE_NEWPID) != 0)
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot join the pid namespace {}", pidns->path))
                      .wrap("linux.namespaces"));
  }

  int pidfd = -1;
  clone_args args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  // clone3 without a stack behaves like fork: the child continues here on a
  // copy of our stack. Only async-signal-safe-in-spirit code follows in the
  // child (no threads exist; the runtime is single-threaded by contract).
  bool into_cgroup = cfg.cgroup_entry && cfg.cgroup_entry->v2_dir;
  if (into_cgroup) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cfg.cgroup_entry->v2_dir.get());
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0 && into_cgroup && errno != ENOSYS) {
    // Kernels before 5.7 (E2BIG/EINVAL) or a cgroup that refuses: the
    // runtime moves the init the slow way.
    into_cgroup = false;
    args.flags &= ~static_cast<uint64_t>(CLONE_INTO_CGROUP);
    args.cgroup = 0;
    pid = ::syscall(SYS_clone3, &args, sizeof args);
  }
  if (pid < 0 && errno == ENOSYS) {
    into_cgroup = false;
    pid = ::syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    pidfd = -1;
  }
  if (pid == 0) {
    parent_end.reset();
    container_init(cfg);
  }
  int clone_errno = errno;
  if (own_pidns) ::setns(own_pidns.get(), CLONE_NEWPID);
  if (pid < 0) {
    errno = clone_errno;
    Error e = sys_error(ErrorKind::Operation, "cannot create the container process (clone3)");
    if (clone_errno == ENOSPC || clone_errno == EUSERS)
      e.with_hint("the namespace limits in /proc/sys/user/max_*_namespaces are reached");
    else if (clone_errno == EPERM)
      e.with_hint("creating namespaces needs root (or a user namespace in the spec)");
    return fail(std::move(e));
  }
  Spawned out;
  out.pid = static_cast<pid_t>(pid);
  out.pidfd.reset(pidfd);
  out.sync = std::move(parent_end);
  out.in_v2_cgroup = into_cgroup;
  return out;
}

}  // namespace foundry::container::detail
