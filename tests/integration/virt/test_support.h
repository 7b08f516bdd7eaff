// Helpers shared by the virt integration and e2e tests: a temporary
// directory removed with its contents, a throwaway HTTP server, and a
// libvirtd on qemu:///system.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "foundry/common/subprocess.h"
#include "foundry/common/unique_fd.h"

namespace foundry::testing {

// run() for tests: a command that could not be started comes back as a
// failed RunResult whose err says why, so one check covers both.
inline RunResult sh(const std::vector<std::string>& argv, int timeout_s = 120,
                    const std::vector<std::string>& env = {}) {
  RunOptions o;
  o.timeout = std::chrono::seconds(timeout_s);
  o.extra_env = env;
  auto r = run(argv, o);
  if (r) return *r;
  RunResult f;
  f.err = r.error().to_string();
  return f;
}

// A program on PATH, else in /usr/sbin (root's daemons and tools are there
// and CTest's PATH may lack it); empty when neither has it.
inline std::string program(const char* name) {
  auto p = find_program(name);
  if (p.empty() && std::filesystem::exists(std::string("/usr/sbin/") + name)) p = std::string("/usr/sbin/") + name;
  return p;
}

// Empty when libvirtd answers on qemu:///system, else why not (the reason a
// test prints when it skips). tests/e2e/lib/libvirtd-up.sh starts virtlogd
// and libvirtd when they do not run, as a Debian host with systemd and udev
// has them; bench/ uses the same script.
inline std::string ensure_libvirtd() {
  if (::geteuid() != 0) return "needs root to reach qemu:///system";
  RunOptions o;
  o.timeout = std::chrono::seconds(30);
  auto r = run({"bash", std::string(FOUNDRY_SOURCE_DIR) + "/tests/e2e/lib/libvirtd-up.sh"}, o);
  if (!r) return "libvirtd-up.sh: " + r.error().to_string();
  if (!r->err.empty()) fmt::print(stderr, "{}", r->err);
  if (r->exit_code != 0) return "libvirtd is not available: " + r->err;
  return "";
}

// A temporary directory removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "foundry-virt-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& data) const {
    auto p = (path / name).string();
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
};

// python3 -m http.server on 127.0.0.1, an ephemeral port, serving `dir`.
class HttpServer {
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

 public:
  explicit HttpServer(const std::string& dir) {
    // Built before fork: the test process has threads (libvirt's), so the
    // child may only call async-signal-safe functions.
    std::string py = find_program("python3");
    if (py.empty()) return;
    std::vector<std::string> arg_s = {py, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir};
    std::vector<char*> argv;
    for (auto& a : arg_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(devnull, 2);
      ::setpgid(0, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(devnull);
    ::close(fds[1]);
    UniqueFd r(fds[0]);
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos && ::read(r.get(), &c, 1) == 1) line += c;
    auto p = line.find(" port ");
    if (p != std::string::npos) port_ = std::atoi(line.c_str() + p + 6);
  }
  ~HttpServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string url(const std::string& file) const { return fmt::format("http://127.0.0.1:{}/{}", port_, file); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};


}  // namespace foundry::testing
