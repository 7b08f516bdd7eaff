// 1000 containers through foundryd (create + start + wait + delete of
// /bin/true over JSON-RPC) leave nothing behind. Counted before and after,
// and compared exactly:
//   fds         entries of /proc/<foundryd>/fd
//   mounts      lines of foundryd's /proc/<pid>/mountinfo (the test runs in a
//               private mount namespace of its own, so nobody else's mounts
//               move the count), including nsfs bind mounts of namespaces
//   cgroups     directories under every cgroup hierarchy's root (top level
//               and our own parent, /foundry-leak-<pid>)
//   namespaces  namespaces held by foundryd (its fds and its descendants'
//               /proc/<pid>/ns links: no process of a container survives)
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bundle.h"
#include "foundry/common/file.h"
#include "foundry/container/cgroup.h"
#include "foundry/daemon/jsonrpc.h"

using namespace foundry::container::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;
namespace rpc = foundry::daemon;

extern char** environ;

namespace {

struct Counts {
  size_t fds = 0;
  size_t mounts = 0;
  size_t nsfs_mounts = 0;
  size_t cgroup_dirs = 0;
  size_t descendants = 0;
  std::set<std::string> held_namespaces;  // "net:[4026...]" links among foundryd's fds

  bool operator==(const Counts& o) const {
    return fds == o.fds && mounts == o.mounts && nsfs_mounts == o.nsfs_mounts && cgroup_dirs == o.cgroup_dirs &&
           descendants == o.descendants && held_namespaces == o.held_namespaces;
  }
};

std::ostream& operator<<(std::ostream& os, const Counts& c) {
  os << "fds=" << c.fds << " mounts=" << c.mounts << " nsfs=" << c.nsfs_mounts << " cgroup_dirs=" << c.cgroup_dirs
     << " descendants=" << c.descendants << " held_ns=" << c.held_namespaces.size();
  return os;
}

size_t count_dirs(const std::string& root, int depth) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory(ec) || e.is_symlink(ec)) continue;
    ++n;
    if (depth > 1) n += count_dirs(e.path().string(), depth - 1);
  }
  return n;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream in(t.path() / "children");
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  return out;
}

Counts count(pid_t daemon, const foundry::container::CgroupSystem& sys, const std::string& own_parent) {
  Counts c;
  std::string proc = "/proc/" + std::to_string(daemon);
  for (const auto& e : fs::directory_iterator(proc + "/fd")) {
    ++c.fds;
    std::error_code ec;
    std::string target = fs::read_symlink(e.path(), ec).string();
    if (target.find(":[") != std::string::npos && target.rfind("socket:", 0) != 0 && target.rfind("pipe:", 0) != 0 &&
        target.rfind("anon_inode:", 0) != 0)
      c.held_namespaces.insert(target);
  }
  std::istringstream mi(foundry::read_file(proc + "/mountinfo").value_or(""));
  std::string line;
  while (std::getline(mi, line)) {
    ++c.mounts;
    if (line.find(" - nsfs ") != std::string::npos) ++c.nsfs_mounts;
  }
  std::vector<std::string> roots;
  for (const auto& h : sys.v1) roots.push_back(h.mountpoint);
  if (sys.unified) roots.push_back(sys.unified->mountpoint);
  for (const auto& r : roots) {
    c.cgroup_dirs += count_dirs(r, 1);
    c.cgroup_dirs += count_dirs(r + own_parent, 3);
  }
  std::vector<pid_t> todo = children_of(daemon);
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    ++c.descendants;
    for (pid_t q : children_of(p)) todo.push_back(q);
  }
  return c;
}

}  // namespace

TEST(ContainerLeak, ThousandContainersThroughFoundrydLeaveNothing) {
  std::string why = skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  std::string foundryd = std::string(FOUNDRY_BINARY_DIR) + "/src/daemon/foundryd";
  if (::access(foundryd.c_str(), X_OK) != 0) GTEST_SKIP() << "foundryd is not built";
  // A mount namespace of our own: the mount count is then ours alone.
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
  auto sys = foundry::container::detect_cgroups();
  ASSERT_TRUE(sys);

  Bundle b;
  std::string parent = "/foundry-leak-" + std::to_string(::getpid());
  b.config()["linux"]["cgroupsPath"] = parent + "/c";
  b.config()["process"]["args"] = {"/bin/true"};
  b.config()["process"].erase("rlimits");
  b.write_config();
  std::string sock = b.tmp() + "/foundryd.sock";
  std::vector<std::string> argv = {foundryd, "--socket", sock, "--root", b.tmp() + "/dstate", "--log-dir",
                                   b.tmp() + "/dlogs", "--cni-conf-dir", b.tmp() + "/cni", "--no-default-network"};
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(s.data());
  a.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string log = b.tmp() + "/foundryd.log";
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t daemon = -1;
  ASSERT_EQ(::posix_spawn(&daemon, a[0], &fa, nullptr, a.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } stop{daemon};
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i) {
    up = static_cast<bool>(rpc::call(sock, "version", json::object()));
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(up) << foundry::read_file(log).value_or("");

  // One container first: lazily made things (the log directory, the
  // daemon's first allocations) are not leaks.
  auto cycle = [&](const std::string& id) -> std::string {
    auto c = rpc::call(sock, "create", {{"id", id}, {"bundle", b.dir()}});
    if (!c) return "create: " + c.error().to_string();
    if (auto s = rpc::call(sock, "start", {{"id", id}}); !s) return "start: " + s.error().to_string();
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, (*c)["pid"].get<pid_t>(), 0));
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 30000);
      ::close(fd);
    }
    if (auto d = rpc::call(sock, "delete", {{"id", id}, {"force", true}}); !d) return "delete: " + d.error().to_string();
    return "";
  };
  // The daemon may still be closing the last request's connection (or a
  // reaped child's pidfd) when the reply arrives: count once the numbers have
  // held still for 100 ms, before and after alike. A real leak holds still too.
  auto settled = [&] {
    Counts prev = count(daemon, *sys, parent);
    for (int i = 0; i < 40; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Counts cur = count(daemon, *sys, parent);
      if (cur == prev) return cur;
      prev = cur;
    }
    return prev;
  };
  ASSERT_EQ(cycle("warm"), "");
  Counts before = settled();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    std::string err = cycle("leak-" + std::to_string(i));
    ASSERT_EQ(err, "") << "container " << i;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Counts after = settled();
  EXPECT_EQ(before, after) << "before: " << before << "\nafter:  " << after;
  EXPECT_EQ(after.descendants, 0u);
  for (const auto& h : sys->v1) EXPECT_FALSE(fs::exists(h.mountpoint + parent)) << h.mountpoint + parent;
  auto l = rpc::call(sock, "list", json::object());
  ASSERT_TRUE(l);
  EXPECT_EQ(*l, json::array());
  EXPECT_TRUE(fs::is_empty(b.tmp() + "/dstate"));
  std::ostringstream summary;
  summary << after;
  std::printf("1000 containers in %.1f s (%.1f ms each); %s\n", secs, secs, summary.str().c_str());
}
