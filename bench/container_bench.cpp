// Container lifecycle latency: create + start + wait + delete of the same
// busybox bundle running /bin/true, N times for each runtime, interleaved
// (round i runs every runtime once, in an order that rotates) so that load
// from elsewhere on the machine hits all of them alike:
//   foundry-oci   the daemonless CLI, one process per step (as podman calls it)
//   runc          Debian's runc, the same steps and bundle
//   foundryd      the daemon through JSON-RPC on its Unix socket (what the
//                 `foundry` client sends), create/start/delete as calls
// Prints median and p99 per runtime, the ratios, and foundryd's VmRSS after
// start and after the runs. Needs root.
//
//   foundry_bench_container [--runs N] [--oci PATH] [--foundryd PATH] [--runc PATH]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/container/spec.h"
#include "foundry/daemon/jsonrpc.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "foundry_bench_container: %s\n", msg.c_str());
  std::exit(1);
}

// Runs argv with stdio on /dev/null; its exit code.
int spawn_wait(const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
  pid_t pid;
  int rc = ::posix_spawn(&pid, a[0], &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) die("cannot run " + argv[0] + ": " + std::strerror(rc));
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Waits for a process that may or may not be our child (an init handed to
// this subreaper, or a child of foundryd) to exit, and reaps it if it is ours.
void wait_exit(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 30000) < 0 && errno == EINTR) {
    }
    ::close(fd);
  }
  ::waitpid(pid, nullptr, WNOHANG);
}

pid_t read_pid(const std::string& file) {
  auto t = foundry::read_file(file);
  if (!t) die("no pid file " + file);
  return static_cast<pid_t>(std::stol(*t));
}

long vm_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

struct Series {
  std::string name;
  std::vector<double> ms;
  double pct(double p) const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  }
};

std::string self_dir() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 200;
  std::string build = fs::path(self_dir()).parent_path().string();
  std::string oci = build + "/src/oci/foundry-oci";
  std::string foundryd = build + "/src/daemon/foundryd";
  std::string runc = foundry::find_program("runc");
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--runs") runs = std::stoi(argv[i + 1]);
    else if (k == "--oci") oci = argv[i + 1];
    else if (k == "--foundryd") foundryd = argv[i + 1];
    else if (k == "--runc") runc = argv[i + 1];
    else die("unknown option " + k);
  }
  if (::geteuid() != 0) die("needs root");
  // Inits orphaned by `create` come back here to be reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  std::string tmp = (fs::temp_directory_path() / "foundry-bench-XXXXXX").string();
  if (!::mkdtemp(tmp.data())) die("mkdtemp");
  ::chmod(tmp.c_str(), 0755);
  std::string bundle = tmp + "/bundle";
  fs::create_directories(bundle + "/rootfs/bin");
  for (const char* d : {"proc", "sys", "dev", "tmp", "etc"}) fs::create_directories(bundle + "/rootfs/" + d);
  fs::copy_file("/bin/busybox", bundle + "/rootfs/bin/busybox");
  ::symlink("busybox", (bundle + "/rootfs/bin/true").c_str());
  ::symlink("busybox", (bundle + "/rootfs/bin/sh").c_str());
  json cfg = json::parse(foundry::container::default_spec_json(false));
  cfg["process"]["args"] = {"/bin/true"};
  cfg["process"]["terminal"] = false;
  // runc applies rlimits from outside the container and fails where root
  // lacks CAP_SYS_RESOURCE; no rlimits keeps the comparison possible.
  cfg["process"].erase("rlimits");
  std::ofstream(bundle + "/config.json") << cfg.dump(2);

  // foundryd with its own socket, state and logs.
  std::string sock = tmp + "/foundryd.sock";
  std::vector<std::string> dargv = {foundryd, "--socket", sock, "--root", tmp + "/dstate", "--log-dir", tmp + "/dlogs",
                                    "--cni-conf-dir", tmp + "/cni", "--no-default-network"};
  std::vector<char*> da;
  for (auto& s : dargv) da.push_back(s.data());
  da.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (tmp + "/foundryd.log").c_str(), O_WRONLY | O_CREAT, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (tmp + "/foundryd.log").c_str(), O_WRONLY | O_CREAT, 0644);
  pid_t daemon = -1;
  if (::posix_spawn(&daemon, da[0], &fa, nullptr, da.data(), environ) != 0) die("cannot start " + foundryd);
  posix_spawn_file_actions_destroy(&fa);
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i) {
    up = static_cast<bool>(foundry::daemon::call(sock, "version", json::object()));
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!up) die("foundryd did not come up");
  long rss_start = vm_rss_kib(daemon);

  auto rpc = [&](const char* method, const json& p) {
    auto r = foundry::daemon::call(sock, method, p);
    if (!r) die(std::string(method) + ": " + r.error().to_string());
    return *r;
  };
  std::string pidfile = tmp + "/pid";
  auto cli_cycle = [&](const std::string& bin, const std::string& root, const std::string& id) {
    if (spawn_wait({bin, "--root", root, "create", "--bundle", bundle, "--pid-file", pidfile, id}) != 0)
      die(bin + " create failed");
    pid_t pid = read_pid(pidfile);
    if (spawn_wait({bin, "--root", root, "start", id}) != 0) die(bin + " start failed");
    wait_exit(pid);
    if (spawn_wait({bin, "--root", root, "delete", id}) != 0) die(bin + " delete failed");
  };
  struct Runtime {
    std::string name;
    std::function<void(const std::string&)> cycle;
  };
  std::vector<Runtime> runtimes = {
      {"foundry-oci", [&](const std::string& id) { cli_cycle(oci, tmp + "/oci-state", id); }},
      {"runc", [&](const std::string& id) { cli_cycle(runc, tmp + "/runc-state", id); }},
      {"foundryd", [&](const std::string& id) {
         json c = rpc("create", {{"id", id}, {"bundle", bundle}});
         rpc("start", {{"id", id}});
         wait_exit(c["pid"].get<pid_t>());
         rpc("delete", {{"id", id}});
       }}};
  if (runc.empty()) die("runc is not installed (apt-get install runc)");

  // One warm-up round (page cache, first cgroup directories).
  for (auto& r : runtimes) r.cycle("warm-" + r.name);
  std::vector<Series> series;
  for (auto& r : runtimes) series.push_back({r.name, {}});
  for (int i = 0; i < runs; ++i) {
    for (size_t k = 0; k < runtimes.size(); ++k) {
      size_t j = (k + static_cast<size_t>(i)) % runtimes.size();
      std::string id = "b" + std::to_string(i) + "-" + std::to_string(j);
      auto t0 = Clock::now();
      runtimes[j].cycle(id);
      series[j].ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  }
  long rss_end = vm_rss_kib(daemon);

  std::printf("create+start+wait+delete of /bin/true (busybox bundle), %d runs each, interleaved\n\n", runs);
  std::printf("%-12s %10s %10s %10s %10s\n", "runtime", "median ms", "p99 ms", "min ms", "max ms");
  for (const auto& s : series)
    std::printf("%-12s %10.2f %10.2f %10.2f %10.2f\n", s.name.c_str(), s.pct(0.5), s.pct(0.99), s.pct(0.0), s.pct(1.0));
  const Series &f = series[0], &rc = series[1], &d = series[2];
  std::printf("\nfoundry-oci / runc median: %.2f   p99: %.2f\n", f.pct(0.5) / rc.pct(0.5), f.pct(0.99) / rc.pct(0.99));
  std::printf("foundryd - foundry-oci median: %+.2f ms   foundryd / runc median: %.2f\n", d.pct(0.5) - f.pct(0.5),
              d.pct(0.5) / rc.pct(0.5));
  std::printf("foundryd VmRSS: %.1f MiB after start, %.1f MiB after the runs\n", rss_start / 1024.0, rss_end / 1024.0);

  ::kill(daemon, SIGTERM);
  ::waitpid(daemon, nullptr, 0);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return 0;
}
