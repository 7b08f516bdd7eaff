// Process attributes the init sets on itself: resource limits, user and
// groups, capabilities, seccomp. All of them are applied from inside the
// container's process, never from the runtime: a limit set with prlimit(2)
// from outside needs privileges over the target that the runtime may lack
// (and racing a process that is already running is avoidable).
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "foundry/common/file.h"
#include "linux.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace foundry::container::detail {

namespace {

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

int last_cap() {
  auto t = read_file("/proc/sys/kernel/cap_last_cap");
  if (t) {
    try {
      return std::stoi(*t);
    } catch (...) {
    }
  }
  return CAP_LAST_CAP;
}

uint32_t seccomp_action_value(SeccompAction a, std::optional<uint32_t> errno_ret) {
  switch (a) {
    case SeccompAction::Kill: return SCMP_ACT_KILL;
    case SeccompAction::KillProcess: return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::KillThread: return SCMP_ACT_KILL_THREAD;
    case SeccompAction::Trap: return SCMP_ACT_TRAP;
    case SeccompAction::Errno: return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case SeccompAction::Trace: return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case SeccompAction::Allow: return SCMP_ACT_ALLOW;
    case SeccompAction::Log: return SCMP_ACT_LOG;
    case SeccompAction::Notify: return SCMP_ACT_NOTIFY;
  }
  return SCMP_ACT_KILL;
}

scmp_compare seccomp_op_value(SeccompOp op) {
  switch (op) {
    case SeccompOp::NotEqual: return SCMP_CMP_NE;
    case SeccompOp::LessThan: return SCMP_CMP_LT;
    case SeccompOp::LessEqual: return SCMP_CMP_LE;
    case SeccompOp::EqualTo: return SCMP_CMP_EQ;
    case SeccompOp::GreaterEqual: return SCMP_CMP_GE;
    case SeccompOp::GreaterThan: return SCMP_CMP_GT;
    case SeccompOp::MaskedEqual: return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

}  // namespace

// Sets every limit. When the runtime lacks CAP_SYS_RESOURCE a hard limit can
// only go down; a request above the current hard limit is then clamped to it
// and reported as a warning rather than failing the container. That is what
// lets podman (which asks for RLIMIT_NOFILE 1048576) run on hosts where the
// runtime's own hard limit is lower and cannot be raised.
Status apply_rlimits(const Process& p, std::vector<std::string>& warnings) {
  for (const auto& l : p.rlimits) {
    rlimit r{static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)};
    auto res = static_cast<__rlimit_resource>(l.resource);
    if (::setrlimit(res, &r) == 0) continue;
    if (errno != EPERM)
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot set {} to soft {} hard {}", l.name, l.soft, l.hard))
                      .wrap("process.rlimits"));
    rlimit cur{};
    ::getrlimit(res, &cur);
    rlimit clamped{std::min<rlim_t>(r.rlim_cur, cur.rlim_max), std::min<rlim_t>(r.rlim_max, cur.rlim_max)};
    if (::setrlimit(res, &clamped) != 0)
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot set {} (even clamped to the hard limit {})",
                                                              l.name, cur.rlim_max))
                      .wrap("process.rlimits"));
    warnings.push_back(fmt::format("process.rlimits: {} hard limit {} is above this host's {} and the runtime lacks "
                                   "CAP_SYS_RESOURCE; clamped to soft {} hard {}",
                                   l.name, l.hard, cur.rlim_max, clamped.rlim_cur, clamped.rlim_max));
  }
  return ok();
}

SeccompFilter::~SeccompFilter() {
  if (ctx) seccomp_release(ctx);
}

Status compile_seccomp(const Seccomp& sc, SeccompFilter& out) {
  scmp_filter_ctx ctx = seccomp_init(seccomp_action_value(sc.default_action, sc.default_errno_ret));
  if (!ctx) return fail(ErrorKind::Operation, "linux.seccomp: cannot initialise the filter");
  out.ctx = ctx;
  // The spec decides noNewPrivileges; libseccomp must not set it behind our back.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (size_t i = 0; i < sc.architectures.size(); ++i) {
    std::string name = sc.architectures[i].substr(10);  // after SCMP_ARCH_
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    uint32_t arch = seccomp_arch_resolve_name(name.c_str());
    if (arch == 0)
      return fail(ErrorKind::Validation, "linux.seccomp.architectures[{}]: unknown architecture {}", i,
                  sc.architectures[i]);
    int rc = seccomp_arch_add(ctx, arch);
    if (rc != 0 && rc != -EEXIST)
      return fail(Error(ErrorKind::Operation, fmt::format("linux.seccomp.architectures[{}]: cannot add {}", i,
                                                          sc.architectures[i]))
                      .with_errno(-rc));
  }
  for (const auto& f : sc.flags) {
    int rc = 0;
    if (f == "SECCOMP_FILTER_FLAG_LOG") rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    else if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    else if (f == "SECCOMP_FILTER_FLAG_TSYNC") rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc != 0)
      return fail(Error(ErrorKind::Operation, fmt::format("linux.seccomp.flags: cannot set {}", f)).with_errno(-rc));
  }
  uint32_t default_action = seccomp_action_value(sc.default_action, sc.default_errno_ret);
  for (size_t i = 0; i < sc.syscalls.size(); ++i) {
    const auto& rule = sc.syscalls[i];
    uint32_t action = seccomp_action_value(rule.action, rule.errno_ret);
    if (action == default_action) continue;  // libseccomp rejects no-op rules
    std::vector<scmp_arg_cmp> args;
    for (const auto& a : rule.args)
      args.push_back(scmp_arg_cmp{a.index, seccomp_op_value(a.op), a.value, a.value_two});
    for (const auto& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      // Profiles list system calls of newer kernels and other
      // architectures; an unknown name cannot be called here anyway.
      if (nr == __NR_SCMP_ERROR) continue;
      int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()), args.data());
      if (rc != 0)
        return fail(Error(ErrorKind::Operation,
                          fmt::format("linux.seccomp.syscalls[{}]: cannot add a rule for {}", i, name))
                        .with_errno(-rc));
    }
  }
  return ok();
}

Status load_seccomp(SeccompFilter& f) {
  if (!f.ctx) return ok();
  int rc = seccomp_load(f.ctx);
  if (rc != 0)
    return fail(Error(ErrorKind::Operation, "linux.seccomp: cannot load the filter")
                    .with_errno(-rc)
                    .with_hint("without noNewPrivileges the filter needs CAP_SYS_ADMIN"));
  return ok();
}

Status switch_user_and_caps(const Process& p, bool in_new_userns) {
  const auto& caps = p.capabilities;
  if (caps) {
    int last = last_cap();
    for (int c = 0; c <= last; ++c) {
      if (contains(caps->bounding, c)) continue;
      if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
        return fail_errno(ErrorKind::Operation, "process.capabilities.bounding: cannot drop {}", capability_name(c));
    }
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail_errno(ErrorKind::Operation, "prctl(PR_SET_KEEPCAPS)");
  std::vector<gid_t> groups(p.user.additional_gids.begin(), p.user.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) != 0) {
    // A user namespace whose setgroups is "deny" cannot change groups; an
    // empty list is then what it already has.
    if (!(errno == EPERM && in_new_userns && groups.empty()))
      return fail_errno(ErrorKind::Operation, "process.user.additionalGids: setgroups failed");
  }
  if (::setresgid(p.user.gid, p.user.gid, p.user.gid) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("process.user.gid: cannot switch to gid {}", p.user.gid))
                    .with_hint("in a user namespace the gid must be mapped"));
  if (::setresuid(p.user.uid, p.user.uid, p.user.uid) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("process.user.uid: cannot switch to uid {}", p.user.uid))
                    .with_hint("in a user namespace the uid must be mapped"));
  ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);

  if (!caps && p.user.uid == 0) return ok();  // root keeps what it has
  cap_t c = cap_init();
  if (!c) return fail_errno(ErrorKind::Operation, "cap_init");
  auto set = [&](const std::vector<int>& v, cap_flag_t flag) {
    if (v.empty()) return 0;
    std::vector<cap_value_t> vals(v.begin(), v.end());
    return cap_set_flag(c, flag, static_cast<int>(vals.size()), vals.data(), CAP_SET);
  };
  if (caps) {
    set(caps->effective, CAP_EFFECTIVE);
    set(caps->permitted, CAP_PERMITTED);
    set(caps->inheritable, CAP_INHERITABLE);
  }
  int rc = cap_set_proc(c);
  int e = errno;
  cap_free(c);
  if (rc != 0) {
    errno = e;
    return fail(sys_error(ErrorKind::Operation, "process.capabilities: cannot set the capability sets")
                    .with_hint("every effective capability must also be permitted and in the bounding set"));
  }
  if (caps) {
    cap_reset_ambient();
    for (int a : caps->ambient) {
      // The kernel only raises an ambient capability that is permitted and
      // inheritable; runc's default spec lists ambient ones without
      // inheritable, so (like runc) those are skipped.
      if (!contains(caps->permitted, a) || !contains(caps->inheritable, a)) continue;
      if (cap_set_ambient(static_cast<cap_value_t>(a), CAP_SET) != 0)
        return fail_errno(ErrorKind::Operation, "process.capabilities.ambient: cannot raise {}", capability_name(a));
    }
  }
  return ok();
}

Result<std::string> find_executable(const Process& p) {
  const std::string& prog = p.args.at(0);
  auto usable = [](const std::string& path, std::string& why) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      why = std::strerror(errno);
      return false;
    }
    if (!S_ISREG(st.st_mode)) {
      why = "not a regular file";
      return false;
    }
    if ((st.st_mode & 0111) == 0) {
      why = "not executable";
      return false;
    }
    return true;
  };
  std::string why;
  if (prog.find('/') != std::string::npos) {
    std::string path = prog.front() == '/' ? prog : p.cwd + "/" + prog;
    if (usable(path, why)) return prog;
    return fail(Error(ErrorKind::Validation, fmt::format("process.args[0]: \"{}\" cannot be executed: {}", prog, why))
                    .with_hint("the path is inside the container's rootfs; check the bundle's rootfs"));
  }
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : p.env)
    if (e.rfind("PATH=", 0) == 0) path_var = e.substr(5);
  size_t start = 0;
  std::string first_problem;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + prog;
    if (usable(cand, why)) return cand;
    if (why != std::strerror(ENOENT) && first_problem.empty()) first_problem = cand + ": " + why;
    start = end + 1;
  }
  if (!first_problem.empty())
    return fail(Error(ErrorKind::Validation, fmt::format("process.args[0]: \"{}\" cannot be executed ({})", prog,
                                                         first_problem))
                    .with_hint("make the file executable in the rootfs"));
  return fail(Error(ErrorKind::Validation,
                    fmt::format("process.args[0]: executable \"{}\" not found in the container's PATH ({})", prog,
                                path_var))
                  .with_hint("install the program in the bundle's rootfs or give its full path in process.args[0]"));
}

std::vector<std::string> final_environment(const Process& p) {
  std::vector<std::string> env = p.env;
  for (const auto& e : env)
    if (e.rfind("HOME=", 0) == 0) return env;
  std::string home = "/";
  std::ifstream pw("/etc/passwd");
  std::string line;
  while (std::getline(pw, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string part;
    while (std::getline(ss, part, ':')) f.push_back(part);
    if (f.size() >= 6 && f[2] == std::to_string(p.user.uid)) {
      home = f[5].empty() ? "/" : f[5];
      break;
    }
  }
  env.push_back("HOME=" + home);
  return env;
}


Result<ProcessImage> become_process(const Process& p, const Seccomp* seccomp, bool in_new_userns,
                                    int preserve_fds) {
  ProcessImage image;
  FOUNDRY_TRY(apply_rlimits(p, image.warnings));
  ::umask(p.user.umask.value_or(022));
  image.exe = FOUNDRY_TRY(find_executable(p));
  image.env = final_environment(p);

  SeccompFilter filter;
  if (seccomp) FOUNDRY_TRY(compile_seccomp(*seccomp, filter));
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
  // while we still have it. With it, load as late as possible so the filter
  // does not constrain the runtime's own remaining steps.
  if (seccomp && !p.no_new_privileges) FOUNDRY_TRY(load_seccomp(filter));
  FOUNDRY_TRY(switch_user_and_caps(p, in_new_userns));
  if (::chdir(p.cwd.c_str()) != 0)
    return fail(sys_error(ErrorKind::Validation, fmt::format("process.cwd: cannot enter \"{}\"", p.cwd))
                    .with_hint("the working directory must exist in the container and be accessible to the user"));
  if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return fail_errno(ErrorKind::Operation, "process.noNewPrivileges: prctl failed");
  if (seccomp && p.no_new_privileges) FOUNDRY_TRY(load_seccomp(filter));

  // Only stdio and the preserved fds reach the program.
  for (int fd = 3; fd < 3 + preserve_fds; ++fd) ::fcntl(fd, F_SETFD, 0);
  ::syscall(SYS_close_range, 3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
  return image;
}

void exec_image(const Process& p, ProcessImage& image) {
  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : image.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  ::execve(image.exe.c_str(), argv.data(), envp.data());
}

Status apply_oom_score_adj(const Process& p) {
  if (!p.oom_score_adj) return ok();
  UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  std::string v = std::to_string(*p.oom_score_adj);
  if (!fd || ::write(fd.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
    return fail(sys_error(ErrorKind::Operation, fmt::format("process.oomScoreAdj: cannot set {}", v))
                    .with_hint("lowering the OOM score needs CAP_SYS_RESOURCE"));
  return ok();
}

void reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace foundry::container::detail
