// Bad inputs through the real `foundry` binary against the real libvirtd
// (qemu:///system, started when it is not running), one table: each case
// gives its exit code, a one-line reason (plus an optional hint line) on
// stderr, and leaves nothing behind. "Nothing" is checked on the real state,
// which the in-process test driver cannot show across processes: the
// domains, the pools, every volume of this test's pools and every file
// under its storage path are the same after the command as before it.
//
// No guest boots here; every case fails before a domain would start and
// takes well under a second. The set-up's one `virsh define` is the slow
// part on machines where /dev/kvm opens but KVM does not work: libvirt then
// re-probes QEMU's capabilities on every lookup (the cached probe says "no
// KVM", the device says "KVM usable"), several seconds each.
//
// Host changes, all removed afterwards (also on failure): two pools
// (fbad<pid>-images, fbad<pid>-vms) under a temporary directory, one defined
// (never started) domain fbad<pid>-taken, one network namespace holding two
// bridges (the host's interfaces are never touched), one immutable directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "test_support.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using foundry::testing::TempDir;
using foundry::testing::ensure_libvirtd;
using foundry::testing::program;
using foundry::testing::sh;

const std::string kBinary = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
const std::string kUri = "qemu:///system";

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    while (!l.empty() && (l.back() == ' ' || l.back() == '\r')) l.pop_back();
    size_t b = l.find_first_not_of(' ');
    if (b != std::string::npos) out.push_back(l.substr(b));
  }
  return out;
}

// Errors are one line, plus an optional hint line.
void expect_one_line_error(const RunResult& r, const std::string& what) {
  ASSERT_EQ(r.err.rfind("error: ", 0), 0u) << what << ": " << r.err;
  auto rest = r.err.substr(r.err.find('\n') + 1);
  EXPECT_TRUE(rest.empty() || (rest.rfind("hint: ", 0) == 0 && std::count(rest.begin(), rest.end(), '\n') == 1))
      << what << ": " << r.err;
}

// An immutable directory: not even root can create anything in it.
class ImmutableDir {
 public:
  explicit ImmutableDir(std::string path) : path_(std::move(path)) {
    ::mkdir(path_.c_str(), 0755);
    ok_ = sh({"chattr", "+i", path_}).ok();
  }
  ~ImmutableDir() {
    if (ok_) (void)sh({"chattr", "-i", path_});
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool ok_ = false;
};

// A network namespace of our own, with bridges in it; `ip netns exec` also
// gives the command a /sys showing only that namespace's interfaces.
class BridgeNamespace {
 public:
  explicit BridgeNamespace(std::string name) : name_(std::move(name)) {}
  ~BridgeNamespace() {
    if (made_) (void)sh({"ip", "netns", "delete", name_});
  }
  std::string create(const std::vector<std::string>& bridges) {
    auto r = sh({"ip", "netns", "add", name_});
    if (!r.ok()) return "ip netns add: " + r.err;
    made_ = true;
    for (const auto& b : bridges) {
      r = sh({"ip", "-n", name_, "link", "add", b, "type", "bridge"});
      if (!r.ok()) return "ip link add " + b + ": " + r.err;
    }
    return "";
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool made_ = false;
};

class BadInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto p : {"virsh", "qemu-img", "ip", "chattr"})
      if (program(p).empty()) GTEST_SKIP() << p << " is not installed";
    if (!fs::exists(kBinary)) GTEST_SKIP() << kBinary << " is not built";
    auto why = ensure_libvirtd();
    if (!why.empty()) GTEST_SKIP() << why;
    pid_ = std::to_string(::getpid());
    prefix_ = "fbad" + pid_;
    ::chmod(dir_.path.c_str(), 0755);
    storage_ = (dir_.path / "pools").string();
    env_ = {"FOUNDRY_URI=" + kUri, "FOUNDRY_IMAGE_POOL=" + prefix_ + "-images", "FOUNDRY_VM_POOL=" + prefix_ + "-vms",
            "FOUNDRY_STORAGE_PATH=" + storage_, "FOUNDRY_CONFIG=", "HOME=" + dir_.path.string()};
    // Both pools exist before the cases run (a real site has them): a
    // failing create must leave them as it found them.
    auto base = (dir_.path / "base.qcow2").string();
    auto mk = sh({"qemu-img", "create", "-q", "-f", "qcow2", base, "1G"});
    ASSERT_TRUE(mk.ok()) << mk.err;
    auto imp = foundry({"image", "import", base, "--name", "base.qcow2"});
    ASSERT_EQ(imp.exit_code, 0) << imp.out << imp.err;
    auto add = foundry({"pool", "add", prefix_ + "-vms", "--path", storage_ + "/vms"});
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
    // A domain that holds the name for the "taken" case: defined, never started.
    auto xml = dir_.file("taken.xml", "<domain type='qemu'><name>" + prefix_ +
                                          "-taken</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                                          "<os><type arch='x86_64'>hvm</type></os></domain>");
    auto def = sh({"virsh", "-c", kUri, "define", xml});
    ASSERT_TRUE(def.ok()) << def.err;
    defined_ = true;
  }

  void TearDown() override {
    if (pid_.empty()) return;
    if (defined_) (void)sh({"virsh", "-c", kUri, "undefine", prefix_ + "-taken"});
    for (const auto& pool : pools())
      if (pool.rfind(prefix_, 0) == 0) remove_pool(pool);
  }

  RunResult foundry(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), kBinary);
    auto e = env_;
    e.insert(e.end(), env.begin(), env.end());
    return sh(args, 120, e);
  }

  std::vector<std::string> pools() { return lines(sh({"virsh", "-c", kUri, "pool-list", "--all", "--name"}).out); }

  void remove_pool(const std::string& pool) {
    for (const auto& v : volumes(pool)) (void)sh({"virsh", "-c", kUri, "vol-delete", v, "--pool", pool});
    (void)sh({"virsh", "-c", kUri, "pool-destroy", pool});
    (void)sh({"virsh", "-c", kUri, "pool-delete", pool});
    (void)sh({"virsh", "-c", kUri, "pool-undefine", pool});
  }

  std::vector<std::string> volumes(const std::string& pool) {
    std::vector<std::string> out;
    auto l = lines(sh({"virsh", "-c", kUri, "-q", "vol-list", pool}).out);
    for (const auto& row : l) out.push_back(row.substr(0, row.find(' ')));
    return out;
  }

  // Everything a run could leave: domains, pools, our pools' volumes, and
  // every file under the test's directory.
  std::set<std::string> world() {
    std::set<std::string> w;
    for (const auto& d : lines(sh({"virsh", "-c", kUri, "list", "--all", "--name"}).out)) w.insert("domain " + d);
    for (const auto& p : pools()) {
      w.insert("pool " + p);
      if (p.rfind(prefix_, 0) == 0)
        for (const auto& v : volumes(p)) w.insert("volume " + p + "/" + v);
    }
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_.path, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (ec) break;
      w.insert("file " + it->path().string());
    }
    return w;
  }

  std::string vm_file(const std::string& name, const std::string& image, const std::string& bridge) {
    return dir_.file(name + ".yaml", "name: " + name +
                                         "\nvcpus: 1\nmemory_gib: 1\nboot_disk:\n  size_gb: 2\n  image: " + image +
                                         "\ndata_disks:\n  - device: vdb\n    size_gb: 1\n"
                                         "network_interfaces:\n  - ip: 203.0.113.10/24\n    gateway: 203.0.113.1\n"
                                         "    bridge: " +
                                         bridge +
                                         "\ncloud_init:\n  fqdn: bad.example.com\n"
                                         "autostart: false\naccelerator: qemu\nfirmware: bios\n");
  }

  TempDir dir_;
  std::string pid_, prefix_, storage_;
  std::vector<std::string> env_;
  bool defined_ = false;
};

TEST_F(BadInputs, EachGivesItsExitCodeAOneLineReasonAndLeavesNothing) {
  BridgeNamespace ns(prefix_ + "-br");
  ASSERT_EQ(ns.create({"br-lan0", "br-storage"}), "");
  ImmutableDir ro((dir_.path / "readonly").string());
  ASSERT_TRUE(ro.ok()) << "chattr +i failed on " << ro.path();
  auto ghost = dir_.file("ghost.qcow2", std::string("QFI\xfb", 4) + std::string(4092, '\0'));

  struct Case {
    std::string what;
    std::vector<std::string> args;
    int code;
    std::vector<std::string> needles;  // each must be in stderr
    std::vector<std::string> env = {};
    bool in_bridge_netns = false;
  };
  std::vector<Case> cases = {
      {"missing image",
       {"vm", "create", vm_file(prefix_ + "-a", "fedora-43", "br-lan0")},
       5,
       {"base image 'fedora-43' not found in pool " + prefix_ + "-images", "hint: import it: foundry image import"},
       {},
       true},
      {"taken name",
       {"vm", "create", vm_file(prefix_ + "-taken", "base", "br-lan0")},
       2,
       {"a domain named '" + prefix_ + "-taken' already exists", "hint: pick another name"},
       {},
       true},
      {"unknown bridge",
       {"vm", "create", vm_file(prefix_ + "-b", "base", "br-lan")},
       2,
       {"bridge 'br-lan' does not exist", "did you mean br-lan0?", "existing bridges: br-lan0, br-storage"},
       {},
       true},
      {"libvirtd down (no such socket)",
       {"--connect", "qemu+unix:///system?socket=/run/" + prefix_ + "-absent/libvirt-sock", "vm", "create",
        vm_file(prefix_ + "-c", "base", "br-lan0")},
       3,
       {"cannot connect to libvirt", "hint: is libvirtd running?", "/run/" + prefix_ + "-absent/libvirt-sock"}},
      {"libvirtd down (FOUNDRY_URI)",
       {"vm", "list", "--all"},
       3,
       {"cannot connect to libvirt", "hint: is libvirtd running?"},
       {"FOUNDRY_URI=qemu+unix:///system?socket=/run/" + prefix_ + "-absent/libvirt-sock"}},
      {"pool path not writable",
       {"image", "import", ghost, "--name", "ghost.qcow2"},
       5,
       {"create pool " + prefix_ + "-ro-images", "hint: check that libvirtd can create and write " + ro.path()},
       {"FOUNDRY_IMAGE_POOL=" + prefix_ + "-ro-images", "FOUNDRY_STORAGE_PATH=" + ro.path()}},
      {"pull checksum mismatch",
       {"image", "pull", "file://" + ghost, "--name", "pulled.qcow2", "--checksum", "sha256:" + std::string(64, '0')},
       2,
       {"checksum mismatch"}},
  };

  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto before = world();
    auto args = c.args;
    if (c.in_bridge_netns) {
      args.insert(args.begin(), kBinary);
      args.insert(args.begin(), {"ip", "netns", "exec", ns.name()});
    }
    auto t0 = std::chrono::steady_clock::now();
    RunResult r;
    if (c.in_bridge_netns) {
      auto e = env_;
      e.insert(e.end(), c.env.begin(), c.env.end());
      r = sh(args, 120, e);
    } else {
      r = foundry(args, c.env);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, c.code) << r.out << r.err;
    expect_one_line_error(r, c.what);
    for (const auto& n : c.needles) EXPECT_NE(r.err.find(n), std::string::npos) << "want: " << n << "\n" << r.err;
    EXPECT_LT(secs, 20.0) << "a bad input should fail fast";
    std::printf("[timing] %-32s %5.2f s\n", c.what.c_str(), secs);
    auto after = world();
    std::vector<std::string> added, removed;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(removed));
    EXPECT_TRUE(added.empty()) << "left behind: " << ::testing::PrintToString(added);
    EXPECT_TRUE(removed.empty()) << "removed: " << ::testing::PrintToString(removed);
  }
}

}  // namespace
}  // namespace foundry
