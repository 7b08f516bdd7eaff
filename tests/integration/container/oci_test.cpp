// foundry-oci end to end on this kernel: a busybox-static bundle per test,
// its own state root, and checks that what the spec asks for is really in
// force (limits enforced, capabilities denied, ids mapped) and that nothing
// stays behind (cgroups, mounts, namespaces, processes, state).
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "bundle.h"
#include "foundry/common/file.h"
#include "foundry/container/cni.h"
#include "foundry/container/state.h"

using namespace foundry::container::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

class Oci : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = skip_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    b_ = std::make_unique<Bundle>();
  }
  void TearDown() override { b_.reset(); }

  Bundle& b() { return *b_; }

  // Directories of a container's cgroup, from its state record.
  std::vector<std::string> cgroup_dirs(const std::string& id) {
    std::vector<std::string> out;
    json rec = b().record(id);
    if (rec.contains("cgroup"))
      for (const auto& d : rec["cgroup"]["dirs"]) out.push_back(d["path"].get<std::string>());
    return out;
  }

  static std::string ns_link(pid_t pid, const char* ns) {
    char buf[128] = {0};
    std::string p = "/proc/" + std::to_string(pid) + "/ns/" + ns;
    ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  // Any process on the host still in this namespace?
  static bool namespace_in_use(const std::string& link, const char* ns) {
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string name = e.path().filename();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      if (ns_link(std::stoi(name), ns) == link) return true;
    }
    return false;
  }

  std::unique_ptr<Bundle> b_;
};

// Container is left with no trace: state, cgroups, process.
void expect_gone(Bundle& b, const std::string& id, const std::vector<std::string>& cgroups) {
  EXPECT_FALSE(fs::exists(b.state_root() + "/" + id)) << "state directory left behind";
  for (const auto& d : cgroups) EXPECT_FALSE(fs::exists(d)) << "cgroup left behind: " << d;
  for (const char* h : {"memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset", "unified"})
    EXPECT_FALSE(fs::exists(std::string("/sys/fs/cgroup/") + h + "/foundry/" + id)) << h;
  EXPECT_TRUE(host_mounts_mentioning(b.rootfs()).empty()) << "a mount of the rootfs reached the host";
}

}  // namespace

TEST_F(Oci, OutputReachesTheCaller) {
  b().set_args({"echo", "hello from foundry"});
  auto r = b().run("echo");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "hello from foundry\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(Oci, ExitCodeIsTheContainers) {
  b().set_args({"sh", "-c", "echo to-stderr >&2; exit 7"});
  auto r = b().run("exit");
  EXPECT_EQ(r.rc, 7);
  EXPECT_EQ(r.err, "to-stderr\n");
}

TEST_F(Oci, ProcessIsPid1) {
  b().set_args({"sh", "-c", "echo $$; ps -o pid,comm | wc -l"});
  auto r = b().run("pid1");
  EXPECT_EQ(r.rc, 0) << r.err;
  // pid 1, and the only processes are sh, ps, wc (+ header): no host process is visible.
  EXPECT_EQ(r.out, "1\n4\n");
}

TEST_F(Oci, Hostname) {
  b().config()["hostname"] = "box-a";
  b().set_args({"hostname"});
  auto r = b().run("hostname");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "box-a\n");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(std::string(host), "box-a");
}

TEST_F(Oci, ReadOnlyRoot) {
  b().config()["root"]["readonly"] = true;
  b().set_args({"sh", "-c", "touch /newfile; echo rc=$?; touch /dev/shm/ok && echo tmpfs-writable"});
  auto r = b().run("ro");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "rc=1\ntmpfs-writable\n");
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(b().rootfs() + "/newfile"));

  b().config()["root"]["readonly"] = false;
  b().set_args({"sh", "-c", "touch /newfile && echo written"});
  auto w = b().run("rw");
  EXPECT_EQ(w.out, "written\n") << w.err;
  EXPECT_TRUE(fs::exists(b().rootfs() + "/newfile"));
}

TEST_F(Oci, MemoryLimitIsEnforcedByTheOomKiller) {
  const int64_t limit = 32 << 20;
  b().config()["linux"]["resources"]["memory"] = {{"limit", limit}, {"swap", limit}};
  // The shell itself holds 128 MiB read from a pipe: over the limit, so the
  // OOM killer picks it, and with it the container's pid 1.
  b().set_args({"sh", "-c", "x=$(head -c 134217728 /dev/zero | tr '\\0' x); echo survived ${#x}"});
  b().write_config();
  std::string id = b().new_id("oom");
  auto c = b().oci({"create", id});
  ASSERT_EQ(c.rc, 0) << c.err;
  json rec = b().record(id);
  pid_t pid = rec["pid"].get<pid_t>();
  std::string mem;
  for (const auto& d : cgroup_dirs(id))
    if (d.find("/memory/") != std::string::npos) mem = d;
  ASSERT_FALSE(mem.empty());
  EXPECT_EQ(*foundry::read_file(mem + "/memory.limit_in_bytes"), std::to_string(limit) + "\n");
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  // The orphaned init comes back to this (subreaper) test process.
  int st = wait_child(pid, 60000);
  ASSERT_NE(st, -1) << "the container did not end";
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "wait status " << st;
  std::string oom = *foundry::read_file(mem + "/memory.oom_control");
  // The kernel may kill more than once (the shell and its child both touch
  // the memory); what matters is that the OOM killer acted in this cgroup.
  auto at = oom.find("oom_kill ");
  ASSERT_NE(at, std::string::npos) << oom;
  EXPECT_GE(std::stoul(oom.substr(at + 9)), 1ul) << oom;
  auto d = b().oci({"delete", id});
  EXPECT_EQ(d.rc, 0) << d.err;
  expect_gone(b(), id, {mem});

  // `run` reports the same from the exit status and the cgroup's counter.
  auto r = b().run("oomrun");
  EXPECT_EQ(r.rc, 137);
  EXPECT_NE(r.err.find("was killed by the OOM killer"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("survived"), std::string::npos);
}

TEST_F(Oci, PidsLimitIsEnforced) {
  b().set_args({"sh", "-c", "sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait; echo done"});
  b().config()["linux"]["resources"]["pids"] = {{"limit", 3}};
  auto r = b().run("pids");
  EXPECT_NE(r.err.find("can't fork"), std::string::npos) << "rc " << r.rc << " err " << r.err;
  // The same program fits under a higher limit: the failure was the limit.
  b().config()["linux"]["resources"]["pids"] = {{"limit", 10}};
  auto ok = b().run("pids-ok");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out, "done\n");
  EXPECT_EQ(ok.err, "");
}

TEST_F(Oci, DroppedCapabilityDenies) {
  // The default spec keeps only AUDIT_WRITE, KILL and NET_BIND_SERVICE.
  b().set_args({"hostname", "renamed"});
  auto r = b().run("nocap");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
  // With CAP_SYS_ADMIN in every set the same call works.
  for (const char* set : {"bounding", "effective", "permitted"})
    b().config()["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
  b().set_args({"sh", "-c", "hostname renamed && hostname"});
  auto ok = b().run("cap");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out, "renamed\n");
}

TEST_F(Oci, CapabilitySetsAreExact) {
  b().set_args({"sh", "-c", "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status"});
  b().config()["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_CHOWN"}},
                                             {"effective", {"CAP_KILL"}},
                                             {"permitted", {"CAP_KILL"}},
                                             {"inheritable", {"CAP_KILL"}},
                                             {"ambient", {"CAP_KILL"}}};
  auto r = b().run("capsets");
  EXPECT_EQ(r.rc, 0) << r.err;
  // CAP_KILL = bit 5 (0x20), CAP_CHOWN = bit 0. sh is exec'd by the init,
  // so ambient KILL survives into the permitted/effective sets of sh.
  EXPECT_EQ(r.out,
            "CapInh:\t0000000000000020\nCapPrm:\t0000000000000020\nCapEff:\t0000000000000020\n"
            "CapBnd:\t0000000000000021\nCapAmb:\t0000000000000020\nNoNewPrivs:\t1\n");
}

TEST_F(Oci, UserNamespaceMapsRoot) {
  const int base = 100000 + (::getpid() % 1000) * 100;  // a private range per test process
  auto& lin = b().config()["linux"];
  lin["namespaces"].push_back({{"type", "user"}});
  lin["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", base}, {"size", 100}}});
  lin["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", base}, {"size", 100}}});
  // The mapped root owns the rootfs, as an image unpacked for it would be.
  for (const auto& e : fs::recursive_directory_iterator(b().rootfs())) ::lchown(e.path().c_str(), base, base);
  ::lchown(b().rootfs().c_str(), base, base);
  b().config()["mounts"].push_back(
      {{"destination", "/out"}, {"type", "bind"}, {"source", b().tmp() + "/out"}, {"options", {"rbind", "rw"}}});
  fs::create_directories(b().tmp() + "/out");
  ::chown((b().tmp() + "/out").c_str(), base, base);
  b().set_args({"sh", "-c", "id; cat /proc/self/uid_map; echo data > /out/file; ls -ln /out/file"});
  auto r = b().run("userns");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "uid=0(root) gid=0(root)");
  EXPECT_NE(r.out.find("0     " + std::to_string(base) + "        100"), std::string::npos) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat((b().tmp() + "/out/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(base));  // root inside is the mapped uid outside
  EXPECT_EQ(st.st_gid, static_cast<gid_t>(base));
}

TEST_F(Oci, KillAndDeleteFreeEverything) {
  b().set_args({"sleep", "1000"});
  b().write_config();
  std::string id = b().new_id("life");
  auto c = b().oci({"create", "--pid-file", b().tmp() + "/pid", id});
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_EQ(b().wait_status(id, "created", 100), "created");
  json rec = b().record(id);
  pid_t pid = rec["pid"].get<pid_t>();
  EXPECT_EQ(*foundry::read_file(b().tmp() + "/pid"), std::to_string(pid));
  auto dirs = cgroup_dirs(id);
  ASSERT_GE(dirs.size(), 1u);
  for (const auto& d : dirs) {
    auto procs = foundry::read_file(d + "/cgroup.procs");
    ASSERT_TRUE(procs) << d;
    EXPECT_EQ(*procs, std::to_string(pid) + "\n") << d;
  }
  std::string net = ns_link(pid, "net"), mnt = ns_link(pid, "mnt"), pidns = ns_link(pid, "pid_for_children");
  EXPECT_NE(net, ns_link(::getpid(), "net"));
  EXPECT_NE(mnt, ns_link(::getpid(), "mnt"));

  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  EXPECT_EQ(b().wait_status(id, "running", 100), "running");
  EXPECT_TRUE(host_mounts_mentioning(b().rootfs()).empty());
  // delete refuses a running container without --force.
  auto refuse = b().oci({"delete", id});
  EXPECT_EQ(refuse.rc, 4);
  EXPECT_NE(refuse.err.find("cannot delete container \"" + id + "\": it is running"), std::string::npos) << refuse.err;

  auto k = b().oci({"kill", id, "KILL"});
  EXPECT_EQ(k.rc, 0) << k.err;
  int st = wait_child(pid, 10000);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  EXPECT_EQ(b().wait_status(id, "stopped"), "stopped");
  auto d = b().oci({"delete", id});
  EXPECT_EQ(d.rc, 0) << d.err;
  expect_gone(b(), id, dirs);
  EXPECT_FALSE(namespace_in_use(net, "net"));
  EXPECT_FALSE(namespace_in_use(mnt, "mnt"));
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST_F(Oci, DeleteForceKillsEveryProcessOfTheCgroup) {
  // Without its own pid namespace the init's children would survive it:
  // delete --force must empty the cgroup anyway.
  auto& ns = b().config()["linux"]["namespaces"];
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i]["type"] == "pid") ns.erase(i);
  b().set_args({"sh", "-c", "sleep 1000 & sleep 1000 & wait"});
  b().write_config();
  std::string id = b().new_id("force");
  ASSERT_EQ(b().oci({"create", id}).rc, 0);
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  auto dirs = cgroup_dirs(id);
  for (int i = 0; i < 100; ++i) {
    auto procs = foundry::read_file(dirs.front() + "/cgroup.procs");
    if (procs && std::count(procs->begin(), procs->end(), '\n') == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto d = b().oci({"delete", "--force", id});
  EXPECT_EQ(d.rc, 0) << d.err;
  expect_gone(b(), id, dirs);
}

TEST_F(Oci, StateMatchesTheSchema) {
  b().set_args({"sleep", "1000"});
  b().config()["annotations"] = {{"org.example.test", "yes"}};
  b().write_config();
  std::string id = b().new_id("schema");
  ASSERT_EQ(b().oci({"create", id}).rc, 0);
  auto s = b().oci({"state", id});
  ASSERT_EQ(s.rc, 0) << s.err;
  json j = json::parse(s.out);
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["bundle"], b().dir());
  EXPECT_EQ(j["annotations"]["org.example.test"], "yes");
  EXPECT_GT(j["pid"].get<int>(), 0);
  std::string v = validate_against_schema(s.out, "state-schema.json");
  if (v.rfind("skip:", 0) == 0) GTEST_SKIP() << v;
  EXPECT_EQ(v, "");
  EXPECT_EQ(b().oci({"delete", id}).rc, 0);  // a created container needs no --force
}

TEST_F(Oci, SpecAndFeaturesMatchTheirSchemas) {
  std::string dir = b().tmp() + "/spec";
  fs::create_directories(dir);
  auto s = b().oci({"spec", "--bundle", dir});
  ASSERT_EQ(s.rc, 0) << s.err;
  std::string cfg = *foundry::read_file(dir + "/config.json");
  auto again = b().oci({"spec", "--bundle", dir});
  EXPECT_EQ(again.rc, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
  auto f = b().oci({"features"});
  ASSERT_EQ(f.rc, 0) << f.err;
  EXPECT_EQ(json::parse(f.out)["annotations"]["org.foundry.cgroups.layout"], "hybrid");
  std::string v = validate_against_schema(cfg, "config-schema.json");
  if (v.rfind("skip:", 0) == 0) GTEST_SKIP() << v;
  EXPECT_EQ(v, "");
  EXPECT_EQ(validate_against_schema(f.out, "features-schema.json"), "");
}

TEST_F(Oci, TerminalGoesToTheConsoleSocket) {
  std::string sock_path = b().tmp() + "/console.sock";
  int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sock_path.c_str());
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(ls, 1), 0);
  b().config()["process"]["terminal"] = true;
  b().set_args({"sh", "-c", "tty; echo on-the-pty"});
  b().write_config();
  std::string id = b().new_id("tty");
  int master = -1;
  std::thread acceptor([&] {
    int c = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[64];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    if (::recvmsg(c, &mh, MSG_CMSG_CLOEXEC) > 0)
      for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_type == SCM_RIGHTS) std::memcpy(&master, CMSG_DATA(cm), sizeof(int));
    ::close(c);
  });
  auto c = b().oci({"create", "--console-socket", sock_path, id});
  acceptor.join();
  ::close(ls);
  ASSERT_EQ(c.rc, 0) << c.err;
  ASSERT_GE(master, 0) << "no pty master arrived on the console socket";
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the container's side is closed
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  EXPECT_EQ(out, "/dev/pts/0\r\non-the-pty\r\n");
}

TEST_F(Oci, HooksSeeTheState) {
  std::string out = b().tmp() + "/hook.out";
  b().config()["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "cat > " + out}}}}},
      {"poststop", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo poststop >> " + out + ".2"}}}}}};
  b().set_args({"true"});
  auto r = b().run("hooks");
  EXPECT_EQ(r.rc, 0) << r.err;
  json st = json::parse(*foundry::read_file(out));
  EXPECT_EQ(st["status"], "creating");
  EXPECT_GT(st["pid"].get<int>(), 0);
  EXPECT_EQ(st["bundle"], b().dir());
  EXPECT_EQ(*foundry::read_file(out + ".2"), "poststop\n");
}

TEST_F(Oci, RlimitsAreSetInsideAndClampedWithoutCapSysResource) {
  // podman asks for RLIMIT_NOFILE 1048576; hosts without CAP_SYS_RESOURCE
  // cannot raise the hard limit that far. runc fails there ("error setting
  // rlimit type 7"); foundry-oci clamps to what the host allows and warns.
  rlimit cur{};
  ::getrlimit(RLIMIT_NOFILE, &cur);
  b().config()["process"]["rlimits"] = json::array(
      {{{"type", "RLIMIT_NOFILE"}, {"soft", 1048576}, {"hard", 1048576}},
       {{"type", "RLIMIT_NPROC"}, {"soft", 1000}, {"hard", 1000}}});
  b().set_args({"sh", "-c", "ulimit -n; ulimit -u"});
  auto r = b().run("rlimit");
  ASSERT_EQ(r.rc, 0) << r.err;
  // CAP_SYS_RESOURCE is bit 24 of CapEff.
  std::string status = *foundry::read_file("/proc/self/status");
  auto pos = status.find("CapEff:\t");
  uint64_t eff = std::stoull(status.substr(pos + 8, 16), nullptr, 16);
  bool can_raise = cur.rlim_max >= 1048576 || (eff & (1ull << 24));
  std::string expect_nofile = can_raise ? "1048576" : std::to_string(cur.rlim_max);
  EXPECT_EQ(r.out, expect_nofile + "\n1000\n");
  if (!can_raise) {
    EXPECT_NE(r.err.find("RLIMIT_NOFILE hard limit 1048576 is above"), std::string::npos) << r.err;
  }
}

TEST_F(Oci, SeccompDeniesWithErrno) {
  b().config()["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64"}},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  b().set_args({"sh", "-c", "mkdir /dev/shm/x; echo rc=$?; touch /dev/shm/y && echo touched"});
  auto r = b().run("seccomp");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "rc=1\ntouched\n");
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
}

TEST_F(Oci, ReadOnlyBindMountAndMaskedPaths) {
  std::string host = b().tmp() + "/shared";
  fs::create_directories(host);
  std::ofstream(host + "/f") << "host data\n";
  b().config()["mounts"].push_back(
      {{"destination", "/shared"}, {"type", "bind"}, {"source", host}, {"options", {"bind", "ro", "nosuid", "nodev"}}});
  fs::create_directories(b().rootfs() + "/etc/secret.d");
  std::ofstream(b().rootfs() + "/etc/secret.d/key") << "top secret\n";
  std::ofstream(b().rootfs() + "/etc/secret") << "top secret\n";
  b().config()["linux"]["maskedPaths"].push_back("/etc/secret");
  b().config()["linux"]["maskedPaths"].push_back("/etc/secret.d");
  b().config()["linux"]["maskedPaths"].push_back("/does/not/exist");
  b().set_args({"sh", "-c",
                "cat /shared/f; echo x > /shared/f; echo rc=$?; wc -c < /etc/secret; ls /etc/secret.d | wc -l; "
                "echo 1 > /proc/sys/kernel/shmmax; echo rc=$?"});
  auto r = b().run("binds");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "host data\nrc=1\n0\n0\nrc=1\n");
  EXPECT_NE(r.err.find("can't create /shared/f: Read-only file system"), std::string::npos) << r.err;
  EXPECT_EQ(*foundry::read_file(host + "/f"), "host data\n");
}

TEST_F(Oci, JoinsANamespaceByPath) {
  b().set_args({"sleep", "1000"});
  b().write_config();
  std::string first = b().new_id("netowner");
  ASSERT_EQ(b().oci({"create", first}).rc, 0);
  pid_t owner = b().record(first)["pid"].get<pid_t>();
  std::string net = ns_link(owner, "net");
  auto& ns = b().config()["linux"]["namespaces"];
  for (auto& n : ns)
    if (n["type"] == "network") n["path"] = "/proc/" + std::to_string(owner) + "/ns/net";
  b().config()["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  b().set_args({"sh", "-c", "readlink /proc/self/ns/net; cat /proc/sys/net/ipv4/ip_forward"});
  auto r = b().run("joiner");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, net + "\n1\n");
  EXPECT_EQ(b().oci({"delete", "--force", first}).rc, 0);
}

TEST_F(Oci, ProcessUserCwdEnvAndDevices) {
  auto& p = b().config()["process"];
  p["user"] = {{"uid", 65534}, {"gid", 65534}, {"additionalGids", {10, 20}}, {"umask", 63}};
  p["cwd"] = "/dev/shm";
  p["env"].push_back("GREETING=hello world");
  b().config()["linux"]["devices"] = json::array(
      {{{"type", "c"}, {"path", "/dev/mynull"}, {"major", 1}, {"minor", 3}, {"fileMode", 0620}, {"uid", 0}, {"gid", 0}}});
  b().config()["linux"]["resources"]["devices"].push_back(
      {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}});
  b().set_args({"sh", "-c", "id -u; id -G; pwd; echo \"$GREETING\"; echo $HOME; umask; ls -l /dev/mynull | cut -c1-10"});
  auto r = b().run("user");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "65534\n65534 10 20\n/dev/shm\nhello world\n/\n0077\ncrw--w----\n");
}

TEST_F(Oci, CpuAndBlockIoLimitsReachTheKernel) {
  // Throttling needs a real disk: the first whole disk the kernel lists.
  std::ifstream parts("/proc/partitions");
  std::string line;
  int major = -1, minor = -1;
  while (std::getline(parts, line)) {
    int ma, mi;
    long blocks;
    char name[64];
    if (std::sscanf(line.c_str(), "%d %d %ld %63s", &ma, &mi, &blocks, name) == 4 && mi == 0) {
      major = ma;
      minor = mi;
      break;
    }
  }
  if (major < 0) GTEST_SKIP() << "no block device in /proc/partitions";
  std::string dev = std::to_string(major) + ":" + std::to_string(minor);
  b().config()["linux"]["resources"]["cpu"] = {{"shares", 256}, {"quota", 20000}, {"period", 100000}};
  b().config()["linux"]["resources"]["blockIO"] = {
      {"throttleReadBpsDevice", {{{"major", major}, {"minor", minor}, {"rate", 1048576}}}}};
  // The container's own cgroup is what it sees under /sys/fs/cgroup.
  b().set_args({"sh", "-c",
                "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device; touch /sys/fs/cgroup/cpu/x; echo rc=$?"});
  auto r = b().run("cpu");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "256\n20000\n" + dev + " 1048576\nrc=1\n");  // and the mount is read-only
}

TEST_F(Oci, EveryHookRunsAtItsPoint) {
  std::string out = b().tmp() + "/hooks";
  fs::create_directories(out);
  b().config()["mounts"].push_back(
      {{"destination", "/hooks"}, {"type", "bind"}, {"source", out}, {"options", {"bind", "rw"}}});
  auto hook = [](const std::string& script) {
    return json::array({{{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}, {"timeout", 10}}});
  };
  // Runtime-namespace hooks write into `out`; container-namespace ones
  // (createContainer sees the host paths before pivot_root, startContainer
  // runs inside the rootfs) prove where they ran.
  b().config()["hooks"] = {
      {"prestart", hook("cat > " + out + "/prestart")},
      {"createRuntime", hook("readlink /proc/self/ns/mnt > " + out + "/createRuntime")},
      {"createContainer", hook("readlink /proc/self/ns/mnt > " + out + "/createContainer")},
      {"startContainer", hook("hostname > /hooks/startContainer")},
      {"poststart", hook("cat > " + out + "/poststart")},
      {"poststop", hook("cat > " + out + "/poststop")},
  };
  b().set_args({"true"});
  auto r = b().run("allhooks");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto rd = [&](const std::string& f) { return foundry::read_file(out + "/" + f).value_or("<missing>"); };
  EXPECT_EQ(json::parse(rd("prestart"))["status"], "creating");
  EXPECT_EQ(rd("createRuntime"), ns_link(::getpid(), "mnt") + "\n");  // the runtime's namespace
  EXPECT_NE(rd("createContainer"), rd("createRuntime"));              // the container's
  EXPECT_EQ(rd("startContainer"), "foundry\n");                        // inside, after pivot
  EXPECT_EQ(json::parse(rd("poststart"))["status"], "running");
  EXPECT_EQ(json::parse(rd("poststop"))["status"], "stopped");
}

TEST_F(Oci, FailingCreateRuntimeHookLeavesNothing) {
  b().config()["hooks"] = {{"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo no >&2; exit 3"}}}}}};
  b().set_args({"true"});
  b().write_config();
  std::string id = b().new_id("badhook");
  auto r = b().oci({"create", id});
  EXPECT_EQ(r.rc, 4);
  EXPECT_NE(r.err.find("hooks.createRuntime[0] (/bin/sh) failed with exit code 3: no"), std::string::npos) << r.err;
  reap_children();
  expect_gone(b(), id, {});
}

TEST_F(Oci, ErrorsReachTheJsonLogFile) {
  std::string log = b().tmp() + "/oci.log";
  auto r = b().oci({"--log", log, "--log-format", "json", "--systemd-cgroup", "state", "missing"});
  EXPECT_EQ(r.rc, 4);
  auto text = foundry::read_file(log);
  ASSERT_TRUE(text);
  json line = json::parse(text->substr(0, text->find('\n')));
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["msg"], "container \"missing\" does not exist");
  EXPECT_FALSE(line["time"].get<std::string>().empty());
}

namespace {

// The test thread moves to a network namespace of its own for the scope:
// bridges and veths the CNI plugins make live there, never on the host, and
// vanish with it.
class PrivateNetns {
 public:
  PrivateNetns() : orig_(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
    ok_ = orig_ >= 0 && ::unshare(CLONE_NEWNET) == 0;
  }
  ~PrivateNetns() {
    if (ok_) ::setns(orig_, CLONE_NEWNET);
    if (orig_ >= 0) ::close(orig_);
  }
  bool ok() const { return ok_; }

 private:
  int orig_;
  bool ok_ = false;
};

}  // namespace

TEST_F(Oci, CniBridgeConnectsTwoContainers) {
  if (::access("/usr/lib/cni/bridge", X_OK) != 0 || ::access("/usr/lib/cni/host-local", X_OK) != 0)
    GTEST_SKIP() << "containernetworking-plugins is not installed (/usr/lib/cni)";
  PrivateNetns netns;
  ASSERT_TRUE(netns.ok()) << "cannot enter a private network namespace";
  std::string bridge = "fbr" + std::to_string(::getpid() % 100000);
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "it-bridge"},
               {"plugins",
                {{{"type", "bridge"},
                  {"bridge", bridge},
                  {"isGateway", false},
                  {"ipMasq", false},
                  {"ipam",
                   {{"type", "host-local"},
                    {"dataDir", b().tmp() + "/ipam"},
                    {"ranges", {{{{"subnet", "192.0.2.0/24"}, {"rangeStart", "192.0.2.10"}, {"rangeEnd", "192.0.2.20"}}}}}}}}}}};
  auto net = foundry::container::parse_conflist(conf.dump(), "it-bridge.conflist");
  ASSERT_TRUE(net) << net.error().to_string();

  for (const char* set : {"bounding", "effective", "permitted"})
    b().config()["process"]["capabilities"][set].push_back("CAP_NET_RAW");  // busybox ping
  struct Ctr {
    std::string id, peer;
    pid_t pid = 0;
    json result;
  };
  std::vector<Ctr> ctrs(2);
  ctrs[0].peer = "192.0.2.11";
  ctrs[1].peer = "192.0.2.10";
  for (auto& c : ctrs) {
    // Each pings the other, then stays up a moment so the other's ping
    // still finds it.
    b().set_args({"sh", "-c", "sleep 0.2; ping -c 1 -W 3 " + c.peer + "; rc=$?; sleep 1; exit $rc"});
    b().write_config();
    c.id = b().new_id("cni");
    auto r = b().oci({"create", c.id});
    ASSERT_EQ(r.rc, 0) << r.err;
    c.pid = b().record(c.id)["pid"].get<pid_t>();
    foundry::container::CniRuntime rt;
    rt.container_id = c.id;
    rt.netns = "/proc/" + std::to_string(c.pid) + "/ns/net";
    auto added = foundry::container::cni_add(*net, rt);
    ASSERT_TRUE(added) << added.error().to_string();
    c.result = *added;
  }
  EXPECT_EQ(foundry::container::cni_first_ipv4(ctrs[0].result), "192.0.2.10/24");
  EXPECT_EQ(foundry::container::cni_first_ipv4(ctrs[1].result), "192.0.2.11/24");
  for (auto& c : ctrs) ASSERT_EQ(b().oci({"start", c.id}).rc, 0);
  for (auto& c : ctrs) {
    int st = wait_child(c.pid, 20000);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << c.id << " ping failed, wait status " << st;
  }
  for (auto& c : ctrs) {
    foundry::container::CniRuntime rt;
    rt.container_id = c.id;  // the namespace is gone with the container: DEL releases the address
    auto del = foundry::container::cni_del(*net, rt, c.result);
    EXPECT_TRUE(del) << del.error().to_string();
    EXPECT_EQ(b().oci({"delete", c.id}).rc, 0);
  }
  // host-local gave both addresses back.
  EXPECT_FALSE(fs::exists(b().tmp() + "/ipam/it-bridge/192.0.2.10"));
  EXPECT_FALSE(fs::exists(b().tmp() + "/ipam/it-bridge/192.0.2.11"));
}

// ---- errors: exact message, exit code, nothing left behind ----

TEST_F(Oci, UnknownContainerId) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"state", "nope"}, {"start", "nope"},
                                       {"kill", "nope", "TERM"}, {"delete", "nope"}, {"delete", "--force", "nope"}}) {
    auto r = b().oci(cmd);
    EXPECT_EQ(r.rc, 4) << cmd[0];
    EXPECT_NE(r.err.find("foundry-oci: error: container \"nope\" does not exist\n"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(b().state_root() + "/nope"));
}

TEST_F(Oci, BundleWithoutConfig) {
  std::string empty = b().tmp() + "/empty";
  fs::create_directories(empty);
  std::string id = b().new_id("noconfig");
  auto r = b().oci({"create", "--bundle", empty, id});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("foundry-oci: error: create container \"" + id + "\": bundle " + empty +
                       " has no config.json: No such file or directory\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("hint: create one with `foundry-oci spec`"), std::string::npos);
  expect_gone(b(), id, {});
}

TEST_F(Oci, BadConfig) {
  b().config()["process"]["args"] = "sh -c true";
  b().write_config();
  std::string id = b().new_id("badcfg");
  auto r = b().oci({"create", id});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(b().dir() + "/config.json: process.args: must be an array, found a string\n"), std::string::npos)
      << r.err;
  expect_gone(b(), id, {});

  std::ofstream(b().dir() + "/config.json") << "{\"ociVersion\": \"1.2.0\",\n \"process\": }\n";
  std::string id2 = b().new_id("syntax");
  auto s = b().oci({"create", id2});
  EXPECT_EQ(s.rc, 1);
  EXPECT_NE(s.err.find("config.json is not valid JSON (line 2, column 13)"), std::string::npos) << s.err;
  expect_gone(b(), id2, {});
}

TEST_F(Oci, MissingExecutable) {
  b().set_args({"no-such-program", "--flag"});
  b().write_config();
  std::string id = b().new_id("noexe");
  auto r = b().oci({"create", id});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("foundry-oci: error: create container \"" + id +
                       "\": process.args[0]: executable \"no-such-program\" not found in the container's PATH "
                       "(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)\n"),
            std::string::npos)
      << r.err;
  reap_children();
  expect_gone(b(), id, {});
  // No process of the failed container is left anywhere.
  auto ps = b().oci({"list", "-q"});
  EXPECT_EQ(ps.out, "");
}

TEST_F(Oci, SecondStart) {
  b().set_args({"sleep", "1000"});
  b().write_config();
  std::string id = b().new_id("twice");
  ASSERT_EQ(b().oci({"create", id}).rc, 0);
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  auto again = b().oci({"start", id});
  EXPECT_EQ(again.rc, 4);
  EXPECT_NE(again.err.find("foundry-oci: error: cannot start container \"" + id + "\": it is already running\n"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(b().wait_status(id, "running", 100), "running");  // the failed start changed nothing
  ASSERT_EQ(b().oci({"kill", id, "9"}).rc, 0);
  EXPECT_EQ(b().wait_status(id, "stopped"), "stopped");
  auto stopped = b().oci({"start", id});
  EXPECT_EQ(stopped.rc, 4);
  EXPECT_NE(stopped.err.find("cannot start container \"" + id + "\": it has stopped\n"), std::string::npos)
      << stopped.err;
  auto dirs = cgroup_dirs(id);
  EXPECT_EQ(b().oci({"delete", id}).rc, 0);
  expect_gone(b(), id, dirs);
}

// ---- exec: a second process in a running container ----

TEST_F(Oci, ExecRunsInTheContainersNamespacesAndCgroup) {
  b().config()["hostname"] = "exec-box";
  b().set_args({"sleep", "1000"});
  b().write_config();
  std::string id = b().new_id("exec");
  ASSERT_EQ(b().oci({"create", id}).rc, 0);
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  // Output, exit code, hostname; pid 1 is the container's sleep (its pid
  // namespace), and the process sits in the container's cgroup.
  auto r = b().oci({"exec", id, "sh", "-c",
                    "echo out; echo err >&2; hostname; cat /proc/1/comm; exit 5"});
  EXPECT_EQ(r.rc, 5) << r.err;
  EXPECT_EQ(r.out, "out\nexec-box\nsleep\n");
  EXPECT_EQ(r.err, "err\n");
  // Env, cwd and user changes; the options before the id are exec's, the
  // ones after belong to the command.
  auto e = b().oci({"exec", "--cwd", "/tmp", "-e", "GREETING=hi", "-u", "65534:65534", id, "sh", "-c",
                    "echo $GREETING $(pwd) $(id -u):$(id -g)"});
  EXPECT_EQ(e.rc, 0) << e.err;
  EXPECT_EQ(e.out, "hi /tmp 65534:65534\n");
  // While an exec runs, its process is in the container's cgroup.
  auto d = b().oci({"exec", "--detach", "--pid-file", b().tmp() + "/exec.pid", id, "sleep", "30"});
  ASSERT_EQ(d.rc, 0) << d.err;
  pid_t pid = std::stoi(foundry::read_file(b().tmp() + "/exec.pid").value_or("0"));
  ASSERT_GT(pid, 0);
  auto dirs = cgroup_dirs(id);
  ASSERT_FALSE(dirs.empty());
  std::string procs = foundry::read_file(dirs.front() + "/cgroup.procs").value_or("");
  EXPECT_NE(("\n" + procs).find("\n" + std::to_string(pid) + "\n"), std::string::npos) << procs;
  EXPECT_EQ(ns_link(pid, "pid"), ns_link(b().record(id)["pid"].get<pid_t>(), "pid"));
  EXPECT_EQ(ns_link(pid, "mnt"), ns_link(b().record(id)["pid"].get<pid_t>(), "mnt"));
  // A process description instead of arguments (what podman passes).
  json proc = b().config()["process"];
  proc["args"] = {"sh", "-c", "echo from-process-json"};
  std::ofstream(b().tmp() + "/process.json") << proc.dump();
  auto pj = b().oci({"exec", "--process", b().tmp() + "/process.json", id});
  EXPECT_EQ(pj.rc, 0) << pj.err;
  EXPECT_EQ(pj.out, "from-process-json\n");
  // The detached process was handed to this (subreaper) test process: its
  // zombie must be reaped for the container's init to finish exiting, as
  // conmon or containerd's shim do for real callers.
  ::kill(pid, SIGKILL);
  EXPECT_NE(wait_child(pid, 5000), -1);
  auto del = b().oci({"delete", "--force", id});
  EXPECT_EQ(del.rc, 0) << del.err;
  expect_gone(b(), id, dirs);
}

TEST_F(Oci, ExecErrors) {
  auto unknown = b().oci({"exec", "nope", "true"});
  EXPECT_EQ(unknown.rc, 4);
  EXPECT_NE(unknown.err.find("foundry-oci: error: container \"nope\" does not exist\n"), std::string::npos)
      << unknown.err;
  EXPECT_FALSE(fs::exists(b().state_root() + "/nope"));

  b().set_args({"sleep", "1000"});
  b().write_config();
  std::string id = b().new_id("exec-err");
  ASSERT_EQ(b().oci({"create", id}).rc, 0);
  ASSERT_EQ(b().oci({"start", id}).rc, 0);
  auto missing = b().oci({"exec", id, "no-such-program"});
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("foundry-oci: error: exec in container \"" + id +
                             "\": process.args[0]: executable \"no-such-program\" not found in the container's PATH"),
            std::string::npos)
      << missing.err;
  auto nocmd = b().oci({"exec", id});
  EXPECT_EQ(nocmd.rc, 1);
  EXPECT_NE(nocmd.err.find("no command given to exec"), std::string::npos) << nocmd.err;
  auto badcwd = b().oci({"exec", "--cwd", "/no/such/dir", id, "true"});
  EXPECT_EQ(badcwd.rc, 2);
  EXPECT_NE(badcwd.err.find("process.cwd: cannot enter \"/no/such/dir\""), std::string::npos) << badcwd.err;
  // A failed exec leaves no process in the container.
  auto ps = b().oci({"exec", id, "sh", "-c", "ps -o comm > /dev/shm/ps.txt; wc -l < /dev/shm/ps.txt"});
  EXPECT_EQ(ps.out, "4\n") << "expected the header, sleep, sh and ps only";

  ASSERT_EQ(b().oci({"kill", id, "KILL"}).rc, 0);
  EXPECT_EQ(b().wait_status(id, "stopped"), "stopped");
  auto stopped = b().oci({"exec", id, "true"});
  EXPECT_EQ(stopped.rc, 4);
  EXPECT_NE(stopped.err.find("foundry-oci: error: cannot exec in container \"" + id + "\": it is not running\n"),
            std::string::npos)
      << stopped.err;
  EXPECT_EQ(b().oci({"delete", id}).rc, 0);
}
