// The cgroup v2 device filter on this kernel: a BPF_PROG_TYPE_CGROUP_DEVICE
// program built from device rules, attached to a cgroup the test makes in
// the unified hierarchy (on this hybrid host /sys/fs/cgroup/unified, which
// takes device programs although the v1 devices controller exists too).
// A child moved into that cgroup then finds allowed devices openable and
// denied ones refused with EPERM. The cgroup is removed afterwards.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/container/cgroup.h"

namespace fc = foundry::container;

namespace {

class DeviceFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (cgroups, BPF)";
    auto sys = fc::detect_cgroups();
    if (!sys || !sys->unified) GTEST_SKIP() << "no cgroup2 (unified) hierarchy is mounted";
    dir_ = sys->unified->mountpoint + "/foundry-devtest-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_ << ": " << std::strerror(errno);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      EXPECT_EQ(::rmdir(dir_.c_str()), 0) << dir_ << ": " << std::strerror(errno);
    }
  }

  // Opens `path` with `flags` from a child inside the test cgroup; the
  // errno of the open (0 when it worked).
  int open_in_cgroup(const char* path, int flags) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string self = "0";
      int e = -2;
      int cg = ::open((dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (cg >= 0 && ::write(cg, self.data(), self.size()) == 1) {
        int fd = ::open(path, flags | O_CLOEXEC);
        e = fd >= 0 ? 0 : errno;
      }
      (void)!::write(pipefd[1], &e, sizeof e);
      ::_exit(0);
    }
    ::close(pipefd[1]);
    int e = -3;
    (void)!::read(pipefd[0], &e, sizeof e);
    ::close(pipefd[0]);
    ::waitpid(pid, nullptr, 0);
    return e;
  }

  std::string dir_;
};

}  // namespace

TEST_F(DeviceFilter, DeniedDevicesFailWithEpermAllowedOnesOpen) {
  // Before any program, everything opens.
  ASSERT_EQ(open_in_cgroup("/dev/zero", O_RDONLY), 0);
  std::vector<fc::DeviceRule> rules = {
      {false, 'a', -1, -1, "rwm"},  // deny everything
      {true, 'c', 1, 3, "rwm"},     // /dev/null
      {true, 'c', 1, 7, "r"},       // /dev/full, read only
      {true, 'c', 1, -1, "rw"},     // every c 1:* ...
      {false, 'c', 1, 9, "rwm"},    // ... but /dev/urandom (the later rule wins)
  };
  auto st = fc::attach_device_filter(dir_, rules);
  ASSERT_TRUE(st) << st.error().to_string() << "\n" << st.error().detail();
  EXPECT_EQ(open_in_cgroup("/dev/null", O_RDWR), 0);
  EXPECT_EQ(open_in_cgroup("/dev/full", O_RDONLY), 0);
  EXPECT_EQ(open_in_cgroup("/dev/zero", O_RDWR), 0);  // c 1:* rw
  EXPECT_EQ(open_in_cgroup("/dev/urandom", O_RDONLY), EPERM);
  EXPECT_EQ(open_in_cgroup("/dev/tty", O_RDONLY), EPERM);  // c 5:0, matched by nothing but "deny all"
  EXPECT_EQ(open_in_cgroup("/dev/full", O_WRONLY), 0);  // not by c 1:7 "r", but by the later c 1:* rw
}

TEST_F(DeviceFilter, ContainerRulesKeepTheDefaultsAndDenyTheRest) {
  // A spec that allows nothing itself: the container still gets /dev/null
  // and the other defaults, and nothing else.
  auto rules = fc::container_device_rules({{false, 'a', -1, -1, "rwm"}});
  auto st = fc::attach_device_filter(dir_, rules);
  ASSERT_TRUE(st) << st.error().to_string() << "\n" << st.error().detail();
  EXPECT_EQ(open_in_cgroup("/dev/null", O_RDWR), 0);
  EXPECT_EQ(open_in_cgroup("/dev/urandom", O_RDONLY), 0);
  // /dev/mem (c 1:1) is not among the defaults.
  if (::access("/dev/mem", F_OK) == 0) {
    EXPECT_EQ(open_in_cgroup("/dev/mem", O_RDONLY), EPERM);
  }
  // A block device: any whole disk there is.
  for (const char* disk : {"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"}) {
    struct stat sb {};
    if (::stat(disk, &sb) == 0 && S_ISBLK(sb.st_mode)) {
      EXPECT_EQ(open_in_cgroup(disk, O_RDONLY), EPERM) << disk;
      break;
    }
  }
  EXPECT_LT(fc::device_filter_size(rules), 8 * rules.size() + 10);
}

TEST_F(DeviceFilter, AccessBitsAreChecked) {
  // c 1:7 read only: read opens, write is refused.
  auto st = fc::attach_device_filter(dir_, {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 7, "r"}});
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(open_in_cgroup("/dev/full", O_RDONLY), 0);
  EXPECT_EQ(open_in_cgroup("/dev/full", O_WRONLY), EPERM);
  EXPECT_EQ(open_in_cgroup("/dev/full", O_RDWR), EPERM);
}
