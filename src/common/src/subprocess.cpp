#include "foundry/common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "foundry/common/unique_fd.h"

extern char** environ;

namespace foundry {

std::string RunResult::describe() const {
  if (timed_out) return "timed out";
  if (signal != 0) return fmt::format("killed by signal {}", signal);
  std::string first = err.substr(0, err.find('\n'));
  if (first.empty()) first = out.substr(0, out.find('\n'));
  if (first.empty()) return fmt::format("exit {}", exit_code);
  return fmt::format("exit {}: {}", exit_code, first);
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/" + name;
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
    start = end + 1;
  }
  return "";
}

namespace {

struct Pipe {
  UniqueFd r, w;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno(ErrorKind::Operation, "pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

Result<RunResult> run(const std::vector<std::string>& argv, const RunOptions& opts) {
  if (argv.empty()) return fail(ErrorKind::Operation, "run: empty argv");
  std::string prog = find_program(argv[0]);
  if (prog.empty())
    return fail(Error(ErrorKind::Operation, fmt::format("{}: program not found", argv[0]))
                    .with_hint("install it (scripts/install-deps) or fix PATH"));

  auto in = FOUNDRY_TRY(make_pipe());
  Pipe out, err;
  if (opts.capture) {
    out = FOUNDRY_TRY(make_pipe());
    err = FOUNDRY_TRY(make_pipe());
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so a timeout kills grandchildren too; default signal
  // dispositions and an empty mask regardless of what the caller set.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (opts.stdin_data) {
    posix_spawn_file_actions_adddup2(&fa, in.r.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  if (opts.capture) {
    posix_spawn_file_actions_adddup2(&fa, out.w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err.w.get(), 2);
  }
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opts.cwd.c_str());

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (const auto& kv : opts.extra_env) {
    auto key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(envs, [&](const std::string& s) { return s.rfind(key, 0) == 0; });
    envs.push_back(kv);
  }
  std::vector<char*> cenv;
  for (auto& s : envs) cenv.push_back(s.data());
  cenv.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, prog.c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return fail_errno(ErrorKind::Operation, "cannot start {}", argv[0]);
  }
  in.r.reset();
  out.w.reset();
  err.w.reset();

  RunResult res;
  std::string_view to_write = opts.stdin_data ? std::string_view(*opts.stdin_data) : std::string_view();
  if (to_write.empty()) in.w.reset();
  else ::fcntl(in.w.get(), F_SETFL, O_NONBLOCK);

  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + opts.timeout;
  char buf[65536];
  while (out.r || err.r || in.w) {
    struct pollfd pfd[3];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1;
    if (out.r) { idx_out = n; pfd[n++] = {out.r.get(), POLLIN, 0}; }
    if (err.r) { idx_err = n; pfd[n++] = {err.r.get(), POLLIN, 0}; }
    if (in.w) { idx_in = n; pfd[n++] = {in.w.get(), POLLOUT, 0}; }
    int wait_ms = -1;
    if (opts.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) {
        res.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left);
    }
    int pr = ::poll(pfd, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pr == 0) continue;  // the deadline check above ends the loop
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || !(pfd[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) sink.append(buf, static_cast<size_t>(r));
      else if (r == 0 || errno != EINTR) fd.reset();
    };
    drain(idx_out, out.r, res.out);
    drain(idx_err, err.r, res.err);
    if (idx_in >= 0 && (pfd[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in.w.get(), to_write.data(), to_write.size());
      if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
      if (w < 0 && errno != EAGAIN && errno != EINTR) to_write = {};
      if (to_write.empty()) in.w.reset();
    }
  }
  if (!opts.capture && opts.timeout.count() > 0 && !res.timed_out) {
    // Nothing to poll: wait for the child with the deadline.
    for (;;) {
      int st = 0;
      pid_t w = ::waitpid(pid, &st, WNOHANG);
      if (w == pid) {
        if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st);
        if (WIFSIGNALED(st)) res.signal = WTERMSIG(st);
        return res;
      }
      if (clock::now() >= deadline) {
        res.timed_out = true;
        break;
      }
      ::usleep(10000);
    }
  }
  if (res.timed_out) ::kill(-pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) res.signal = WTERMSIG(st);
  if (res.timed_out) res.signal = 0;
  return res;
}

Result<RunResult> run_checked(const std::vector<std::string>& argv, const RunOptions& opts) {
  auto r = FOUNDRY_TRY(run(argv, opts));
  if (!r.ok())
    return fail(Error(ErrorKind::Operation, fmt::format("{} failed: {}", argv[0], r.describe())).with_detail(r.err));
  return r;
}

}  // namespace foundry
