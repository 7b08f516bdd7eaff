// One VM from start to end through the real `foundry` binary, as a user types
// it: image import, vm create on a real libvirtd (QEMU/TCG, UEFI) with a
// cloud-init seed, ssh into the guest over a Linux bridge, vm list / vm info,
// vm destroy.
//
// Host-side changes: one Linux bridge (fe2e<pid>) with 203.0.113.1/26, and
// private storage pools under a temporary base path. 192.0.2.0/24 is not used
// because this host's own uplink and default gateway live there. Everything
// is removed by RAII guards on every exit path (also when an assertion fails).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../integration/virt/test_support.h"
#include "e2e_support.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

namespace foundry::e2e {
namespace {
using foundry::testing::ensure_libvirtd;
using foundry::testing::program;
using foundry::testing::sh;

const std::string kUri = "qemu:///system";
const std::string kBinary = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
const std::string kHostIp = "203.0.113.1";
const std::string kGuestIp = "203.0.113.10";
// A /26, not the whole /24: on these machines deb.debian.org resolves into
// 203.0.113.0/24 (203.0.113.80), and a connected /24 on the host bridge would
// cut every other process's path to the Debian mirror while the test runs.
const std::string kPrefix = "/26";
const std::string kTap = "vmcb00710a";  // derive_tap_name(203.0.113.10)
const uint64_t kDataDiskBytes = 1ull << 30;  // size_gb: 1 (the disk is 1 GiB)

// The test bridge: created in the constructor, deleted in the destructor.
class BridgeGuard {
 public:
  explicit BridgeGuard(std::string name) : name_(std::move(name)) {}
  std::string create() {
    auto r = sh({"ip", "link", "add", name_, "type", "bridge"});
    if (!r.ok()) return "ip link add " + name_ + ": " + r.err;
    made_ = true;
    r = sh({"ip", "addr", "add", kHostIp + kPrefix, "dev", name_});
    if (!r.ok()) return "ip addr add: " + r.err;
    r = sh({"ip", "link", "set", name_, "up"});
    if (!r.ok()) return "ip link set up: " + r.err;
    return "";
  }
  ~BridgeGuard() {
    if (made_) (void)sh({"ip", "link", "del", name_});
  }
  BridgeGuard(const BridgeGuard&) = delete;
  BridgeGuard& operator=(const BridgeGuard&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool made_ = false;
};

// Removes a libvirt pool with all its volumes (virsh, so cleanup does not
// depend on the code under test).
// Volume names in a pool (`virsh vol-list` here has no --name: the first
// column after the two header lines).
std::vector<std::string> volume_names(const std::string& pool, bool* ok = nullptr) {
  auto r = sh({"virsh", "-c", kUri, "vol-list", pool});
  if (ok) *ok = r.ok();
  std::vector<std::string> names;
  std::istringstream in(r.out);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (n++ < 2) continue;
    std::istringstream w(line);
    std::string name;
    if (w >> name) names.push_back(name);
  }
  return names;
}

void remove_pool(const std::string& pool) {
  if (!sh({"virsh", "-c", kUri, "pool-info", pool}).ok()) return;
  for (const auto& v : volume_names(pool)) (void)sh({"virsh", "-c", kUri, "vol-delete", v, "--pool", pool});
  (void)sh({"virsh", "-c", kUri, "pool-destroy", pool});
  (void)sh({"virsh", "-c", kUri, "pool-delete", pool});
  (void)sh({"virsh", "-c", kUri, "pool-undefine", pool});
}

class VmLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (libvirt qemu:///system, a bridge)";
    for (auto p : {"qemu-system-x86_64", "libvirtd", "virtlogd", "virsh", "ssh", "ssh-keygen", "qemu-img", "ip"})
      if (program(p).empty()) GTEST_SKIP() << p << " is not installed";
    if (!std::filesystem::exists(kBinary)) GTEST_SKIP() << kBinary << " is not built";
    auto addrs = sh({"ip", "-4", "-o", "addr"});
    if (addrs.out.find("203.0.113.") != std::string::npos)
      GTEST_SKIP() << "the host already has an address in 203.0.113.0/24: " << addrs.out;
    auto why = ensure_libvirtd();
    if (!why.empty()) GTEST_SKIP() << why;
    pid_ = std::to_string(::getpid());
    vm_pool_ = "fe2e-" + pid_ + "-vms";
    image_pool_ = "fe2e-" + pid_ + "-images";
    name_ = "fe2e-" + pid_;
    // libvirt's qemu user must reach the pool directories.
    ::chmod(dir_.path().c_str(), 0755);
  }

  void TearDown() override {
    if (pid_.empty()) return;
    if (HasFailure() && vm_started_) dump_diagnostics();
    if (sh({"virsh", "-c", kUri, "dominfo", name_}).ok()) {
      (void)sh({"virsh", "-c", kUri, "destroy", name_});
      (void)sh({"virsh", "-c", kUri, "undefine", name_, "--nvram"});
    }
    remove_pool(vm_pool_);
    remove_pool(image_pool_);
  }

  void dump_diagnostics() {
    std::printf("---- diagnostics for %s ----\n", name_.c_str());
    std::printf("%s\n", sh({"virsh", "-c", kUri, "domstate", name_, "--reason"}).out.c_str());
    std::printf("---- /var/log/libvirt/qemu/%s.log ----\n%s\n", name_.c_str(),
                slurp("/var/log/libvirt/qemu/" + name_ + ".log").c_str());
    std::printf("---- serial console (%s) ----\n%s\n", serial_log_.c_str(), slurp(serial_log_).c_str());
  }

  RunResult foundry(std::vector<std::string> args, int timeout_s = 300) {
    args.insert(args.begin(), {kBinary, "--connect", kUri});
    RunOptions o;
    o.timeout = std::chrono::seconds(timeout_s);
    o.extra_env = {"FOUNDRY_IMAGE_POOL=" + image_pool_, "FOUNDRY_VM_POOL=" + vm_pool_,
                   "FOUNDRY_STORAGE_PATH=" + dir_.path() + "/pools"};
    auto r = run(args, o);
    if (!r) {
      RunResult f;
      f.err = r.error().to_string();
      return f;
    }
    return *r;
  }

  RunResult ssh(const std::string& cmd, int timeout_s = 30) {
    return sh({"ssh", "-i", key_, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
               "ConnectTimeout=5", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@" + kGuestIp, cmd},
              timeout_s);
  }

  void phase(const char* what, Clock::time_point t0) { std::printf("[timing] %-28s %7.1f s\n", what, seconds_since(t0)); std::fflush(stdout); }

  TempDir dir_{"foundry-vm-e2e-"};
  std::string pid_, vm_pool_, image_pool_, name_, key_, serial_log_;
  bool vm_started_ = false;
  BackgroundProcess serial_;
};

TEST_F(VmLifecycle, CreateSshAndDestroyADebianVm) {
  auto t_all = Clock::now();
  auto t = Clock::now();
  auto base = ensure_base_image();
  ASSERT_TRUE(base) << base.error().to_string();
  phase("base image", t);

  BridgeGuard bridge("fe2e" + pid_.substr(0, 10));
  auto why = bridge.create();
  ASSERT_EQ(why, "");

  t = Clock::now();
  auto imp = foundry({"image", "import", base->path, "--name", "debian-e2e.qcow2"});
  ASSERT_EQ(imp.exit_code, 0) << imp.out << imp.err;
  phase("image import", t);

  key_ = dir_ / "id_ed25519";
  auto kg = sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "foundry-e2e", "-f", key_});
  ASSERT_TRUE(kg.ok()) << kg.describe() << kg.err;
  auto pub = slurp(key_ + ".pub");
  ASSERT_FALSE(pub.empty());
  pub = pub.substr(0, pub.find('\n'));

  const std::string vm_file = dir_ / "vm.yaml";
  const std::string yaml = "name: " + name_ + "\n" +
                           "vcpus: 2\n"
                           "memory_gib: 1\n"
                           "boot_disk:\n"
                           "  size_gb: 4\n"
                           "  image: debian-e2e\n"
                           "  format: qcow2\n"
                           "data_disks:\n"
                           "  - device: vdb\n"
                           "    size_gb: 1\n"
                           "network_interfaces:\n"
                           "  - ip: " + kGuestIp + kPrefix + "\n" +
                           "    gateway: " + kHostIp + "\n" +
                           "    bridge: " + bridge.name() + "\n" +
                           "cloud_init:\n"
                           "  fqdn: e2e-vm.example.com\n"
                           "  ssh_keys:\n"
                           "    - \"" + pub + "\"\n" +
                           "autostart: false\n"
                           "accelerator: qemu\n"
                           "firmware: uefi\n";
  ASSERT_TRUE(write_file_atomic(vm_file, yaml));

  t = Clock::now();
  auto cr = foundry({"vm", "create", vm_file});
  vm_started_ = true;
  ASSERT_EQ(cr.exit_code, 0) << cr.out << cr.err;
  EXPECT_NE(cr.out.find("✓"), std::string::npos) << cr.out;
  std::printf("%s", cr.out.c_str());
  phase("vm create", t);
  // The guest's serial console is a pty: copy it into a file for diagnosis
  // (printed when the test fails). Reading the pty does not disturb libvirt.
  auto tty = sh({"virsh", "-c", kUri, "ttyconsole", name_});
  if (tty.ok() && tty.out.starts_with("/dev/pts/")) {
    serial_log_ = dir_ / "serial.log";
    auto err = serial_.start({"cat", tty.out.substr(0, tty.out.find('\n'))}, serial_log_);
    if (!err.empty()) std::printf("serial capture: %s\n", err.c_str());
  }

  t = Clock::now();
  RunResult last;
  bool up = wait_until(
      std::chrono::seconds(480),
      [&] {
        last = ssh("hostname", 20);
        return last.ok();
      },
      [&] { return !sh({"virsh", "-c", kUri, "domstate", name_}).out.starts_with("running"); },
      std::chrono::seconds(5));
  phase("boot to ssh", t);
  ASSERT_TRUE(up) << "no ssh answer from " << kGuestIp << ": " << last.describe() << " " << last.err;

  EXPECT_EQ(last.out, "e2e-vm\n");
  auto ping = sh({"ping", "-c", "2", "-W", "5", kGuestIp});
  EXPECT_TRUE(ping.ok()) << ping.out << ping.err;
  // After the first answer cloud-init may still restart sshd (its final
  // stage): a refused connection then is not a failure of the guest. Retry
  // ssh's own failures (exit 255) for up to two minutes.
  RunResult lsblk;
  wait_until(
      std::chrono::seconds(120),
      [&] {
        lsblk = ssh("lsblk -b -n -o SIZE /dev/vdb");
        return lsblk.exit_code != 255;
      },
      [&] { return false; }, std::chrono::seconds(3));
  ASSERT_TRUE(lsblk.ok()) << lsblk.describe() << lsblk.err;
  EXPECT_EQ(std::stoull(lsblk.out), kDataDiskBytes) << lsblk.out;

  auto list = foundry({"vm", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  bool listed = false;
  std::istringstream lin(list.out);
  for (std::string line; std::getline(lin, line);)
    if (line.starts_with(name_ + " ")) {
      listed = true;
      EXPECT_NE(line.find("running"), std::string::npos) << line;
      EXPECT_NE(line.find(kGuestIp), std::string::npos) << line;
    }
  EXPECT_TRUE(listed) << list.out;

  auto info = foundry({"-o", "json", "vm", "info", name_});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["name"], name_);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["addresses"], nlohmann::json::array({kGuestIp + kPrefix})) << info.out;

  t = Clock::now();
  auto de = foundry({"vm", "destroy", name_, "--timeout", "60"}, 180);
  EXPECT_EQ(de.exit_code, 0) << de.out << de.err;
  std::printf("%s", de.out.c_str());
  phase("vm destroy", t);

  auto st = sh({"virsh", "-c", kUri, "domstate", name_});
  EXPECT_FALSE(st.ok()) << "domain still there: " << st.out;
  bool listed_ok = false;
  for (const auto& v : volume_names(vm_pool_, &listed_ok)) EXPECT_FALSE(v.starts_with(name_ + "_")) << "left: " << v;
  EXPECT_TRUE(listed_ok) << "virsh vol-list " << vm_pool_ << " failed";
  auto links = sh({"ip", "-o", "link"});
  EXPECT_EQ(links.out.find(kTap), std::string::npos) << links.out;
  phase("total", t_all);
}

}  // namespace
}  // namespace foundry::e2e
