#include "foundry/container/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <nlohmann/json.hpp>

#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"
#include "sigpipe.h"

namespace foundry::container {

using json = nlohmann::json;

namespace {

// Runs one hook: `path` with argv `args` (args[0] is only the name the
// program sees) and exactly the hook's environment, the state on stdin.
// Output is captured so a failing hook's stderr can be quoted.
Status run_one(const Hook& h, const std::string& name, const std::string& state_json) {
  int in[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return fail_errno(ErrorKind::Operation, "{}: pipe", name);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return fail_errno(ErrorKind::Operation, "{}: pipe", name);
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 1);  // stdout too: hooks print errors anywhere
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = h.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, h.path.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return fail(sys_error(ErrorKind::Operation, fmt::format("{}: cannot run {}", name, h.path))
                    .with_hint("hook paths are resolved in the runtime's mount namespace; check the path exists"));
  }
  in_r.reset();
  err_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  std::string_view to_write = state_json;
  std::string output;
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::seconds(h.timeout.value_or(0));
  bool timed_out = false;
  char buf[4096];
  while (err_r || in_w) {
    pollfd p[2];
    int n = 0, ie = -1, ii = -1;
    if (err_r) { ie = n; p[n++] = {err_r.get(), POLLIN, 0}; }
    if (in_w) { ii = n; p[n++] = {in_w.get(), POLLOUT, 0}; }
    int wait_ms = -1;
    if (h.timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left);
    }
    int pr = ::poll(p, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    if (ie >= 0 && (p[ie].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = ::read(err_r.get(), buf, sizeof buf);
      if (r > 0) {
        if (output.size() < 65536) output.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        err_r.reset();
      }
    }
    if (ii >= 0 && (p[ii].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), to_write.data(), to_write.size());
      if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
      // A hook need not read its stdin: EPIPE just ends the writing.
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || to_write.empty()) in_w.reset();
    }
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (timed_out)
    return fail(Error(ErrorKind::Operation, fmt::format("{} ({}) did not finish within {} s and was killed", name,
                                                        h.path, *h.timeout))
                    .with_detail(output));
  if (WIFSIGNALED(st))
    return fail(Error(ErrorKind::Operation, fmt::format("{} ({}) was killed by signal {}", name, h.path, WTERMSIG(st)))
                    .with_detail(output));
  if (WEXITSTATUS(st) != 0) {
    std::string first = output.substr(0, output.find('\n'));
    return fail(Error(ErrorKind::Operation, fmt::format("{} ({}) failed with exit code {}{}{}", name, h.path,
                                                        WEXITSTATUS(st), first.empty() ? "" : ": ", first))
                    .with_detail(output));
  }
  return ok();
}

}  // namespace

Status run_hooks(const std::vector<Hook>& hooks, std::string_view phase, const std::string& state_json) {
  detail::SigpipeGuard guard;
  for (size_t i = 0; i < hooks.size(); ++i) {
    std::string name = fmt::format("hooks.{}[{}]", phase, i);
    spdlog::debug("running {}: {}", name, hooks[i].path);
    FOUNDRY_TRY(run_one(hooks[i], name, state_json));
  }
  return ok();
}

std::vector<std::string> run_hooks_best_effort(const std::vector<Hook>& hooks, std::string_view phase,
                                               const std::string& state_json) {
  std::vector<std::string> failures;
  detail::SigpipeGuard guard;
  for (size_t i = 0; i < hooks.size(); ++i) {
    std::string name = fmt::format("hooks.{}[{}]", phase, i);
    if (auto st = run_one(hooks[i], name, state_json); !st) failures.push_back(st.error().to_string());
  }
  return failures;
}

json hooks_to_json(const Hooks& h) {
  auto list = [](const std::vector<Hook>& v) {
    json a = json::array();
    for (const auto& x : v) {
      json o = {{"path", x.path}};
      if (!x.args.empty()) o["args"] = x.args;
      if (!x.env.empty()) o["env"] = x.env;
      if (x.timeout) o["timeout"] = *x.timeout;
      a.push_back(o);
    }
    return a;
  };
  json j = json::object();
  auto put = [&](const char* k, const std::vector<Hook>& v) {
    if (!v.empty()) j[k] = list(v);
  };
  put("prestart", h.prestart);
  put("createRuntime", h.create_runtime);
  put("createContainer", h.create_container);
  put("startContainer", h.start_container);
  put("poststart", h.poststart);
  put("poststop", h.poststop);
  return j;
}

Hooks hooks_from_json(const json& j) {
  Hooks h;
  auto list = [&](const char* k, std::vector<Hook>& out) {
    if (!j.contains(k)) return;
    for (const auto& o : j.at(k)) {
      Hook x;
      x.path = o.value("path", "");
      if (o.contains("args")) x.args = o.at("args").get<std::vector<std::string>>();
      if (o.contains("env")) x.env = o.at("env").get<std::vector<std::string>>();
      if (o.contains("timeout")) x.timeout = o.at("timeout").get<int>();
      out.push_back(std::move(x));
    }
  };
  list("prestart", h.prestart);
  list("createRuntime", h.create_runtime);
  list("createContainer", h.create_container);
  list("startContainer", h.start_container);
  list("poststart", h.poststart);
  list("poststop", h.poststop);
  return h;
}

}  // namespace foundry::container
