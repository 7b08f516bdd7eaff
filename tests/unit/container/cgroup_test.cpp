// cgroup layout detection from mountinfo text, and the files a Cgroup
// writes, against fake hierarchies in a temporary directory (no root).
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/container/cgroup.h"

namespace fc = foundry::container;
namespace fs = std::filesystem;

namespace {

// This machine's layout: v1 controllers, cpu and cpuacct apart, and a
// cgroup2 mount at /sys/fs/cgroup/unified with only hugetlb.
const char* kHybrid =
    "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "31 25 0:26 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n"
    "33 31 0:28 / /sys/fs/cgroup/cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpuacct\n"
    "34 31 0:29 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
    "35 31 0:30 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids\n"
    "36 31 0:31 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd\n"
    "37 31 0:32 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 cgroup2 rw\n";

const char* kLegacyComounted =
    "32 31 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "35 31 0:29 / /mnt/memory-again rw - cgroup cgroup rw,memory\n";

const char* kUnified = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "foundry-cg-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void touch(const std::string& p, const std::string& content = "") {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p) << content;
}

std::string slurp(const std::string& p) {
  auto r = foundry::read_file(p);
  return r ? *r : "<missing>";
}

}  // namespace

TEST(CgroupLayout, Hybrid) {
  auto sys = fc::parse_cgroup_system(kHybrid, "4:memory:/process_api/x\n0::/\n", "hugetlb\n");
  EXPECT_EQ(sys.layout, fc::CgroupLayout::Hybrid);
  ASSERT_EQ(sys.v1.size(), 4u);  // the named systemd hierarchy carries no controller
  EXPECT_EQ(sys.v1[0].mountpoint, "/sys/fs/cgroup/cpu");
  ASSERT_TRUE(sys.unified);
  EXPECT_EQ(sys.unified->controllers, (std::vector<std::string>{"hugetlb"}));
  EXPECT_EQ(sys.hierarchy_for("memory")->mountpoint, "/sys/fs/cgroup/memory");
  EXPECT_FALSE(sys.has_controller("blkio"));
  EXPECT_EQ(sys.own_paths.at("memory"), "/process_api/x");
  EXPECT_NE(sys.summary().find("hybrid"), std::string::npos);
  EXPECT_NE(sys.summary().find("hugetlb"), std::string::npos);
}

TEST(CgroupLayout, LegacyComountedAndDuplicateMounts) {
  auto sys = fc::parse_cgroup_system(kLegacyComounted, "", "");
  EXPECT_EQ(sys.layout, fc::CgroupLayout::Legacy);
  ASSERT_EQ(sys.v1.size(), 2u);
  EXPECT_EQ(sys.v1[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(sys.hierarchy_for("cpuacct"), sys.hierarchy_for("cpu"));
}

TEST(CgroupLayout, Unified) {
  auto sys = fc::parse_cgroup_system(kUnified, "0::/user.slice\n", "cpuset cpu io memory pids\n");
  EXPECT_EQ(sys.layout, fc::CgroupLayout::Unified);
  EXPECT_TRUE(sys.has_controller("io"));
  EXPECT_FALSE(sys.has_controller("blkio"));
  EXPECT_EQ(sys.own_paths.at(""), "/user.slice");
}

TEST(CgroupLayout, EscapedMountpoint) {
  auto sys = fc::parse_cgroup_system("1 0 0:1 / /sys/fs/my\\040cgroups rw - cgroup cgroup rw,pids\n", "", "");
  ASSERT_EQ(sys.v1.size(), 1u);
  EXPECT_EQ(sys.v1[0].mountpoint, "/sys/fs/my cgroups");
}

class FakeV1 : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* c : {"cpu", "memory", "pids", "cpuset", "blkio", "devices"}) {
      fc::CgroupHierarchy h;
      h.mountpoint = dir_.path() + "/" + c;
      h.root = "/";
      h.controllers = {c};
      fs::create_directories(h.mountpoint);
      sys_.v1.push_back(h);
    }
    sys_.layout = fc::CgroupLayout::Legacy;
    touch(dir_.path() + "/cpuset/cpuset.cpus", "0-3\n");
    touch(dir_.path() + "/cpuset/cpuset.mems", "0\n");
  }
  TempDir dir_;
  fc::CgroupSystem sys_;
};

TEST_F(FakeV1, CreateDefaultPathCopiesCpuset) {
  auto cg = fc::Cgroup::create(sys_, "", "web");
  ASSERT_TRUE(cg) << cg.error().to_string();
  EXPECT_EQ(cg->relative_path(), "/foundry/web");
  EXPECT_EQ(cg->dirs().size(), 6u);
  EXPECT_TRUE(fs::is_directory(dir_.path() + "/memory/foundry/web"));
  // The kernel leaves a new cpuset empty; the parent's values are copied.
  EXPECT_EQ(slurp(dir_.path() + "/cpuset/foundry/cpuset.cpus"), "0-3");
  EXPECT_EQ(slurp(dir_.path() + "/cpuset/foundry/web/cpuset.mems"), "0");
}

TEST_F(FakeV1, ApplyWritesV1Files) {
  auto cg = fc::Cgroup::create(sys_, "/pods/a", "a");
  ASSERT_TRUE(cg) << cg.error().to_string();
  // A fake hierarchy has no kernel files: make the ones the test expects.
  std::string m = dir_.path() + "/memory/pods/a/", c = dir_.path() + "/cpu/pods/a/";
  for (auto f : {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness"})
    touch(m + f);
  for (auto f : {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"}) touch(c + f);
  touch(dir_.path() + "/pids/pods/a/pids.max");
  touch(dir_.path() + "/devices/pods/a/devices.allow");
  touch(dir_.path() + "/devices/pods/a/devices.deny");
  fc::Resources r;
  r.memory = fc::MemoryResources{};
  r.memory->limit = 64 << 20;
  r.memory->swap = 128 << 20;
  r.memory->reservation = 32 << 20;
  r.memory->swappiness = 0;
  r.cpu = fc::CpuResources{};
  r.cpu->shares = 512;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.pids_limit = -1;
  r.devices.push_back(fc::DeviceRule{true, 'c', 10, 229, "rw"});
  auto st = cg->apply(r);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(slurp(m + "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(slurp(m + "memory.memsw.limit_in_bytes"), "134217728");
  EXPECT_EQ(slurp(m + "memory.soft_limit_in_bytes"), "33554432");
  EXPECT_EQ(slurp(m + "memory.swappiness"), "0");
  EXPECT_EQ(slurp(c + "cpu.shares"), "512");
  EXPECT_EQ(slurp(c + "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(slurp(dir_.path() + "/pids/pods/a/pids.max"), "max");
  // Each write replaces the fake file: the last allow rule is a default one.
  EXPECT_EQ(slurp(dir_.path() + "/devices/pods/a/devices.deny"), "a");
  EXPECT_EQ(slurp(dir_.path() + "/devices/pods/a/devices.allow"), "c 10:200 rwm");
}

TEST_F(FakeV1, MissingKernelFileNamesTheField) {
  auto cg = fc::Cgroup::create(sys_, "/x", "x");
  ASSERT_TRUE(cg);
  fc::Resources r;
  r.pids_limit = 10;  // pids.max does not exist in the fake tree
  auto st = cg->apply(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().to_string().find("apply linux.resources.pids.limit"), std::string::npos) << st.error().to_string();
  EXPECT_NE(st.error().to_string().find("pids.max"), std::string::npos);
}

TEST_F(FakeV1, RelativePathIsBelowOwnCgroup) {
  sys_.own_paths["memory"] = "/runtime";
  sys_.own_paths["cpu"] = "/runtime";
  sys_.own_paths["pids"] = "/runtime";
  sys_.own_paths["cpuset"] = "/runtime";
  sys_.own_paths["blkio"] = "/runtime";
  sys_.own_paths["devices"] = "/runtime";
  auto cg = fc::Cgroup::create(sys_, "ctr/one", "one");
  ASSERT_TRUE(cg) << cg.error().to_string();
  EXPECT_TRUE(fs::is_directory(dir_.path() + "/memory/runtime/ctr/one"));
}

TEST_F(FakeV1, DestroyRemovesLeafAndCreatedParents) {
  auto cg = fc::Cgroup::create(sys_, "/a/b/c", "c");
  ASSERT_TRUE(cg);
  // In a fake tree rmdir only works on empty directories: drop the copied
  // cpuset files first, as the kernel's own files would not count.
  for (const auto& d : {"/cpuset/a/b/c", "/cpuset/a/b", "/cpuset/a"})
    for (const auto& f : {"/cpuset.cpus", "/cpuset.mems"}) fs::remove(dir_.path() + d + f);
  auto st = cg->destroy();
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_FALSE(fs::exists(dir_.path() + "/memory/a"));
  EXPECT_TRUE(fs::exists(dir_.path() + "/memory"));
}

TEST_F(FakeV1, JsonRoundTrip) {
  auto cg = fc::Cgroup::create(sys_, "/j", "j");
  ASSERT_TRUE(cg);
  auto back = fc::Cgroup::from_json(cg->to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->dirs().size(), cg->dirs().size());
  EXPECT_EQ(back->dirs()[1].path, cg->dirs()[1].path);
  EXPECT_EQ(back->layout(), fc::CgroupLayout::Legacy);
}

TEST(FakeV2, EnablesControllersAndWritesV2Files) {
  TempDir dir;
  fc::CgroupSystem sys;
  sys.layout = fc::CgroupLayout::Unified;
  fc::CgroupHierarchy h;
  h.mountpoint = dir.path();
  h.root = "/";
  h.v2 = true;
  h.controllers = {"cpu", "memory", "pids", "io"};
  sys.unified = h;
  touch(dir.path() + "/cgroup.controllers", "cpu io memory pids\n");
  touch(dir.path() + "/cgroup.subtree_control", "");
  auto cg = fc::Cgroup::create(sys, "/c1", "c1");
  ASSERT_TRUE(cg) << cg.error().to_string();
  EXPECT_EQ(slurp(dir.path() + "/cgroup.subtree_control"), "+cpu +io +memory +pids");
  std::string d = dir.path() + "/c1/";
  for (auto f : {"memory.max", "memory.swap.max", "cpu.weight", "cpu.max", "pids.max", "io.weight"}) touch(d + f);
  fc::Resources r;
  r.memory = fc::MemoryResources{};
  r.memory->limit = 100 << 20;
  r.memory->swap = 150 << 20;
  r.cpu = fc::CpuResources{};
  r.cpu->shares = 1024;
  r.cpu->quota = 20000;
  r.pids_limit = 32;
  r.block_io = fc::BlockIoResources{};
  r.block_io->weight = 300;
  auto st = cg->apply(r);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(slurp(d + "memory.max"), "104857600");
  EXPECT_EQ(slurp(d + "memory.swap.max"), "52428800");  // v2 swap excludes memory
  EXPECT_EQ(slurp(d + "cpu.weight"), "39");
  EXPECT_EQ(slurp(d + "cpu.max"), "20000 100000");
  EXPECT_EQ(slurp(d + "pids.max"), "32");
  EXPECT_EQ(slurp(d + "io.weight"), "default 300");
}

TEST(CgroupMath, SharesToWeight) {
  EXPECT_EQ(fc::cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(fc::cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(fc::cpu_shares_to_weight(262144), 10000u);
}
