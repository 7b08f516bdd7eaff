// End to end: the VM base image that `foundry platform base-image` builds
// boots under QEMU (software emulation, UEFI), cloud-init applies a NoCloud
// seed (hostname from fqdn, a static address, an SSH key), and SSH works.
//
// The image comes from the cached fixture (tests/e2e/lib/base-image.sh):
// built on the first run (minutes), reused afterwards. The VM runs on an
// overlay, so the cached image is never written. Networking is QEMU user
// mode only, restricted (the guest reaches nothing), with one forward from
// 127.0.0.1:<free port> to the guest's static address, port 22.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "e2e_support.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using namespace foundry::e2e;
using namespace std::chrono_literals;

namespace {

constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
constexpr const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";
// QEMU's user-mode network is moved to a documentation range; the guest's
// static address is not the one its DHCP server would hand out (.15), so a
// working SSH forward to it proves network-config was applied.
constexpr const char* kGuestIp = "192.0.2.20";
constexpr const char* kGuestMac = "52:54:00:f0:0d:01";
constexpr const char* kFqdn = "e2e-vm.example.test";
constexpr const char* kShortName = "e2e-vm";

void phase(const char* name, double seconds) {
  std::printf("[ timing ] %-28s %7.1f s\n", name, seconds);
  std::fflush(stdout);
  ::testing::Test::RecordProperty(std::string("seconds_") + name, std::to_string(seconds));
}

std::string tail(const std::string& s, size_t n = 3000) { return s.size() > n ? s.substr(s.size() - n) : s; }

// The serial log without terminal escape sequences (systemd's status colors,
// OVMF's cursor movement).
std::string clean(const std::string& s) {
  static const std::regex esc("\x1b\\[[0-9;?=]*[A-Za-z]");
  return std::regex_replace(s, esc, "");
}

}  // namespace

class BaseImageBoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: building the base image runs mmdebstrap --mode=root";
    for (const char* tool : {"qemu-system-x86_64", "qemu-img", "cloud-localds", "ssh", "ssh-keygen", "mmdebstrap",
                             "mkfs.ext4", "mcopy"})
      if (find_program(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
    for (const char* f : {kOvmfCode, kOvmfVars})
      if (::access(f, R_OK) != 0) GTEST_SKIP() << f << " is missing (package ovmf)";
  }
};

TEST_F(BaseImageBoot, BootsRunsCloudInitAndAcceptsSsh) {
  const auto t_all = Clock::now();

  // Phase 1: the image (cached between runs).
  auto t = Clock::now();
  auto image = ensure_base_image();
  ASSERT_TRUE(image) << image.error().to_string() << "\n" << image.error().detail();
  phase("base image (fixture)", seconds_since(t));
  std::printf("%s", image->log.c_str());
  ASSERT_TRUE(std::filesystem::exists(image->path)) << image->path;

  // Phase 2: seed, overlay, firmware variables, key.
  t = Clock::now();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "foundry-e2e", "-f", dir / "key"}));
  auto pub = read_file(dir / "key.pub");
  ASSERT_TRUE(pub);
  // fqdn only: the short host name must come from it. meta-data's
  // local-hostname is different on purpose (it must lose).
  std::string user_data = fmt::format(
      "#cloud-config\n"
      "fqdn: {}\n"
      "disable_root: false\n"
      "ssh_authorized_keys:\n"
      "  - {}\n"
      "runcmd:\n"
      "  - echo \"FOUNDRY-E2E-READY host=$(hostname) fqdn=$(hostname -f)\" > /dev/ttyS0\n",
      kFqdn, pub->substr(0, pub->find('\n')));
  ASSERT_TRUE(write_file_atomic(dir / "user-data", user_data));
  ASSERT_TRUE(write_file_atomic(dir / "meta-data", "instance-id: foundry-e2e-1\nlocal-hostname: from-meta-data\n"));
  ASSERT_TRUE(write_file_atomic(dir / "network-config",
                                fmt::format("version: 2\n"
                                            "ethernets:\n"
                                            "  nic0:\n"
                                            "    match:\n"
                                            "      macaddress: \"{}\"\n"
                                            "    set-name: eth0\n"
                                            "    addresses: [{}/24]\n"
                                            "    gateway4: 192.0.2.2\n",
                                            kGuestMac, kGuestIp)));
  auto seed = run_checked({"cloud-localds", "-N", dir / "network-config", dir / "seed.iso", dir / "user-data",
                           dir / "meta-data"});
  ASSERT_TRUE(seed) << seed.error().to_string() << "\n" << seed.error().detail();
  ASSERT_TRUE(run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", image->path, "-F", "qcow2",
                           dir / "overlay.qcow2"}));
  std::filesystem::copy_file(kOvmfVars, dir / "vars.fd");
  int port = free_loopback_port();
  ASSERT_GT(port, 0);
  phase("prepare seed and overlay", seconds_since(t));

  // Phase 3: boot.
  t = Clock::now();
  const std::string serial = dir / "serial.log";
  const std::string qemu_out = dir / "qemu.out";
  BackgroundProcess qemu;
  std::string err = qemu.start(
      {"qemu-system-x86_64", "-name", "foundry-e2e-base-image", "-machine", "q35", "-accel", "tcg", "-m", "1024",
       "-smp", "2", "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot", "-serial",
       "file:" + serial, "-drive",
       std::string("if=pflash,format=raw,unit=0,readonly=on,file=") + kOvmfCode, "-drive",
       "if=pflash,format=raw,unit=1,file=" + (dir / "vars.fd"), "-drive",
       "file=" + (dir / "overlay.qcow2") + ",if=none,id=disk0,format=qcow2", "-device",
       "virtio-blk-pci,drive=disk0,bootindex=1", "-drive",
       "file=" + (dir / "seed.iso") + ",if=none,id=seed,format=raw,media=cdrom,readonly=on", "-device",
       "ide-cd,drive=seed,bus=ide.0", "-netdev",
       fmt::format("user,id=net0,restrict=on,net=192.0.2.0/24,host=192.0.2.2,"
                   "hostfwd=tcp:127.0.0.1:{}-{}:22",
                   port, kGuestIp),
       "-device", fmt::format("virtio-net-pci,netdev=net0,mac={}", kGuestMac)},
      qemu_out);
  ASSERT_EQ(err, "");
  auto qemu_gone = [&] { return !qemu.alive(); };
  auto log_has = [&](const std::string& needle) { return clean(slurp(serial)).find(needle) != std::string::npos; };
  auto why = [&] {
    return fmt::format("qemu: {}\nqemu output:\n{}\nserial log (end):\n{}", qemu.status(), slurp(qemu_out),
                       tail(clean(slurp(serial))));
  };

  ASSERT_TRUE(wait_until(300s, [&] { return log_has("Linux version"); }, qemu_gone))
      << "the kernel did not start\n" << why();
  phase("firmware + boot loader", seconds_since(t));
  auto t_kernel = Clock::now();
  ASSERT_TRUE(wait_until(300s, [&] { return log_has("Run /init as init process"); }, qemu_gone))
      << "the kernel did not reach the initramfs\n" << why();
  ASSERT_TRUE(wait_until(300s, [&] { return log_has("Welcome to ") || log_has("systemd[1]"); }, qemu_gone))
      << "systemd did not start from the root file system\n" << why();
  phase("kernel to systemd", seconds_since(t_kernel));

  // Phase 4: cloud-init, all the way to runcmd in the final stage.
  auto t_ci = Clock::now();
  // Generous: cloud-init's four Python stages take about a minute on an idle
  // 2-core machine under emulation, and seven on one loaded by other builds.
  ASSERT_TRUE(wait_until(900s, [&] { return log_has("FOUNDRY-E2E-READY"); }, qemu_gone))
      << "cloud-init did not run the seed's runcmd\n" << why();
  phase("systemd to cloud-init runcmd", seconds_since(t_ci));
  std::string log = clean(slurp(serial));
  EXPECT_NE(log.find("running 'init-local'"), std::string::npos) << "cloud-init's local stage is not in the log";
  EXPECT_NE(log.find("running 'modules:final'"), std::string::npos) << "cloud-init's final stage is not in the log";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("FOUNDRY-E2E-READY host=(\\S*) fqdn=(\\S*)")));
  EXPECT_EQ(m[1].str(), kShortName) << "hostname not taken from fqdn";
  EXPECT_EQ(m[2].str(), kFqdn);

  // Phase 5: SSH with the injected key, through the forward to the static address.
  auto t_ssh = Clock::now();
  std::vector<std::string> ssh = {"ssh",     "-i",   dir / "key",   "-o", "StrictHostKeyChecking=no",
                                  "-o",      "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                                  "-o",      "IdentitiesOnly=yes", "-o", "ConnectTimeout=15",
                                  "-o",      "LogLevel=ERROR", "-p", std::to_string(port), "root@127.0.0.1"};
  auto ssh_run = [&](const std::string& cmd) {
    auto argv = ssh;
    argv.push_back(cmd);
    RunOptions o;
    o.timeout = 120s;
    return run(argv, o);
  };
  std::string last;
  bool ssh_ok = wait_until(
      240s,
      [&] {
        auto r = ssh_run("hostname");
        if (r && r->ok()) return true;
        last = r ? r->describe() : r.error().to_string();
        return false;
      },
      qemu_gone, 2s);
  ASSERT_TRUE(ssh_ok) << "ssh root@127.0.0.1 -p " << port << " never worked: " << last << "\n" << why();
  phase("ssh answers", seconds_since(t_ssh));

  auto host = ssh_run("hostname");
  ASSERT_TRUE(host && host->ok());
  EXPECT_EQ(host->out, std::string(kShortName) + "\n");
  auto fq = ssh_run("hostname -f");
  ASSERT_TRUE(fq && fq->ok());
  EXPECT_EQ(fq->out, std::string(kFqdn) + "\n");
  auto addr = ssh_run("ip -4 -o addr show dev eth0");
  ASSERT_TRUE(addr && addr->ok()) << (addr ? addr->describe() : addr.error().to_string());
  EXPECT_NE(addr->out.find(std::string("inet ") + kGuestIp + "/24"), std::string::npos) << addr->out;
  // The image promises a fresh identity per VM.
  auto id = ssh_run("cat /etc/machine-id; ls /etc/ssh/ssh_host_ed25519_key; systemctl is-active systemd-networkd");
  ASSERT_TRUE(id && id->ok()) << (id ? id->describe() + id->err : "");
  EXPECT_TRUE(std::regex_search(id->out, std::regex("^[0-9a-f]{32}\n"))) << id->out;
  EXPECT_NE(id->out.find("active"), std::string::npos);
  auto cmdline = ssh_run("cat /proc/cmdline; findmnt -n -o SOURCE,FSTYPE /");
  ASSERT_TRUE(cmdline && cmdline->ok());
  EXPECT_NE(cmdline->out.find("console=ttyS0"), std::string::npos) << cmdline->out;
  EXPECT_NE(cmdline->out.find("/dev/vda2 ext4"), std::string::npos) << cmdline->out;

  qemu.stop();
  phase("whole test", seconds_since(t_all));
}
