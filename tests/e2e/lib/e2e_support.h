// Helpers for end-to-end tests: a child process that is always killed and
// reaped, a free loopback port, a self-removing temporary directory, bounded
// polling of a log file, and the cached VM base image fixture.
//
// Header-only so any tests/e2e/<area> target can use it by adding
// tests/e2e/lib to its include path.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

extern char** environ;

namespace foundry::e2e {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// mkdtemp directory, removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "foundry-e2e-") {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/" + prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A program running in the background in its own process group, with stdout
// and stderr appended to a file. The destructor ends the whole group (TERM,
// then KILL after a grace period) and reaps it, on every exit path.
class BackgroundProcess {
 public:
  BackgroundProcess() = default;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess() { stop(); }

  // Returns an empty string on success, else why it could not start.
  std::string start(const std::vector<std::string>& argv, const std::string& output_file) {
    std::string prog = find_program(argv.at(0));
    if (prog.empty()) return argv[0] + ": program not found";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    int rc = posix_spawn(&pid_, prog.c_str(), &fa, &attr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      pid_ = -1;
      return argv[0] + ": " + std::strerror(rc);
    }
    return "";
  }

  // False once the process has exited (it is then reaped; status() tells how).
  bool alive() {
    if (pid_ < 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  std::string status() const {
    if (!status_) return "running";
    if (WIFEXITED(*status_)) return "exited with status " + std::to_string(WEXITSTATUS(*status_));
    if (WIFSIGNALED(*status_)) return "killed by signal " + std::to_string(WTERMSIG(*status_));
    return "ended";
  }

  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000)) {
    if (pid_ < 0) return;
    ::kill(-pid_, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline) {
      if (!alive()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(-pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = st;
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// Polls until pred() is true, the deadline passes, or abort() says to stop.
// Returns whether pred() became true. The interval is short: the bound is the
// deadline, not a guess at how long something takes.
inline bool wait_until(std::chrono::seconds limit, const std::function<bool()>& pred,
                       const std::function<bool()>& abort = [] { return false; },
                       std::chrono::milliseconds interval = std::chrono::milliseconds(250)) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (abort() || Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(interval);
  }
}

// The contents of a file, "" when it does not exist yet.
inline std::string slurp(const std::string& path) { return read_file(path).value_or(""); }

// The cached base image (tests/e2e/lib/base-image.sh).
struct BaseImage {
  std::string path;
  std::string log;  // what the fixture said on stderr (reused / built in N s)
  double seconds = 0;
};

inline Result<BaseImage> ensure_base_image(std::chrono::seconds timeout = std::chrono::seconds(3600)) {
  auto t0 = Clock::now();
  RunOptions o;
  o.timeout = timeout;
  o.extra_env.push_back(std::string("FOUNDRY_BIN=") + FOUNDRY_BINARY_DIR + "/src/cli/foundry");
  auto r = FOUNDRY_TRY(run_checked({"bash", std::string(FOUNDRY_SOURCE_DIR) + "/tests/e2e/lib/base-image.sh"}, o));
  BaseImage b;
  b.path = r.out.substr(0, r.out.find('\n'));
  b.log = r.err;
  b.seconds = seconds_since(t0);
  return b;
}

}  // namespace foundry::e2e
