// End to end: the artifacts boot. From the real Debian tree of the cached
// VM base image (tests/e2e/lib/base-image.sh), with a stand-in for the node
// agent that prints "foundry-node: ready" on the serial console, this test
// writes the live ISO and the disk images and boots, under QEMU software
// emulation with the serial console in a file:
//   1. the ISO by BIOS (SeaBIOS: isolinux from El Torito),
//   2. the ISO by UEFI (OVMF: systemd-boot from the El Torito EFI image),
//   3. the qcow2 disk image by UEFI,
//   4. the recovery key by UEFI, as a USB stick, into the live system,
//   5. the Firecracker kit (vmlinux, initrd, rootfs.ext4 as its JSON config
//      names them) on QEMU's microvm machine, Firecracker's device model
//      (virtio over MMIO, no PCI), since Firecracker itself cannot run here,
// each to the ready line. Nothing is mounted: the tree comes out of the
// image with debugfs rdump.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e_support.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/disk_image.h"

using namespace foundry;
using namespace foundry::e2e;
using namespace foundry::platform;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
constexpr const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";
constexpr int64_t kEpoch = 1700000000;

void phase(const std::string& name, double seconds) {
  std::printf("[ timing ] %-34s %7.1f s\n", name.c_str(), seconds);
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seconds_" + name, std::to_string(seconds));
}

std::string tail(const std::string& s, size_t n = 3000) { return s.size() > n ? s.substr(s.size() - n) : s; }

std::string clean(const std::string& s) {
  static const std::regex esc("\x1b\\[[0-9;?=]*[A-Za-z]");
  return std::regex_replace(s, esc, "");
}

// The stand-in node agent: what the real one prints when the node is up.
constexpr const char* kReadyUnit =
    "[Unit]\n"
    "Description=Foundry node ready (e2e stand-in for the node agent)\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "ExecStart=/bin/sh -c 'echo \"foundry-node: ready\" > /dev/ttyS0'\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

// Everything the test builds once and boots several times.
struct Built {
  std::unique_ptr<TempDir> dir;
  std::string tree, iso, qcow2, kit, key;
  std::string error;
};

Built& built() {
  static Built b;
  return b;
}

std::string prepare() {
  auto& b = built();
  b.dir = std::make_unique<TempDir>("foundry-e2e-artifacts-");
  if (b.dir->path().empty()) return "cannot make a temporary directory";
  const std::string& d = b.dir->path();

  auto t = Clock::now();
  auto image = ensure_base_image();
  if (!image) return "base image: " + image.error().to_string() + "\n" + image.error().detail();
  std::printf("%s", image->log.c_str());
  phase("base image (fixture)", seconds_since(t));

  // The tree: the base image's root file system, copied out by debugfs.
  t = Clock::now();
  RunOptions ro;
  ro.timeout = 600s;
  if (auto r = run_checked({"qemu-img", "convert", "-O", "raw", image->path, d + "/base.raw"}, ro); !r)
    return r.error().to_string();
  auto pt = run_checked({"sfdisk", "--json", d + "/base.raw"}, ro);
  if (!pt) return pt.error().to_string();
  uint64_t root_offset = 0;
  const auto table = nlohmann::json::parse(pt->out);
  for (const auto& p : table["partitiontable"]["partitions"])
    if (p["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") root_offset = p["start"].get<uint64_t>() * 512;
  if (!root_offset) return "no root partition in the base image";
  b.tree = d + "/tree";
  fs::create_directories(b.tree);
  if (auto r = run_checked({"debugfs", "-R", "rdump / " + b.tree, d + "/base.raw?offset=" + std::to_string(root_offset)},
                           ro);
      !r)
    return r.error().to_string();
  fs::remove(d + "/base.raw");
  // The stand-in agent, enabled; cloud-init off (no datasource here, and the
  // node OS applies its configuration itself).
  if (auto s = write_file_atomic(b.tree + "/etc/systemd/system/foundry-node-ready.service", kReadyUnit); !s)
    return s.error().to_string();
  fs::create_directories(b.tree + "/etc/systemd/system/multi-user.target.wants");
  std::error_code ec;
  fs::create_symlink("/etc/systemd/system/foundry-node-ready.service",
                     b.tree + "/etc/systemd/system/multi-user.target.wants/foundry-node-ready.service", ec);
  if (auto s = write_file_atomic(b.tree + "/etc/cloud/cloud-init.disabled", ""); !s) return s.error().to_string();
  phase("extract tree (debugfs rdump)", seconds_since(t));

  auto progress = [](const ProgressEvent& e) {
    if (e.kind == ProgressEvent::Kind::End)
      std::printf("  ✓ %-18s %6.1f s  %s\n", e.stage.c_str(), static_cast<double>(e.elapsed.count()) / 1000,
                  e.message.c_str());
    std::fflush(stdout);
  };
  ArtifactCommon common;
  common.seed = "e2e-artifacts";
  common.source_date_epoch = kEpoch;
  common.progress = progress;

  // One squashfs for the ISO and the recovery key, as the build does.
  t = Clock::now();
  LiveSquashfsOptions so;
  so.rootfs = b.tree;
  so.output = d + "/filesystem.squashfs";
  so.common = common;
  auto sq = write_live_squashfs(so);
  if (!sq) return "squashfs: " + sq.error().to_string() + "\n" + sq.error().detail();
  phase("write live squashfs", seconds_since(t));

  t = Clock::now();
  LiveIsoOptions io;
  io.rootfs = b.tree;
  io.output = d + "/live.iso";
  io.squashfs = sq->path;
  io.common = common;
  auto iso = write_live_iso(io);
  if (!iso) return "live ISO: " + iso.error().to_string() + "\n" + iso.error().detail();
  b.iso = iso->iso.path;
  phase("write live ISO", seconds_since(t));

  t = Clock::now();
  DiskOptions disk;
  disk.rootfs = b.tree;
  disk.output = d + "/disk-built.raw";
  disk.format = ImageFormat::Raw;
  disk.seed = common.seed;
  disk.source_date_epoch = kEpoch;
  disk.progress = progress;
  auto raw = assemble_disk(disk);
  if (!raw) return "assemble disk: " + raw.error().to_string() + "\n" + raw.error().detail();
  DiskImagesOptions di;
  di.raw_disk = disk.output;
  di.output_dir = d + "/images";
  di.formats = {ImageFormat::Qcow2};
  di.common = common;
  auto images = write_disk_images(di);
  if (!images) return "disk images: " + images.error().to_string();
  b.qcow2 = images->at(0).path;
  fs::remove(disk.output);
  phase("assemble disk + qcow2", seconds_since(t));

  t = Clock::now();
  FirecrackerKitOptions fk;
  fk.rootfs = b.tree;
  fk.output_dir = d + "/firecracker";
  fk.common = common;
  auto kit = write_firecracker_kit(fk);
  if (!kit) return "Firecracker kit: " + kit.error().to_string() + "\n" + kit.error().detail();
  b.kit = kit->dir;
  phase("write Firecracker kit", seconds_since(t));

  t = Clock::now();
  if (auto s = write_file_atomic(d + "/cluster.yaml", "name: e2e\n"); !s) return s.error().to_string();
  fs::create_directories(d + "/secrets");
  if (auto s = write_file_atomic(d + "/secrets/wg-node-1.key", "not a real key\n"); !s) return s.error().to_string();
  RecoveryKeyOptions ko;
  ko.rootfs = b.tree;
  ko.squashfs = sq->path;
  ko.output = d + "/recovery-key.img";
  ko.artifacts = {b.iso, b.qcow2, b.kit};
  ko.cluster_file = d + "/cluster.yaml";
  ko.secrets_dir = d + "/secrets";
  ko.common = common;
  auto key = write_recovery_key(ko);
  if (!key) return "recovery key: " + key.error().to_string() + "\n" + key.error().detail();
  b.key = key->image.path;
  phase("write recovery key", seconds_since(t));
  std::printf("  recovery key: %.0f MiB\n", static_cast<double>(key->image.size) / (1 << 20));
  return "";
}

class ArtifactsBoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    for (const char* tool : {"qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "debugfs", "mcopy",
                             "xorriso", "mksquashfs", "sfdisk"})
      if (find_program(tool).empty()) return;
    built().error = prepare();
  }
  static void TearDownTestSuite() { built().dir.reset(); }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the base image fixture runs mmdebstrap --mode=root";
    for (const char* tool : {"qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "debugfs", "mcopy",
                             "xorriso", "mksquashfs", "sfdisk"})
      if (find_program(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
    for (const char* f : {kOvmfCode, kOvmfVars})
      if (::access(f, R_OK) != 0) GTEST_SKIP() << f << " is missing (package ovmf)";
    ASSERT_EQ(built().error, "") << "building the artifacts failed";
  }

  // Boots a machine and waits for the ready line; `milestones` are lines
  // expected on the way (for a useful failure message and timings).
  void boot_to_ready(const std::string& name, std::vector<std::string> qemu_args,
                     const std::vector<std::string>& milestones) {
    TempDir vm("foundry-e2e-boot-");
    const std::string serial = vm / "serial.log";
    const std::string out = vm / "qemu.out";
    std::vector<std::string> argv = {"qemu-system-x86_64", "-name", "foundry-e2e-" + name, "-accel", "tcg",
                                     "-m", "1024", "-smp", "2", "-nodefaults", "-display", "none",
                                     "-monitor", "none", "-no-reboot", "-serial", "file:" + serial};
    for (auto& a : qemu_args) {
      if (a == "@VARS") {
        fs::copy_file(kOvmfVars, vm / "vars.fd");
        a = "if=pflash,format=raw,unit=1,file=" + (vm / "vars.fd");
      }
      argv.push_back(a);
    }
    auto t = Clock::now();
    BackgroundProcess qemu;
    ASSERT_EQ(qemu.start(argv, out), "");
    auto gone = [&] { return !qemu.alive(); };
    auto has = [&](const std::string& needle) { return clean(slurp(serial)).find(needle) != std::string::npos; };
    auto why = [&] {
      return fmt::format("qemu: {}\nqemu output:\n{}\nserial log (end):\n{}", qemu.status(), slurp(out),
                         tail(clean(slurp(serial))));
    };
    for (const auto& m : milestones) {
      // Generous: emulated boots take 1-2 minutes on an idle 2-core machine
      // and several on one loaded by other builds.
      ASSERT_TRUE(wait_until(600s, [&] { return has(m); }, gone)) << name << ": never saw '" << m << "'\n" << why();
      phase(name + ": " + m.substr(0, 20), seconds_since(t));
    }
    ASSERT_TRUE(wait_until(600s, [&] { return has(std::string(kNodeReadyLine)); }, gone))
        << name << ": the node never printed '" << kNodeReadyLine << "'\n" << why();
    phase(name + ": ready", seconds_since(t));
    qemu.stop();
  }
};

}  // namespace

TEST_F(ArtifactsBoot, LiveIsoBootsByBios) {
  boot_to_ready("iso-bios",
                {"-machine", "q35", "-drive", "file=" + built().iso + ",if=none,id=cd,format=raw,media=cdrom,readonly=on",
                 "-device", "ide-cd,drive=cd,bus=ide.0,bootindex=1"},
                {"Linux version", "foundry: live medium", "Welcome to"});
}

TEST_F(ArtifactsBoot, LiveIsoBootsByUefi) {
  boot_to_ready("iso-uefi",
                {"-machine", "q35", "-drive", std::string("if=pflash,format=raw,unit=0,readonly=on,file=") + kOvmfCode,
                 "-drive", "@VARS", "-drive",
                 "file=" + built().iso + ",if=none,id=cd,format=raw,media=cdrom,readonly=on", "-device",
                 "ide-cd,drive=cd,bus=ide.0,bootindex=1"},
                {"Linux version", "foundry: live medium", "Welcome to"});
}

TEST_F(ArtifactsBoot, Qcow2ImageBootsByUefi) {
  TempDir d("foundry-e2e-qcow2-");
  // An overlay: the built image stays as written.
  ASSERT_TRUE(run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", built().qcow2, "-F", "qcow2",
                           d / "overlay.qcow2"}));
  boot_to_ready("qcow2-uefi",
                {"-machine", "q35", "-drive", std::string("if=pflash,format=raw,unit=0,readonly=on,file=") + kOvmfCode,
                 "-drive", "@VARS", "-drive", "file=" + (d / "overlay.qcow2") + ",if=none,id=disk0,format=qcow2",
                 "-device", "virtio-blk-pci,drive=disk0,bootindex=1"},
                {"Linux version", "Welcome to"});
}

TEST_F(ArtifactsBoot, RecoveryKeyBootsByUefiIntoTheLiveSystem) {
  TempDir d("foundry-e2e-key-");
  ASSERT_TRUE(run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", built().key, "-F", "raw",
                           d / "overlay.qcow2"}));
  // As a USB stick: usb-storage on xHCI, found by the live layer's drivers.
  boot_to_ready("key-uefi",
                {"-machine", "q35", "-drive", std::string("if=pflash,format=raw,unit=0,readonly=on,file=") + kOvmfCode,
                 "-drive", "@VARS", "-device", "qemu-xhci,id=xhci", "-drive",
                 "file=" + (d / "overlay.qcow2") + ",if=none,id=key,format=qcow2", "-device",
                 "usb-storage,bus=xhci.0,drive=key,bootindex=1"},
                {"Linux version", "foundry: live medium", "Welcome to"});
}

TEST_F(ArtifactsBoot, FirecrackerKitBootsOnAMicroVm) {
  // The kit's own config decides kernel, initrd, root image and arguments.
  const std::string kit = built().kit;
  auto j = nlohmann::json::parse(read_file(kit + "/vm.json").value());
  const std::string kernel = kit + "/" + j["boot-source"]["kernel_image_path"].get<std::string>();
  const std::string initrd = kit + "/" + j["boot-source"]["initrd_path"].get<std::string>();
  const std::string rootfs = kit + "/" + j["drives"][0]["path_on_host"].get<std::string>();
  TempDir d("foundry-e2e-fc-");
  // A copy: a booted root file system is written to.
  ASSERT_TRUE(run_checked({"cp", "--sparse=always", rootfs, d / "rootfs.ext4"}));
  // microvm: virtio over MMIO, no PCI, devices described in ACPI tables
  // as recent Firecracker releases do on x86_64 (Debian's kernel lacks
  // CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so virtio_mmio.device= alone would
  // find nothing); the kernel is the ELF vmlinux, which QEMU starts through
  // its PVH entry point, as Firecracker does.
  boot_to_ready("firecracker-microvm",
                {"-machine", "microvm", "-kernel", kernel, "-initrd",
                 initrd, "-append",
                 // Under TCG, microvm offers the kernel nothing to measure the
                 // TSC against (no PIT reading, HPET or PM timer with ACPI) and
                 // it hangs calibrating; Firecracker's KVM guests use kvm-clock.
                 j["boot-source"]["boot_args"].get<std::string>() + " tsc_early_khz=2000000", "-drive",
                 "file=" + (d / "rootfs.ext4") + ",if=none,id=root,format=raw", "-device",
                 "virtio-blk-device,drive=root"},
                {"Linux version", "Welcome to"});
}
