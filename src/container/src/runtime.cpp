#include "foundry/container/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "channel.h"
#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/container/hooks.h"
#include "linux.h"

namespace foundry::container {

using json = nlohmann::json;
using namespace detail;

namespace {

std::string absolute(const std::string& p) {
  std::error_code ec;
  auto a = std::filesystem::absolute(p.empty() ? "." : p, ec);
  std::string out = (ec ? std::filesystem::path(p) : a).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string mapping_text(const std::vector<IdMapping>& maps) {
  std::string out;
  for (const auto& m : maps) out += fmt::format("{} {} {}\n", m.container_id, m.host_id, m.size);
  return out;
}

Status write_proc_file(const std::string& path, const std::string& text, const std::string& field) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail(sys_error(ErrorKind::Operation, fmt::format("cannot write {}", path))
                    .wrap(field)
                    .with_hint("host ids must exist and ranges must not overlap"));
  return ok();
}

// The caller's name from /etc/passwd, without NSS: foundry-oci is linked
// statically, where getpwuid_r would need glibc's shared NSS modules.
std::string user_name() {
  std::string uid = std::to_string(::getuid());
  if (auto text = read_file("/etc/passwd")) {
    std::string_view rest = *text;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      size_t a = line.find(':'), b = a == std::string_view::npos ? a : line.find(':', a + 1);
      size_t c = b == std::string_view::npos ? b : line.find(':', b + 1);
      if (c != std::string_view::npos && line.substr(b + 1, c - b - 1) == uid) return std::string(line.substr(0, a));
    }
  }
  return uid;
}

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; call the kernel directly.
int pidfd_open(pid_t pid, unsigned flags) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags)); }
int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

// Waits until the process behind pidfd has exited (not necessarily reaped).
bool wait_exit(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// A pidfd for the container's init, or an invalid fd if it is gone. The
// start time is compared after opening: a pid reused between the check and
// the open cannot slip through.
UniqueFd open_init(const ProcessIdentity& id) {
  if (id.pid <= 0) return {};
  UniqueFd fd(pidfd_open(id.pid, 0));
  if (!fd) return {};
  if (!process_alive(id)) return {};
  return fd;
}

void log_failures(const std::vector<std::string>& failures) {
  for (const auto& f : failures) spdlog::warn("{}", f);
}

}  // namespace

Runtime::Runtime(std::string state_root) : store_(std::move(state_root)) {}

Result<ContainerState> Runtime::create(const CreateOptions& opts) { return create_impl(opts, false); }

Result<ContainerState> Runtime::create_impl(const CreateOptions& opts, bool foreground) {
  FOUNDRY_TRY(validate_container_id(opts.id));
  const std::string ctx = fmt::format("create container \"{}\"", opts.id);
  std::string bundle = absolute(opts.bundle);
  if (!is_dir(bundle))
    return fail(Error(ErrorKind::Config, fmt::format("bundle directory {} does not exist", bundle))
                    .wrap(ctx)
                    .with_hint("pass --bundle with the directory that holds config.json and the rootfs"));
  Spec spec = FOUNDRY_TRY_CTX(load_spec(bundle), "{}", ctx);
  if (!spec.process)
    return fail(Error(ErrorKind::Validation, "config.json: process: is required to create a container")
                    .wrap(ctx)
                    .with_hint("add a \"process\" section with args, cwd and user"));
  std::string rootfs = spec.root->path.front() == '/' ? spec.root->path : bundle + "/" + spec.root->path;
  rootfs = std::filesystem::path(rootfs).lexically_normal().string();
  if (!rootfs.empty() && rootfs.back() == '/' && rootfs.size() > 1) rootfs.pop_back();
  if (!is_dir(rootfs))
    return fail(Error(ErrorKind::Validation, fmt::format("config.json: root.path: {} is not a directory", rootfs))
                    .wrap(ctx)
                    .with_hint("unpack the container's root filesystem there"));
  if (spec.process->terminal && opts.console_socket.empty())
    return fail(Error(ErrorKind::Validation, "process.terminal is true but no --console-socket was given")
                    .wrap(ctx)
                    .with_hint("pass --console-socket, or set process.terminal to false"));

  // Sysctls go to the container's network/IPC namespace: a path naming the
  // runtime's own would silently change the host.
  for (auto type : {NamespaceType::Network, NamespaceType::Ipc}) {
    const Namespace* ns = spec.linux_spec.find_namespace(type);
    if (!ns || ns->path.empty()) continue;
    bool has_sysctl = false;
    for (const auto& [k, v] : spec.linux_spec.sysctl)
      has_sysctl |= type == NamespaceType::Network ? k.rfind("net.", 0) == 0 : k.rfind("net.", 0) != 0;
    struct stat a {}, b {};
    std::string own = fmt::format("/proc/self/ns/{}", proc_ns_name(type));
    if (has_sysctl && ::stat(ns->path.c_str(), &a) == 0 && ::stat(own.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
      return fail(Error(ErrorKind::Validation,
                        fmt::format("linux.sysctl: {} is the host's {} namespace; its sysctls would change the host",
                                    ns->path, to_string(type)))
                      .wrap(ctx)
                      .with_hint("give the container its own namespace or drop the sysctls"));
  }

  UndoList undo;
  spdlog::debug("{}: bundle {} parsed", ctx, bundle);
  FOUNDRY_TRY_CTX(store_.create_dir(opts.id), "{}", ctx);
  undo.push("state directory", [this, id = opts.id] { (void)store_.remove(id); });

  ContainerState st;
  st.id = opts.id;
  st.bundle = bundle;
  st.rootfs = rootfs;
  st.created = now_rfc3339();
  st.owner = user_name();
  st.annotations = spec.annotations;
  st.own_pid_namespace = spec.linux_spec.new_namespace(NamespaceType::Pid);
  st.hooks = spec.hooks;

  CgroupSystem sys = FOUNDRY_TRY_CTX(detect_cgroups(), "{}", ctx);
  spdlog::debug("cgroup layout: {}", sys.summary());
  Cgroup cg = FOUNDRY_TRY_CTX(Cgroup::create(sys, spec.linux_spec.cgroups_path, opts.id), "{}: cgroups ({})", ctx,
                              describe(sys.layout));
  undo.push("cgroup", [cg] { (void)cg.destroy(); });
  st.cgroup = cg;
  // Recorded at once: if this process dies from here on, `delete` (or a
  // restarted daemon) finds the cgroup to remove.
  FOUNDRY_TRY_CTX(store_.save(st), "{}: save state", ctx);
  if (spec.linux_spec.resources)
    FOUNDRY_TRY_CTX(cg.apply(*spec.linux_spec.resources), "{}: cgroups ({})", ctx, describe(sys.layout));

  spdlog::debug("{}: cgroup {} ready in {} hierarchies", ctx, cg.relative_path(), cg.dirs().size());
  std::string fifo = store_.fifo_path(opts.id);
  if (::mkfifo(fifo.c_str(), 0600) != 0) return fail_errno(ErrorKind::Operation, "{}: cannot create {}", ctx, fifo);
  // O_RDWR never blocks on a FIFO; the init keeps this end and blocks in
  // read(2) until `start` writes a byte.
  UniqueFd fifo_fd(::open(fifo.c_str(), O_RDWR | O_CLOEXEC));
  if (!fifo_fd) return fail_errno(ErrorKind::Operation, "{}: cannot open {}", ctx, fifo);

  InitConfig cfg;
  cfg.spec = &spec;
  cfg.bundle = bundle;
  cfg.rootfs = rootfs;
  cfg.cgroup = &cg;
  cfg.fifo_fd = fifo_fd.get();
  cfg.no_pivot = opts.no_pivot;
  cfg.preserve_fds = opts.preserve_fds;
  cfg.runtime_round_trip = !spec.hooks.empty() || static_cast<bool>(opts.on_namespaces_ready);
  // The init joins its cgroup on its own (CgroupEntry: no RCU grace period
  // on the critical path). In a new user namespace it may lack the rights to
  // move itself on v1: the runtime moves it there.
  CgroupEntry entry = FOUNDRY_TRY_CTX(cg.open_entry(), "{}", ctx);
  cfg.cgroup_entry = &entry;
  cfg.enter_v1_self = !spec.linux_spec.new_namespace(NamespaceType::User);
  for (int i = 0; i < 3; ++i) cfg.stdio[i] = opts.stdio[i];
  Spawned child = FOUNDRY_TRY_CTX(spawn_init(cfg), "{}", ctx);
  fifo_fd.reset();
  pid_t pid = child.pid;
  bool reaped = false;
  undo.push("container process", [pid, &reaped] {
    if (reaped) return;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  });
  st.init.pid = pid;
  st.init.start_time = process_start_time(pid).value_or(0);

  if (spec.linux_spec.new_namespace(NamespaceType::User)) {
    FOUNDRY_TRY_CTX(write_proc_file(fmt::format("/proc/{}/uid_map", pid), mapping_text(spec.linux_spec.uid_mappings),
                                    "linux.uidMappings"),
                    "{}", ctx);
    FOUNDRY_TRY_CTX(write_proc_file(fmt::format("/proc/{}/gid_map", pid), mapping_text(spec.linux_spec.gid_mappings),
                                    "linux.gidMappings"),
                    "{}", ctx);
  }
  // Recorded before the init goes on: if this process dies now, `delete`
  // still finds the cgroup and the pid to clean up.
  FOUNDRY_TRY_CTX(store_.save(st), "{}: save state", ctx);
  // Go first: the init sets up namespaces and mounts while a cgroup write
  // that is left to do here (slow: an RCU grace period) is under way; it
  // waits for CgroupJoined before anything that depends on the cgroup.
  FOUNDRY_TRY_CTX(send_msg(child.sync.get(), Msg::Go), "{}", ctx);
  if (!cfg.enter_v1_self || !child.in_v2_cgroup)
    FOUNDRY_TRY_CTX(cg.add_process(pid, !cfg.enter_v1_self, !child.in_v2_cgroup), "{}", ctx);
  entry = CgroupEntry{};
  FOUNDRY_TRY_CTX(send_msg(child.sync.get(), Msg::CgroupJoined), "{}", ctx);
  spdlog::debug("{}: init {} spawned and in its cgroup", ctx, pid);

  for (;;) {
    Message m = FOUNDRY_TRY_CTX(recv_msg(child.sync.get()), "{}", ctx);
    if (m.eof) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      reaped = true;
      std::string how = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                            : fmt::format("exit code {}", WEXITSTATUS(status));
      return fail(Error(ErrorKind::Operation, fmt::format("the container's init ended during setup ({})", how))
                      .wrap(ctx));
    }
    if (m.type == Msg::Failed) return fail(deserialize_error(m.payload).wrap(ctx));
    if (m.type == Msg::Console) {
      FOUNDRY_TRY_CTX(send_fd_to_socket(opts.console_socket, m.fd.get(), "/dev/ptmx"), "{}", ctx);
      continue;
    }
    if (m.type == Msg::NeedRuntimeHooks) {
      std::string state_json = st.oci_state(ContainerStatus::Creating).dump();
      FOUNDRY_TRY_CTX(run_hooks(spec.hooks.prestart, "prestart", state_json), "{}", ctx);
      FOUNDRY_TRY_CTX(run_hooks(spec.hooks.create_runtime, "createRuntime", state_json), "{}", ctx);
      if (opts.on_namespaces_ready) FOUNDRY_TRY_CTX(opts.on_namespaces_ready(st), "{}", ctx);
      FOUNDRY_TRY_CTX(send_msg(child.sync.get(), Msg::HooksDone, state_json), "{}", ctx);
      continue;
    }
    if (m.type == Msg::Ready) {
      try {
        for (const auto& w : json::parse(m.payload).value("warnings", json::array())) spdlog::warn("{}", w.get<std::string>());
      } catch (const json::exception&) {
      }
      break;
    }
    return fail(ErrorKind::Operation, "{}: unexpected message {} from the init", ctx, static_cast<int>(m.type));
  }

  spdlog::debug("{}: init ready", ctx);
  st.recorded = ContainerStatus::Created;
  FOUNDRY_TRY_CTX(store_.save(st), "{}: save state", ctx);
  if (!opts.pid_file.empty())
    FOUNDRY_TRY_CTX(write_state_file(absolute(opts.pid_file), std::to_string(pid)), "{}: write --pid-file", ctx);
  FOUNDRY_TRY_CTX(send_msg(child.sync.get(), Msg::Done), "{}", ctx);
  undo.commit();
  (void)foreground;
  return st;
}

Status Runtime::start(const std::string& id) {
  ContainerState st = FOUNDRY_TRY(store_.load(id));
  UniqueFd lock = FOUNDRY_TRY(store_.lock(id));
  ContainerStatus status = store_.status(st);
  const std::string ctx = fmt::format("cannot start container \"{}\"", id);
  switch (status) {
    case ContainerStatus::Created: break;
    case ContainerStatus::Running:
      return fail(Error(ErrorKind::Operation, fmt::format("{}: it is already running", ctx))
                      .with_hint("a container starts once; create a new one to run again"));
    case ContainerStatus::Stopped:
      return fail(Error(ErrorKind::Operation, fmt::format("{}: it has stopped", ctx))
                      .with_hint(fmt::format("delete it (foundry-oci delete {}) and create it again", id)));
    case ContainerStatus::Creating:
      return fail(Error(ErrorKind::Operation, fmt::format("{}: it is still being created", ctx)));
  }
  std::string fifo = store_.fifo_path(id);
  UniqueFd fd(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENXIO) return fail(Error(ErrorKind::Operation, fmt::format("{}: it has stopped", ctx)));
    return fail_errno(ErrorKind::Operation, "{}: cannot open {}", ctx, fifo);
  }
  if (::write(fd.get(), "0", 1) != 1) return fail_errno(ErrorKind::Operation, "{}: cannot signal the init", ctx);
  // The fifo's absence is what marks the container as started (status()).
  ::unlink(fifo.c_str());
  log_failures(run_hooks_best_effort(st.hooks.poststart, "poststart",
                                     st.oci_state(ContainerStatus::Running).dump()));
  return ok();
}

Result<json> Runtime::state(const std::string& id) const {
  ContainerState st = FOUNDRY_TRY(store_.load(id));
  return st.oci_state(store_.status(st));
}

Status Runtime::kill(const std::string& id, int sig, bool all) {
  ContainerState st = FOUNDRY_TRY(store_.load(id));
  ContainerStatus status = store_.status(st);
  if (status == ContainerStatus::Stopped)
    return fail(Error(ErrorKind::Operation, fmt::format("cannot kill container \"{}\": it is not running", id))
                    .with_hint(fmt::format("remove it with `foundry-oci delete {}`", id)));
  if (all && st.cgroup) return st.cgroup->signal_all(sig);
  UniqueFd pidfd = open_init(st.init);
  if (!pidfd) return fail(ErrorKind::Operation, "cannot kill container \"{}\": its init has exited", id);
  if (pidfd_send_signal(pidfd.get(), sig, nullptr, 0) != 0)
    return fail_errno(ErrorKind::Operation, "cannot send signal {} to container \"{}\" (pid {})", sig, id, st.init.pid);
  return ok();
}

Status Runtime::remove(const std::string& id, bool force) {
  ContainerState st = FOUNDRY_TRY(store_.load(id));
  UniqueFd lock = FOUNDRY_TRY(store_.lock(id));
  ContainerStatus status = store_.status(st);
  if (!force && (status == ContainerStatus::Running || status == ContainerStatus::Creating))
    return fail(Error(ErrorKind::Operation,
                      fmt::format("cannot delete container \"{}\": it is {}", id, to_string(status)))
                    .with_hint(fmt::format("stop it first (foundry-oci kill {} KILL) or use delete --force", id)));
  if (UniqueFd pidfd = open_init(st.init)) {
    pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);
    if (!wait_exit(pidfd.get(), 10000))
      return fail(ErrorKind::Operation, "cannot delete container \"{}\": its init (pid {}) survived SIGKILL for 10 s",
                  id, st.init.pid);
  }
  if (st.cgroup) FOUNDRY_TRY_CTX(st.cgroup->destroy(), "delete container \"{}\"", id);
  if (!st.bundle.empty())
    log_failures(
        run_hooks_best_effort(st.hooks.poststop, "poststop", st.oci_state(ContainerStatus::Stopped).dump()));
  FOUNDRY_TRY_CTX(store_.remove(id), "delete container \"{}\"", id);
  return ok();
}

Result<RunResult> Runtime::run(const CreateOptions& opts, bool detach) {
  ForwardedSignals forwarded;

  ContainerState st = FOUNDRY_TRY(create_impl(opts, true));
  if (auto s = start(opts.id); !s) {
    (void)remove(opts.id, true);
    return fail(std::move(s).error());
  }
  RunResult res;
  spdlog::debug("container \"{}\": started", opts.id);
  if (detach) return res;
  pid_t pid = st.init.pid;
  int status = forwarded.wait(pid);
  exit_status(status, res.exit_code, res.signal);
  spdlog::debug("container \"{}\": init exited with status 0x{:x}", opts.id, status);
  if (st.cgroup) res.oom_kills = st.cgroup->oom_kills();
  FOUNDRY_TRY(remove(opts.id, true));
  spdlog::debug("container \"{}\": deleted", opts.id);
  return res;
}

detail::ForwardedSignals::ForwardedSignals() {
  sigemptyset(&set_);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH}) sigaddset(&set_, s);
  ::sigprocmask(SIG_BLOCK, &set_, &old_);
}

detail::ForwardedSignals::~ForwardedSignals() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }

int detail::ForwardedSignals::wait(pid_t pid) const {
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) return status;
    if (w < 0 && errno != EINTR) return 0;
    siginfo_t info{};
    int sig = ::sigwaitinfo(&set_, &info);
    if (sig < 0 || sig == SIGCHLD) continue;
    ::kill(pid, sig);
  }
}

void detail::exit_status(int status, int& exit_code, int& signal) {
  signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  exit_code = signal ? 128 + signal : WEXITSTATUS(status);
}

Result<int> parse_signal(const std::string& s) {
  if (s.empty()) return fail(ErrorKind::Config, "empty signal name");
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int n = std::stoi(s.substr(0, 6));
    if (n <= 0 || n >= NSIG)
      return fail(Error(ErrorKind::Config, fmt::format("signal {} is out of range", s)).with_hint("use 1..64 or a name"));
    return n;
  }
  std::string up;
  for (char c : s) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (up.rfind("SIG", 0) == 0) up = up.substr(3);
  static const std::pair<const char*, int> names[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},       {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},   {"FPE", SIGFPE},       {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
      {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},       {"XCPU", SIGXCPU},
      {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},   {"IO", SIGIO},
      {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS},
  };
  for (const auto& [n, v] : names)
    if (up == n) return v;
  // RTMIN+n / RTMAX-n
  if (up.rfind("RTMIN", 0) == 0 || up.rfind("RTMAX", 0) == 0) {
    bool min = up[3] == 'I';
    int base = min ? SIGRTMIN : SIGRTMAX;
    if (up.size() == 5) return base;
    if (up.size() > 6 && ((min && up[5] == '+') || (!min && up[5] == '-'))) {
      try {
        int off = std::stoi(up.substr(6));
        int v = min ? base + off : base - off;
        if (v >= SIGRTMIN && v <= SIGRTMAX) return v;
      } catch (...) {
      }
    }
  }
  return fail(Error(ErrorKind::Config, fmt::format("unknown signal \"{}\"", s))
                  .with_hint("use a name such as TERM, SIGKILL or a number such as 9"));
}

json features_json() {
  json caps = json::array();
  for (int c = 0; c <= 40; ++c) caps.push_back(capability_name(c));
  json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", kOciVersion},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions",
       {"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime", "loud", "mand",
        "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
        "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
        "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable"}},
      {"linux",
       {
           {"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
           {"capabilities", caps},
           {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", false}}},
           {"seccomp",
            {{"enabled", true},
             {"actions",
              {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
               "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
             {"operators",
              {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
               "SCMP_CMP_NE"}},
             {"archs", {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}},
             {"knownFlags",
              {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}},
             {"supportedFlags",
              {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}}}},
           {"apparmor", {{"enabled", false}}},
           {"selinux", {{"enabled", false}}},
           {"intelRdt", {{"enabled", false}}},
           {"mountExtensions", {{"idmap", {{"enabled", false}}}}},
       }},
  };
  json ann = {{"org.foundry.runtime", "foundry-oci"}};
  if (auto sys = detect_cgroups()) {
    ann["org.foundry.cgroups.layout"] = std::string(to_string(sys->layout));
    ann["org.foundry.cgroups.summary"] = sys->summary();
  }
  f["annotations"] = ann;
  return f;
}

}  // namespace foundry::container
