// exec: a new process inside an existing container.
//
// Two processes do the work, as in runc and crun:
//   helper (cloned from the runtime, in no new namespace): the runtime puts
//           it into the container's cgroup, then it joins the init's
//           namespaces with setns(2) — user first (it grants the rights for
//           the rest), mount last (it changes what paths mean; every
//           namespace file and the init's root are opened before) — and
//           enters the init's root. Joining a pid or time namespace only
//           affects children, so the helper then clones the process with
//           CLONE_PARENT: it lands in the container's pid namespace, and
//           its parent is the runtime, which can reap it and learn its exit
//           status. The helper reports the pid and exits.
//   process: pty (terminal), rlimits, user and capabilities, the
//           container's seccomp filter, noNewPrivileges, cwd, then execve.
// The channel is close-on-exec: end-of-file after the Pid message means the
// program is running; a Failed message carries the reason it is not.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <cstring>

#include <nlohmann/json.hpp>

#include "channel.h"
#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/container/runtime.h"
#include "linux.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace foundry::container {

using json = nlohmann::json;
using namespace detail;

namespace {

struct NsJoin {
  const char* name;  // under /proc/<pid>/ns/
  int flag;
};
// The order of the joins. user grants CAP_SYS_ADMIN over the namespaces it
// owns; mnt goes last because it replaces root and cwd; pid and time only
// set what children get, which is all the process needs.
constexpr NsJoin kJoinOrder[] = {
    {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},   {"net", CLONE_NEWNET},
    {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID}, {"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
};

struct OpenNs {
  UniqueFd fd;
  const char* name;
  int flag;
};

struct ExecConfig {
  const Process* process = nullptr;
  const Seccomp* seccomp = nullptr;  // the container's filter, if any
  bool in_new_userns = false;        // the container has a user namespace of its own
  std::vector<OpenNs>* namespaces = nullptr;
  int root_fd = -1;  // the init's root directory (O_PATH)
  int sync_fd = -1;
  int preserve_fds = 0;
  int stdio[3] = {-1, -1, -1};
};

[[noreturn]] void quit(int code) { ::_exit(code); }

Status wait_go(int sock) {
  auto m = FOUNDRY_TRY(recv_msg(sock));
  if (m.eof) quit(1);  // the runtime died: nobody to report to
  if (m.type != Msg::Go) return fail(ErrorKind::Operation, "sync channel: unexpected message {}", static_cast<int>(m.type));
  return ok();
}

// A pty from the container's devpts (the process is already inside its
// root): the master goes to the runtime, the slave becomes the
// controlling terminal and stdio.
Status attach_terminal(const ExecConfig& cfg) {
  UniqueFd master(::open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return fail_errno(ErrorKind::Operation, "cannot open a pty master in the container (/dev/pts/ptmx)");
  if (::unlockpt(master.get()) != 0) return fail_errno(ErrorKind::Operation, "cannot unlock the pty");
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return fail_errno(ErrorKind::Operation, "cannot open the pty slave");
  if (const auto& cs = cfg.process->console_size) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(cs->height);
    ws.ws_col = static_cast<unsigned short>(cs->width);
    ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  }
  FOUNDRY_TRY(send_msg(cfg.sync_fd, Msg::Console, "", master.get()));
  ::setsid();
  if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0)
    return fail_errno(ErrorKind::Operation, "cannot make the pty the controlling terminal");
  for (int fd = 0; fd < 3; ++fd)
    if (::dup2(slave.get(), fd) < 0) return fail_errno(ErrorKind::Operation, "cannot attach the pty to fd {}", fd);
  return ok();
}

// The process: everything after the namespace joins, up to execve.
// Returns only on failure.
Status process_steps(const ExecConfig& cfg) {
  const Process& p = *cfg.process;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (p.terminal) FOUNDRY_TRY(attach_terminal(cfg));
  FOUNDRY_TRY(apply_oom_score_adj(p));
  ProcessImage image = FOUNDRY_TRY(become_process(p, cfg.seccomp, cfg.in_new_userns, cfg.preserve_fds));
  FOUNDRY_TRY(send_msg(cfg.sync_fd, Msg::Ready, json{{"warnings", image.warnings}}.dump()));
  // From here the runtime may return (exec --detach) and exit.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);

  exec_image(p, image);
  return fail(sys_error(ErrorKind::Operation, fmt::format("cannot execute {}", image.exe))
                  .with_hint("check that the file is a program for this machine"));
}

// The helper: joins, then forks the process. Returns only on failure.
Status helper_steps(const ExecConfig& cfg) {
  // Defaults for signals: the runtime blocks some (foundryd its signalfd
  // set, exec_wait the ones it forwards) and the process must not inherit that.
  reset_signals();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  FOUNDRY_TRY(wait_go(cfg.sync_fd));
  for (int fd = 0; fd < 3; ++fd)
    if (cfg.stdio[fd] >= 0 && cfg.stdio[fd] != fd && ::dup2(cfg.stdio[fd], fd) < 0)
      return fail_errno(ErrorKind::Operation, "cannot attach the process' fd {}", fd);

  for (auto& ns : *cfg.namespaces) {
    if (::setns(ns.fd.get(), ns.flag) != 0)
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot join the container's {} namespace", ns.name))
                      .with_hint("the container may have stopped meanwhile"));
    ns.fd.reset();
  }
  // The init's root: after pivot_root it is the mount namespace's root
  // (which setns made ours already), after a chroot (--no-pivot) it is not.
  if (::fchdir(cfg.root_fd) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0)
    return fail_errno(ErrorKind::Operation, "cannot enter the container's root directory");

  // CLONE_PARENT: the process becomes the runtime's child (the helper is
  // not an init, which the kernel would refuse).
  long pid = ::syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
  if (pid < 0) return fail_errno(ErrorKind::Operation, "cannot create the process in the container (clone)");
  if (pid == 0) {
    auto st = process_steps(cfg);
    if (!st) (void)send_msg(cfg.sync_fd, Msg::Failed, serialize_error(st.error()));
    quit(st.error().kind() == ErrorKind::Validation ? 127 : 126);
  }
  FOUNDRY_TRY(send_msg(cfg.sync_fd, Msg::Pid, std::to_string(pid)));
  quit(0);
}

[[noreturn]] void helper_main(const ExecConfig& cfg) {
  auto st = helper_steps(cfg);
  if (!st) (void)send_msg(cfg.sync_fd, Msg::Failed, serialize_error(st.error()));
  quit(1);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat x {}, y {};
  return ::stat(a.c_str(), &x) == 0 && ::stat(b.c_str(), &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

void reap(pid_t pid) {
  if (pid <= 0) return;
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Result<uint32_t> parse_id(std::string_view s, const std::string& what, const std::string& input) {
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    return fail(Error(ErrorKind::Config, fmt::format("user \"{}\": {} \"{}\" is not a number", input, what, s))
                    .with_hint("give numeric ids as uid[:gid], e.g. 1000:1000"));
  return v;
}

}  // namespace

Result<Process> exec_process(const Process& base, const ExecChanges& c) {
  if (c.args.empty())
    return fail(Error(ErrorKind::Config, "no command given to exec")
                    .with_hint("name the program after the container id, e.g. `exec ID -- ps aux`"));
  Process p = base;
  p.args = c.args;
  for (const auto& kv : c.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(Error(ErrorKind::Config, fmt::format("environment entry \"{}\" is not KEY=value", kv))
                      .with_hint("write it as NAME=value"));
    std::string key = kv.substr(0, eq + 1);
    std::erase_if(p.env, [&](const std::string& e) { return e.rfind(key, 0) == 0; });
    p.env.push_back(kv);
  }
  if (!c.cwd.empty()) {
    if (c.cwd.front() != '/')
      return fail(Error(ErrorKind::Config, fmt::format("working directory \"{}\" is not absolute", c.cwd))
                      .with_hint("give a path inside the container, e.g. /tmp"));
    p.cwd = c.cwd;
  }
  if (!c.user.empty()) {
    auto colon = c.user.find(':');
    std::string_view u(c.user);
    p.user.uid = FOUNDRY_TRY(parse_id(u.substr(0, colon), "uid", c.user));
    if (colon != std::string::npos) p.user.gid = FOUNDRY_TRY(parse_id(u.substr(colon + 1), "gid", c.user));
    p.user.additional_gids.clear();
  }
  for (uint32_t g : c.additional_gids) p.user.additional_gids.push_back(g);
  if (!c.caps.empty()) {
    if (!p.capabilities) p.capabilities = Capabilities{};
    for (const auto& name : c.caps) {
      std::string full = name.rfind("CAP_", 0) == 0 ? name : "CAP_" + name;
      auto cap = capability_from_name(full);
      if (!cap)
        return fail(Error(ErrorKind::Config, fmt::format("unknown capability \"{}\"", name))
                        .with_hint("capability names look like CAP_NET_ADMIN (see capabilities(7))"));
      for (auto* set : {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted,
                        &p.capabilities->inheritable, &p.capabilities->ambient})
        if (std::find(set->begin(), set->end(), *cap) == set->end()) set->push_back(*cap);
    }
  }
  if (c.no_new_privileges) p.no_new_privileges = true;
  p.terminal = c.tty;
  return p;
}

Result<Process> Runtime::container_process(const std::string& id) const {
  ContainerState st = FOUNDRY_TRY(store_.load(id));
  Spec spec = FOUNDRY_TRY_CTX(load_spec(st.bundle), "exec in container \"{}\": read its configuration", id);
  if (!spec.process)
    return fail(Error(ErrorKind::Validation, fmt::format("exec in container \"{}\": its config.json has no process", id))
                    .with_hint("pass the whole process with --process"));
  return *spec.process;
}

Result<pid_t> Runtime::exec(const ExecOptions& opts) {
  ContainerState st = FOUNDRY_TRY(store_.load(opts.id));
  const std::string ctx = fmt::format("exec in container \"{}\"", opts.id);
  ContainerStatus status = store_.status(st);
  if (status == ContainerStatus::Stopped)
    return fail(Error(ErrorKind::Operation, fmt::format("cannot exec in container \"{}\": it is not running", opts.id))
                    .with_hint("exec needs a created or running container; start a new one"));
  if (status == ContainerStatus::Creating)
    return fail(Error(ErrorKind::Operation,
                      fmt::format("cannot exec in container \"{}\": it is still being created", opts.id)));
  const Process& p = opts.process;
  if (p.args.empty())
    return fail(Error(ErrorKind::Validation, fmt::format("{}: process.args: is required", ctx))
                    .with_hint("give the program and its arguments"));
  if (p.terminal && opts.console_socket.empty())
    return fail(Error(ErrorKind::Validation, fmt::format("{}: process.terminal is true but no --console-socket was given", ctx))
                    .with_hint("pass --console-socket, or run without a terminal"));
  Spec spec = FOUNDRY_TRY_CTX(load_spec(st.bundle), "{}: read its configuration", ctx);

  // Everything of the init is opened before the helper exists, and the
  // init is checked again afterwards: a pid reused meanwhile would
  // otherwise hand us a stranger's namespaces.
  pid_t init = st.init.pid;
  std::vector<OpenNs> namespaces;
  for (const auto& j : kJoinOrder) {
    std::string theirs = fmt::format("/proc/{}/ns/{}", init, j.name);
    std::string ours = fmt::format("/proc/self/ns/{}", j.name);
    if (::access(theirs.c_str(), F_OK) != 0 && errno == ENOENT && ::access(ours.c_str(), F_OK) != 0)
      continue;  // a kernel without this namespace type
    if (same_file(theirs, ours)) continue;  // shared with us; setns would refuse our own user namespace
    UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT || errno == ESRCH)
        return fail(Error(ErrorKind::Operation, fmt::format("cannot exec in container \"{}\": it is not running", opts.id)));
      return fail(sys_error(ErrorKind::Operation, fmt::format("{}: cannot open {}", ctx, theirs)));
    }
    namespaces.push_back({std::move(fd), j.name, j.flag});
  }
  UniqueFd root(::open(fmt::format("/proc/{}/root", init).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root || !process_alive(st.init))
    return fail(Error(ErrorKind::Operation, fmt::format("cannot exec in container \"{}\": it is not running", opts.id)));

  ExecConfig cfg;
  cfg.process = &p;
  cfg.seccomp = spec.linux_spec.seccomp ? &*spec.linux_spec.seccomp : nullptr;
  cfg.in_new_userns = std::any_of(namespaces.begin(), namespaces.end(),
                                  [](const OpenNs& n) { return n.flag == CLONE_NEWUSER; });
  cfg.namespaces = &namespaces;
  cfg.root_fd = root.get();
  cfg.preserve_fds = opts.preserve_fds;
  for (int i = 0; i < 3; ++i) cfg.stdio[i] = opts.stdio[i];

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno(ErrorKind::Operation, "{}: cannot create the sync channel", ctx);
  UniqueFd sync(sv[0]), child_end(sv[1]);
  cfg.sync_fd = child_end.get();
  long helper = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (helper < 0) return fail_errno(ErrorKind::Operation, "{}: cannot create the exec helper (clone)", ctx);
  if (helper == 0) {
    sync.reset();
    helper_main(cfg);
  }
  child_end.reset();
  namespaces.clear();
  root.reset();

  pid_t proc = -1;
  bool helper_reaped = false, done = false;
  ScopeExit cleanup([&] {
    if (done) return;
    if (!helper_reaped) {
      ::kill(static_cast<pid_t>(helper), SIGKILL);
      reap(static_cast<pid_t>(helper));
    }
    if (proc > 0) {
      ::kill(proc, SIGKILL);
      reap(proc);
    }
  });
  if (st.cgroup) FOUNDRY_TRY_CTX(st.cgroup->add_process(static_cast<pid_t>(helper)), "{}", ctx);
  FOUNDRY_TRY_CTX(send_msg(sync.get(), Msg::Go), "{}", ctx);
  // Read to the end even after a failure: the helper reports the pid and
  // exits, the process closes its end by exec or by exiting; both are then
  // known and reaped.
  std::optional<Error> failure;
  for (;;) {
    Message m = FOUNDRY_TRY_CTX(recv_msg(sync.get()), "{}", ctx);
    if (m.eof) break;
    if (failure) continue;
    switch (m.type) {
      case Msg::Pid:
        proc = static_cast<pid_t>(std::strtol(m.payload.c_str(), nullptr, 10));
        break;
      case Msg::Console:
        if (auto s = send_fd_to_socket(opts.console_socket, m.fd.get(), "/dev/ptmx"); !s)
          failure = std::move(s).error().wrap(ctx);
        break;
      case Msg::Ready:
        try {
          for (const auto& w : json::parse(m.payload).value("warnings", json::array()))
            spdlog::warn("{}", w.get<std::string>());
        } catch (const json::exception&) {
        }
        break;
      case Msg::Failed: failure = deserialize_error(m.payload).wrap(ctx); break;
      default:
        failure = Error(ErrorKind::Operation,
                        fmt::format("{}: unexpected message {} from the exec helper", ctx, static_cast<int>(m.type)));
    }
    // A console socket nobody serves must not leave the process blocked.
    if (failure && proc > 0) ::kill(proc, SIGKILL);
  }
  int hs = 0;
  while (::waitpid(static_cast<pid_t>(helper), &hs, 0) < 0 && errno == EINTR) {
  }
  helper_reaped = true;
  if (failure) return fail(std::move(*failure));
  if (proc <= 0)
    return fail(Error(ErrorKind::Operation, fmt::format("{}: the exec helper ended before starting the process ({})",
                                                        ctx, WIFSIGNALED(hs) ? fmt::format("signal {}", WTERMSIG(hs))
                                                                             : fmt::format("exit code {}", WEXITSTATUS(hs)))));
  if (!opts.pid_file.empty())
    FOUNDRY_TRY_CTX(write_state_file(opts.pid_file, std::to_string(proc)), "{}: write --pid-file", ctx);
  done = true;
  spdlog::debug("{}: process {} runs {}", ctx, proc, p.args.front());
  return proc;
}

Result<RunResult> Runtime::exec_wait(const ExecOptions& opts, bool detach) {
  ForwardedSignals forwarded;
  pid_t pid = FOUNDRY_TRY(exec(opts));
  RunResult res;
  if (detach) return res;
  exit_status(forwarded.wait(pid), res.exit_code, res.signal);
  return res;
}

}  // namespace foundry::container
