// A real client: Debian's podman runs a container with --runtime pointing at
// foundry-oci, from an image imported from a busybox rootfs tarball. podman
// keeps all its state (storage, runroot, tmpdir) inside the test's temporary
// directory, so the host's podman storage is untouched.
//
// On this machine podman with Debian's runc fails ("error setting rlimit
// type 7: operation not permitted": podman asks for RLIMIT_NOFILE 1048576
// and the host has no CAP_SYS_RESOURCE); foundry-oci clamps and runs.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "bundle.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry::container::testing;
namespace fs = std::filesystem;

namespace {

class Podman : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = skip_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    if (foundry::find_program("podman").empty()) GTEST_SKIP() << "podman is not installed";
    if (foundry::find_program("conmon").empty()) GTEST_SKIP() << "conmon is not installed (podman's monitor)";
    b_ = std::make_unique<Bundle>();
    // podman (cgroupfs manager) puts conmon in /libpod_parent/conmon and
    // leaves it, and foundry-oci's default state root stays: both are
    // removed afterwards when empty.
    // `podman import` keeps a blob cache in /var/lib/containers/cache
    // whatever --root says; it goes too if this test made it.
    had_containers_dir_ = fs::exists("/var/lib/containers");
    image_ = "localhost/foundry-it-" + std::to_string(::getpid()) + ":latest";
    auto tar = foundry::run({"tar", "-C", b_->rootfs(), "-cf", b_->tmp() + "/rootfs.tar", "."});
    ASSERT_TRUE(tar && tar->ok()) << (tar ? tar->describe() : tar.error().to_string());
    auto imp = podman({"import", b_->tmp() + "/rootfs.tar", image_});
    ASSERT_TRUE(imp.ok()) << imp.describe() << imp.err;
  }
  void TearDown() override {
    if (b_) {
      podman({"rm", "--all", "--force"});
      podman({"rmi", "--force", image_});
      // podman's storage may hold mounts below the temporary directory.
      for (const auto& m : host_mounts_mentioning(b_->tmp())) {
        std::istringstream in(m);
        std::string f;
        for (int i = 0; i < 5 && in >> f; ++i) {
        }
        ::umount2(f.c_str(), MNT_DETACH);
      }
      if (!had_containers_dir_) {
        std::error_code ec;
        fs::remove_all("/var/lib/containers", ec);
      }
      // rmdir only removes what is empty: another podman test running in
      // parallel (or a real podman) keeps what it still uses.
      ::rmdir("/run/foundry-oci");
      for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
        ::rmdir((h.path().string() + "/libpod_parent/conmon").c_str());
        ::rmdir((h.path().string() + "/libpod_parent").c_str());
      }
    }
    b_.reset();
  }

  foundry::RunResult podman(std::vector<std::string> args) {
    std::string t = b_->tmp();
    std::vector<std::string> argv = {"podman",           "--root",           t + "/podman-root",
                                     "--runroot",        t + "/podman-run",  "--tmpdir",
                                     t + "/podman-tmp",  "--storage-driver", "vfs",
                                     "--cgroup-manager", "cgroupfs",         "--events-backend",
                                     "file",             "--runtime",        oci_binary(),
                                     // podman's CNI lock stays in the test's tree. (foundry-oci's
                                     // state cannot: podman's cleanup process is not given
                                     // --runtime-flag, so the default root is used throughout.)
                                     "--network-config-dir", t + "/cni"};
    argv.insert(argv.end(), args.begin(), args.end());
    foundry::RunOptions o;
    o.timeout = std::chrono::seconds(120);
    auto r = foundry::run(argv, o);
    if (!r) {
      foundry::RunResult bad;
      bad.err = r.error().to_string();
      return bad;
    }
    return *r;
  }

  std::unique_ptr<Bundle> b_;
  std::string image_;
  bool had_containers_dir_ = true;
};

}  // namespace

TEST_F(Podman, RunsAContainerWithFoundryOci) {
  std::string cid = b_->tmp() + "/cid";
  auto r = podman({"run", "--rm", "--network", "none", "--cidfile", cid, image_, "sh", "-c",
                   "echo hello from podman; echo pid $$; ulimit -n"});
  ASSERT_TRUE(r.ok()) << r.describe() << "\n" << r.err;
  std::istringstream out(r.out);
  std::string l1, l2, l3;
  std::getline(out, l1);
  std::getline(out, l2);
  std::getline(out, l3);
  EXPECT_EQ(l1, "hello from podman");
  EXPECT_EQ(l2, "pid 1");
  EXPECT_GT(std::stol(l3), 0);  // podman's 1048576, or the host's hard limit where it cannot be raised
  // --rm deleted the container through foundry-oci: its cgroup is gone.
  auto id = foundry::read_file(cid);
  ASSERT_TRUE(id);
  for (const char* h : {"memory", "pids", "cpu", "freezer"})
    EXPECT_FALSE(fs::exists(std::string("/sys/fs/cgroup/") + h + "/libpod_parent/libpod-" + *id)) << h;
}

TEST_F(Podman, ExitCodeAndTerminal) {
  auto r = podman({"run", "--rm", "--network", "none", image_, "sh", "-c", "exit 42"});
  EXPECT_EQ(r.exit_code, 42) << r.err;
  auto t = podman({"run", "--rm", "-t", "--network", "none", image_, "tty"});
  EXPECT_TRUE(t.ok()) << t.describe() << t.err;
  EXPECT_EQ(t.out, "/dev/pts/0\r\n");
}

TEST_F(Podman, DetachedContainerStopsAndIsRemoved) {
  auto d = podman({"run", "-d", "--name", "it-detached", "--network", "none", image_, "sleep", "1000"});
  ASSERT_TRUE(d.ok()) << d.describe() << d.err;
  auto ps = podman({"ps", "--format", "{{.Names}} {{.Status}}"});
  EXPECT_EQ(ps.out.substr(0, ps.out.find(' ')), "it-detached") << ps.out;
  EXPECT_NE(ps.out.find("Up"), std::string::npos) << ps.out;
  auto stop = podman({"stop", "--time", "1", "it-detached"});
  EXPECT_TRUE(stop.ok()) << stop.describe() << stop.err;
  auto rm = podman({"rm", "it-detached"});
  EXPECT_TRUE(rm.ok()) << rm.describe() << rm.err;
  auto none = podman({"ps", "--all", "--quiet"});
  EXPECT_EQ(none.out, "");
}
