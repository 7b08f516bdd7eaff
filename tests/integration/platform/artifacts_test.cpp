// The artifact writers against the real tools (mksquashfs, xorriso, mtools,
// mkfs.ext4, debugfs, qemu-img) on a small hand-made tree with a synthetic
// bzImage and fake modules, checked with independent readers (xorriso's
// reports, blkid, sfdisk, debugfs, qemu-img info, Python's jsonschema), and
// each writer run twice to compare bytes. Nothing is mounted; seconds.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/disk_image.h"

using namespace foundry;
using namespace foundry::platform;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kEpoch = 1700000000;
constexpr const char* kVersion = "6.1.0-99-test";

std::string bytes(size_t n, unsigned seed) {
  std::string s(n, '\0');
  unsigned x = seed;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

void put(const std::string& path, const std::string& data, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// A minimal bzImage: boot header with payload fields, and an xz payload
// (made by xz(1), as the kernel build does) followed by the size.
std::string make_bzimage(const std::string& elf) {
  RunOptions ro;
  ro.stdin_data = elf;
  auto xz = run_checked({"xz", "-c", "--format=xz", "--check=crc32"}, ro);
  if (!xz) return "";
  std::string payload = xz->out;
  payload.resize(payload.size() + 4);
  put_le32(payload, payload.size() - 4, static_cast<uint32_t>(elf.size()));
  std::string bz(2 * 512, '\0');  // boot sector + 1 setup sector
  bz[0x1f1] = 1;
  bz.replace(0x202, 4, "HdrS");
  bz[0x206] = 0x0f;
  bz[0x207] = 0x02;
  const uint32_t pm_offset = 0x200;  // payload inside the protected-mode part
  put_le32(bz, 0x248, pm_offset);
  put_le32(bz, 0x24c, static_cast<uint32_t>(payload.size()));
  bz += std::string(pm_offset, 'P');
  bz += payload;
  bz += std::string(100, 'T');
  return bz;
}

std::string fake_elf() { return std::string("\x7f" "ELF\x02\x01\x01", 7) + bytes(200000, 7); }

class Artifacts : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"mksquashfs", "xorriso", "mformat", "mcopy", "mkfs.ext4", "debugfs", "qemu-img", "xz",
                             "blkid", "sfdisk", "python3"})
      if (find_program(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
    for (const char* f : {"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/ISOLINUX/isohdpfx.bin",
                          "/usr/lib/syslinux/modules/bios/ldlinux.c32"})
      if (::access(f, R_OK) != 0) GTEST_SKIP() << f << " is missing (packages isolinux, syslinux-common)";
    std::string tmpl = fs::temp_directory_path().string() + "/foundry-artifacts-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    tree_ = dir_ + "/tree";
    out_ = dir_ + "/out";
    fs::create_directories(out_);
    const std::string v = kVersion;
    const std::string bz = make_bzimage(fake_elf());
    ASSERT_FALSE(bz.empty());
    put(tree_ + "/boot/vmlinuz-" + v, bz);
    put(tree_ + "/boot/initrd.img-" + v, bytes(300000, 2));
    put(tree_ + "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "MZ" + bytes(90000, 3));
    put(tree_ + "/var/lib/dpkg/status",
        "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n\n");
    put(tree_ + "/etc/fstab", "LABEL=root / ext4 defaults 0 1\n");
    put(tree_ + "/etc/hostname", "localhost\n");
    fs::create_symlink("usr/lib", tree_ + "/lib");
    // An absolute link to a path that exists on the build machine: it must
    // stay a name inside the tree (time fixing once followed such links).
    fs::create_directories(tree_ + "/etc/alternatives");
    fs::create_symlink("/bin/sh", tree_ + "/etc/alternatives/pager");
    // Modules: loop is built in; isofs needs cdrom; virtio_mmio needs
    // virtio and virtio_ring; ext4 needs jbd2, mbcache and crc16.
    const std::string md = tree_ + "/usr/lib/modules/" + v;
    put(md + "/modules.builtin", "kernel/drivers/block/loop.ko\n");
    std::string dep;
    auto mod = [&](const std::string& path, const std::string& deps) {
      dep += path + ":" + (deps.empty() ? "" : " " + deps) + "\n";
      put(md + "/" + path, "\x7f" "ELF module " + path);
    };
    mod("kernel/drivers/cdrom/cdrom.ko", "");
    mod("kernel/fs/isofs/isofs.ko", "kernel/drivers/cdrom/cdrom.ko");
    mod("kernel/fs/squashfs/squashfs.ko", "");
    mod("kernel/fs/overlayfs/overlay.ko", "");
    mod("kernel/drivers/virtio/virtio.ko", "");
    mod("kernel/drivers/virtio/virtio_ring.ko", "");
    mod("kernel/drivers/virtio/virtio_mmio.ko", "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko");
    mod("kernel/drivers/block/virtio_blk.ko", "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko");
    mod("kernel/lib/crc16.ko", "");
    mod("kernel/fs/mbcache.ko", "");
    mod("kernel/fs/jbd2/jbd2.ko", "");
    mod("kernel/fs/ext4/ext4.ko", "kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko");
    mod("kernel/drivers/scsi/sr_mod.ko", "kernel/drivers/cdrom/cdrom.ko");
    put(md + "/modules.dep", dep);
    fs::create_directories(tree_ + "/var/empty");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  ArtifactCommon common() {
    ArtifactCommon c;
    c.seed = "test-seed";
    c.source_date_epoch = kEpoch;
    c.progress = [this](const ProgressEvent& e) {
      if (e.kind == ProgressEvent::Kind::End) stages_.push_back(e.stage);
    };
    return c;
  }

  LiveIsoOptions iso_options(const std::string& name) {
    LiveIsoOptions o;
    o.rootfs = tree_;
    o.output = out_ + "/" + name;
    o.common = common();
    o.compression_level = 1;
    return o;
  }

  std::string raw_disk(const std::string& name) {
    DiskOptions d;
    d.rootfs = tree_copy();
    d.output = out_ + "/" + name;
    d.format = ImageFormat::Raw;
    d.size_bytes = 200ull << 20;
    d.esp_size_bytes = 64ull << 20;
    d.seed = "test-seed";
    d.source_date_epoch = kEpoch;
    auto r = assemble_disk(d);
    EXPECT_TRUE(r) << r.error().to_string() << "\n" << r.error().detail();
    return d.output;
  }

  // assemble_disk rewrites the tree's fstab; the other writers must not
  // depend on that, so the disk gets its own copy.
  std::string tree_copy() {
    std::string c = dir_ + "/tree-for-disk";
    if (!fs::exists(c)) fs::copy(tree_, c, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    return c;
  }

  std::vector<std::string> entries(const std::string& d) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

  std::string dir_, tree_, out_;
  std::vector<std::string> stages_;
};

bool same_bytes(const std::string& a, const std::string& b) {
  auto r = run({"cmp", "-s", a, b});
  return r && r->exit_code == 0;
}

// The first differing bytes (offset, octal values), for a failure message.
std::string first_differences(const std::string& a, const std::string& b) {
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  auto r = run({"sh", "-c", "cmp -l \"$0\" \"$1\" | head -n 8", a, b}, ro);
  return r ? "first differences (offset, octal bytes):\n" + r->out : "";
}

std::string blkid_value(const std::string& image, uint64_t offset, const std::string& tag) {
  auto r = run({"blkid", "-p", "-O", std::to_string(offset), "-s", tag, "-o", "value", image});
  if (!r || !r->ok()) return "";
  return r->out.substr(0, r->out.find('\n'));
}

// A file from an ISO, read by xorriso (no mount).
std::string iso_file(const std::string& iso, const std::string& path, const std::string& scratch) {
  std::string dest = scratch + "/extracted-" + std::to_string(std::hash<std::string>{}(path));
  auto r = run({"xorriso", "-osirrox", "on", "-indev", iso, "-extract", path, dest});
  if (!r || !r->ok()) return "";
  auto s = read_file(dest).value_or("");
  fs::remove(dest);
  return s;
}

std::string debugfs_cat(const std::string& image, uint64_t offset, const std::string& path) {
  auto r = run({"debugfs", "-R", "cat " + path, offset ? image + "?offset=" + std::to_string(offset) : image});
  return r && r->ok() ? r->out : "";
}

}  // namespace

TEST_F(Artifacts, InitramfsLayerHasBootScriptAndModulesInDependencyOrder) {
  auto layer = make_initramfs_layer(tree_, kVersion, {"loop", "isofs", "virtio_mmio", "ext4"}, {"isofs"}, kEpoch);
  ASSERT_TRUE(layer) << layer.error().to_string();
  // loop is built in; dependencies come before what needs them, in the
  // order modprobe loads them (modules.dep lists them last-loaded first).
  EXPECT_EQ(layer->modules, (std::vector<std::string>{"00-cdrom.ko", "01-isofs.ko", "02-virtio_ring.ko", "03-virtio.ko",
                                                      "04-virtio_mmio.ko", "05-jbd2.ko", "06-mbcache.ko",
                                                      "07-crc16.ko", "08-ext4.ko"}));
  // The archive as cpio(1) reads it (bsdtar understands newc).
  ASSERT_TRUE(write_file_atomic(dir_ + "/layer.cpio", layer->cpio));
  auto list = run_checked({"bsdtar", "-tvf", dir_ + "/layer.cpio"});
  ASSERT_TRUE(list) << list.error().to_string();
  EXPECT_NE(list->out.find("scripts/foundry"), std::string::npos) << list->out;
  EXPECT_NE(list->out.find("foundry/modules/04-virtio_mmio.ko"), std::string::npos) << list->out;
  EXPECT_EQ(layer->cpio.size() % 512, 0u);
  auto x = run_checked({"bsdtar", "-xOf", dir_ + "/layer.cpio", "foundry/modules.order"});
  ASSERT_TRUE(x);
  EXPECT_EQ(x->out.substr(0, 27), "cdrom 00-cdrom.ko\nisofs 01-");
  // The boot script is plain POSIX sh (klibc's sh is stricter than dash).
  auto sh = run({"sh", "-n", "-c", initramfs_boot_script()});
  ASSERT_TRUE(sh);
  EXPECT_TRUE(sh->ok()) << sh->err;

  // A required module the kernel lacks fails, naming it.
  auto missing = make_initramfs_layer(tree_, kVersion, {"nosuchfs"}, {"nosuchfs"}, kEpoch);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("nosuchfs"), std::string::npos);
}

TEST_F(Artifacts, ExtractsTheElfKernelFromABzImage) {
  auto bz = read_file(tree_ + "/boot/vmlinuz-" + std::string(kVersion));
  ASSERT_TRUE(bz);
  auto elf = extract_vmlinux(*bz);
  ASSERT_TRUE(elf) << elf.error().to_string();
  EXPECT_EQ(*elf, fake_elf());
  auto not_bz = extract_vmlinux(std::string(4096, 'x'));
  ASSERT_FALSE(not_bz);
  EXPECT_NE(not_bz.error().to_string().find("HdrS"), std::string::npos);
  // A damaged payload is reported, not written out.
  std::string broken = *bz;
  broken[2 * 512 + 0x200 + 40] ^= 0x55;
  EXPECT_FALSE(extract_vmlinux(broken));
}

TEST_F(Artifacts, LiveIsoBootsByBiosAndUefiAndIsReproducible) {
  auto o = iso_options("live.iso");
  auto info = write_live_iso(o);
  ASSERT_TRUE(info) << info.error().to_string() << "\n" << info.error().detail();
  EXPECT_EQ(stages_, (std::vector<std::string>{"live-boot", "squashfs", "efi-image", "iso"}));
  EXPECT_EQ(info->volume_id, default_volume_id("test-seed"));
  EXPECT_EQ(entries(out_), std::vector<std::string>{"live.iso"}) << "scratch files left behind";
  EXPECT_EQ(blkid_value(o.output, 0, "TYPE"), "iso9660");
  EXPECT_EQ(blkid_value(o.output, 0, "LABEL"), info->volume_id);

  // Both El Torito entries: BIOS no-emulation isolinux and the UEFI image.
  auto et = run_checked({"xorriso", "-indev", o.output, "-report_el_torito", "plain"});
  ASSERT_TRUE(et) << et.error().to_string();
  EXPECT_NE(et->out.find("BIOS"), std::string::npos) << et->out;
  EXPECT_NE(et->out.find("UEFI"), std::string::npos) << et->out;
  EXPECT_NE(et->out.find("/isolinux/isolinux.bin"), std::string::npos) << et->out;
  EXPECT_NE(et->out.find("/boot/efi.img"), std::string::npos) << et->out;
  // Hybrid: an MBR (isohdpfx) and a GPT with the EFI partition, for a USB key.
  auto sa = run_checked({"xorriso", "-indev", o.output, "-report_system_area", "plain"});
  ASSERT_TRUE(sa);
  EXPECT_NE(sa->out.find("isohybrid"), std::string::npos) << sa->out;
  EXPECT_NE(sa->out.find("GPT"), std::string::npos) << sa->out;

  auto cfg = iso_file(o.output, "/isolinux/isolinux.cfg", dir_);
  EXPECT_NE(cfg.find("APPEND boot=foundry foundry.live=" + info->volume_id), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("SERIAL 0 115200"), std::string::npos);
  auto initrd = iso_file(o.output, "/live/initrd.img", dir_);
  auto original = read_file(tree_ + "/boot/initrd.img-" + std::string(kVersion));
  ASSERT_TRUE(original);
  ASSERT_GT(initrd.size(), original->size());
  EXPECT_EQ(initrd.substr(0, original->size()), *original) << "the tree's initramfs must come first, unchanged";
  EXPECT_NE(initrd.find("scripts/foundry"), std::string::npos);
  EXPECT_EQ(iso_file(o.output, "/live/vmlinuz", dir_), read_file(tree_ + "/boot/vmlinuz-" + std::string(kVersion)).value());
  // The EFI image is a FAT file system with systemd-boot's entry.
  auto efi = iso_file(o.output, "/boot/efi.img", dir_);
  ASSERT_TRUE(write_file_atomic(dir_ + "/efi.img", efi));
  auto entry = run_checked({"mtype", "-i", dir_ + "/efi.img", "::/loader/entries/foundry.conf"});
  ASSERT_TRUE(entry) << entry.error().to_string();
  EXPECT_NE(entry->out.find("options boot=foundry foundry.live=" + info->volume_id), std::string::npos) << entry->out;
  // The squashfs holds the tree.
  auto sq = iso_file(o.output, "/live/filesystem.squashfs", dir_);
  ASSERT_TRUE(write_file_atomic(dir_ + "/fs.squashfs", sq));
  auto ls = run_checked({"unsquashfs", "-l", dir_ + "/fs.squashfs"});
  ASSERT_TRUE(ls) << ls.error().to_string();
  EXPECT_NE(ls->out.find("squashfs-root/etc/hostname"), std::string::npos) << ls->out;

  // Reproducible: a second build is the same file, byte for byte.
  auto o2 = iso_options("again.iso");
  auto info2 = write_live_iso(o2);
  ASSERT_TRUE(info2) << info2.error().to_string();
  EXPECT_TRUE(same_bytes(o.output, o2.output)) << "two builds of the same tree differ\n"
                                                << first_differences(o.output, o2.output);
}

TEST_F(Artifacts, LiveIsoFailsCleanly) {
  auto o = iso_options("bad.iso");
  o.volume_id = "lower case";
  auto r = write_live_iso(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  o = iso_options("bad.iso");
  o.squashfs = dir_ + "/does-not-exist.squashfs";
  EXPECT_FALSE(write_live_iso(o));
  EXPECT_EQ(entries(out_), std::vector<std::string>{}) << "a failed build left files";
}

TEST_F(Artifacts, DiskImagesInEveryFormatAreReproducible) {
  const std::string raw = raw_disk("built.raw");
  DiskImagesOptions o;
  o.raw_disk = raw;
  o.output_dir = out_ + "/images";
  o.common = common();
  auto files = write_disk_images(o);
  ASSERT_TRUE(files) << files.error().to_string() << "\n" << files.error().detail();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ(entries(o.output_dir), (std::vector<std::string>{"disk.qcow2", "disk.raw", "disk.vhd"}));
  const uint64_t size = fs::file_size(raw);
  // qemu-img probes a VHD by the footer copy at its start, which only
  // dynamic VHDs have; a fixed VHD (what Azure takes) keeps its one footer
  // at the end, so probing calls it raw (one sector longer than the disk)
  // and the format must be named, as every tool that imports one does.
  {
    auto r = run_checked({"qemu-img", "info", "--output=json", o.output_dir + "/disk.vhd"});
    ASSERT_TRUE(r) << r.error().to_string();
    auto j = nlohmann::json::parse(r->out);
    EXPECT_EQ(j["format"], "raw");
    EXPECT_EQ(j["virtual-size"].get<uint64_t>(), size + 512);
  }
  for (const auto& [name, format] : {std::pair{"disk.qcow2", "qcow2"}, std::pair{"disk.raw", "raw"},
                                     std::pair{"disk.vhd", "vpc"}}) {
    // qcow2 and raw as probed; the VHD opened as vpc (see above).
    std::vector<std::string> argv = {"qemu-img", "info", "--output=json", o.output_dir + "/" + name};
    if (std::string(format) == "vpc") argv.insert(argv.begin() + 2, {"-f", "vpc"});
    auto r = run_checked(argv);
    ASSERT_TRUE(r) << r.error().to_string();
    auto j = nlohmann::json::parse(r->out);
    EXPECT_EQ(j["format"], format) << name;
    EXPECT_EQ(j["virtual-size"].get<uint64_t>(), size) << name << ": virtual size must equal the raw disk";
  }
  // A fixed VHD is the raw disk plus a 512-byte footer.
  EXPECT_EQ(fs::file_size(o.output_dir + "/disk.vhd"), size + 512);
  auto cmp = run_checked({"qemu-img", "compare", "-f", "raw", "-F", "vpc", raw, o.output_dir + "/disk.vhd"});
  EXPECT_TRUE(cmp) << (cmp ? "" : cmp.error().to_string());
  auto cmp2 = run_checked({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, o.output_dir + "/disk.qcow2"});
  EXPECT_TRUE(cmp2) << (cmp2 ? "" : cmp2.error().to_string());

  DiskImagesOptions o2 = o;
  o2.output_dir = out_ + "/images2";
  auto again = write_disk_images(o2);
  ASSERT_TRUE(again) << again.error().to_string();
  for (const char* n : {"disk.qcow2", "disk.raw", "disk.vhd"})
    EXPECT_TRUE(same_bytes(o.output_dir + "/" + n, o2.output_dir + "/" + n))
        << n << " differs between builds\n" << first_differences(o.output_dir + "/" + n, o2.output_dir + "/" + n);

  // Not a whole MiB: refused before anything is written.
  put(dir_ + "/odd.raw", std::string(kMiB + 512, '\0'));
  DiskImagesOptions bad = o;
  bad.raw_disk = dir_ + "/odd.raw";
  bad.output_dir = out_ + "/odd";
  auto r = write_disk_images(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
}

TEST_F(Artifacts, VhdFooterNormalization) {
  // A footer as qemu writes it, with a "random" UUID and "current" time.
  std::string f(512, '\0');
  f.replace(0, 8, "conectix");
  f[24] = 0x2e;
  f[68] = 0x42;
  put(dir_ + "/x.vhd", std::string(1024, 'd') + f);
  auto uuid = derive_guid("s", "vhd-unique-id");
  ASSERT_TRUE(normalize_vhd_footer(dir_ + "/x.vhd", 946684800 + 0x01020304, uuid));
  auto s = read_file(dir_ + "/x.vhd").value();
  std::string foot = s.substr(1024);
  EXPECT_EQ(s.substr(0, 1024), std::string(1024, 'd'));
  EXPECT_EQ(foot.substr(24, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(foot.substr(68, 16), std::string(uuid.bytes.begin(), uuid.bytes.end()));
  uint32_t sum = 0;
  for (size_t i = 0; i < 512; ++i)
    if (i < 64 || i >= 68) sum += static_cast<uint8_t>(foot[i]);
  uint32_t stored = static_cast<uint32_t>(static_cast<uint8_t>(foot[64])) << 24 |
                    static_cast<uint32_t>(static_cast<uint8_t>(foot[65])) << 16 |
                    static_cast<uint32_t>(static_cast<uint8_t>(foot[66])) << 8 | static_cast<uint8_t>(foot[67]);
  EXPECT_EQ(stored, ~sum);
  put(dir_ + "/not.vhd", std::string(1024, 'x'));
  EXPECT_FALSE(normalize_vhd_footer(dir_ + "/not.vhd", kEpoch, uuid));
}

TEST_F(Artifacts, FirecrackerKitValidatesAgainstTheApiSchema) {
  FirecrackerKitOptions o;
  o.rootfs = tree_;
  o.output_dir = out_ + "/firecracker";
  o.common = common();
  FirecrackerVm a;
  a.name = "node-1";
  a.vcpus = 2;
  a.memory_mib = 1024;
  a.tap = "vm0a000001";
  a.guest_mac = "be:ef:0a:00:00:01";
  FirecrackerVm b = a;
  b.name = "node-2";
  b.tap.clear();  // no network
  o.vms = {a, b};
  auto info = write_firecracker_kit(o);
  ASSERT_TRUE(info) << info.error().to_string() << "\n" << info.error().detail();
  EXPECT_EQ(entries(o.output_dir),
            (std::vector<std::string>{"initrd.img", "node-1.json", "node-2.json", "rootfs.ext4", "vmlinux"}));
  EXPECT_EQ(entries(out_), std::vector<std::string>{"firecracker"}) << "scratch left behind";
  EXPECT_EQ(read_file(info->vmlinux).value(), fake_elf());

  // Every config validates against FullVmConfiguration (strict: no unknown
  // keys) and names only files that exist in the kit.
  // The published schema is read where the workplace keeps it (DESIGN.md: not
  // copied into the repository).
  const std::string schema = std::string(FOUNDRY_SOURCE_DIR) + "/../shared/data/firecracker/firecracker.yaml";
  if (!std::filesystem::exists(schema))
    GTEST_SKIP() << "Firecracker's API schema is not at " << schema << " (../shared/data beside the checkout)";
  const std::string validator =
      std::string(FOUNDRY_SOURCE_DIR) + "/tests/integration/platform/validate_firecracker_config.py";
  auto py = run({"python3", "-c", "import jsonschema, yaml"});
  if (!py || !py->ok()) GTEST_SKIP() << "python3-jsonschema / python3-yaml are missing (scripts/install-deps)";
  for (const auto& c : info->configs) {
    auto v = run({"python3", validator, schema, c});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->exit_code, 0) << c << ":\n" << v->out << v->err;
    auto j = nlohmann::json::parse(read_file(c).value());
    std::vector<std::string> paths = {j["boot-source"]["kernel_image_path"], j["boot-source"]["initrd_path"]};
    for (const auto& d : j["drives"]) paths.push_back(d["path_on_host"]);
    for (const auto& p : paths) {
      EXPECT_FALSE(fs::path(p).is_absolute()) << p << ": the kit must be relocatable";
      EXPECT_TRUE(fs::is_regular_file(info->dir + "/" + p)) << p << " named by " << c << " is not in the kit";
    }
    std::string args = j["boot-source"]["boot_args"];
    for (const char* need : {"console=ttyS0", "reboot=k", "panic=1", "boot=foundry"})
      EXPECT_NE(args.find(need), std::string::npos) << need << " missing from " << args;
    EXPECT_EQ(j["drives"][0]["is_root_device"], true);
  }
  auto j1 = nlohmann::json::parse(read_file(info->configs[0]).value());
  EXPECT_EQ(j1["network-interfaces"][0]["host_dev_name"], "vm0a000001");
  EXPECT_EQ(j1["network-interfaces"][0]["guest_mac"], "be:ef:0a:00:00:01");
  EXPECT_EQ(j1["machine-config"]["vcpu_count"], 2);
  auto j2 = nlohmann::json::parse(read_file(info->configs[1]).value());
  EXPECT_TRUE(j2["network-interfaces"].empty());

  // The validator is not a rubber stamp: broken configs fail.
  auto broken = [&](const std::function<void(nlohmann::json&)>& change) {
    auto j = nlohmann::json::parse(read_file(info->configs[0]).value());
    change(j);
    EXPECT_TRUE(write_file_atomic(dir_ + "/broken.json", j.dump()));
    auto v = run({"python3", validator, schema, dir_ + "/broken.json"});
    return v && v->exit_code == 1;
  };
  EXPECT_TRUE(broken([](auto& j) { j["machine-config"]["vcpu_count"] = "two"; }));
  EXPECT_TRUE(broken([](auto& j) { j["boot-source"].erase("kernel_image_path"); }));
  EXPECT_TRUE(broken([](auto& j) { j["boot_source"] = j["boot-source"]; }));
  EXPECT_TRUE(broken([](auto& j) { j["drives"][0]["cache_type"] = "Sometimes"; }));
  EXPECT_TRUE(broken([](auto& j) { j["network-interfaces"][0].erase("host_dev_name"); }));

  // The root image: ext4 labelled root whose fstab names Firecracker's drive.
  EXPECT_EQ(blkid_value(info->rootfs_image, 0, "TYPE"), "ext4");
  EXPECT_EQ(blkid_value(info->rootfs_image, 0, "LABEL"), "root");
  EXPECT_NE(debugfs_cat(info->rootfs_image, 0, "/etc/fstab").find("/dev/vda\t/\text4"), std::string::npos);
  EXPECT_EQ(debugfs_cat(info->rootfs_image, 0, "/etc/hostname"), "localhost\n");
  auto fsck = run({"e2fsck", "-fn", info->rootfs_image});
  ASSERT_TRUE(fsck);
  EXPECT_EQ(fsck->exit_code, 0) << fsck->out << fsck->err;
  EXPECT_EQ(read_file(tree_ + "/etc/fstab").value(), "LABEL=root / ext4 defaults 0 1\n") << "the tree was changed";
  auto initrd = read_file(info->initrd).value();
  EXPECT_NE(initrd.find("virtio_mmio.ko"), std::string::npos);

  // Reproducible, and an existing kit is never merged into.
  FirecrackerKitOptions o2 = o;
  o2.output_dir = out_ + "/firecracker2";
  auto again = write_firecracker_kit(o2);
  ASSERT_TRUE(again) << again.error().to_string();
  for (const auto& n : entries(o.output_dir))
    EXPECT_TRUE(same_bytes(o.output_dir + "/" + n, o2.output_dir + "/" + n))
        << n << " differs between builds\n" << first_differences(o.output_dir + "/" + n, o2.output_dir + "/" + n);
  auto exists = write_firecracker_kit(o);
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().kind(), ErrorKind::Validation);
}

TEST_F(Artifacts, RecoveryKeyHoldsEverythingWithPrivateSecrets) {
  // Artifacts: an ISO and a Firecracker kit (a directory).
  auto iso = write_live_iso(iso_options("live.iso"));
  ASSERT_TRUE(iso) << iso.error().to_string();
  FirecrackerKitOptions fk;
  fk.rootfs = tree_;
  fk.output_dir = out_ + "/firecracker";
  fk.common = common();
  auto kit = write_firecracker_kit(fk);
  ASSERT_TRUE(kit) << kit.error().to_string();
  put(dir_ + "/cluster.yaml", "name: test\n");
  put(dir_ + "/secrets/ca/ca.key", "PRIVATE CA KEY\n", 0644);  // deliberately readable at the source
  put(dir_ + "/secrets/wireguard/node-1.key", "wg key\n", 0640);

  RecoveryKeyOptions o;
  o.rootfs = tree_;
  o.output = dir_ + "/key.img";
  o.artifacts = {iso->iso.path, kit->dir};
  o.cluster_file = dir_ + "/cluster.yaml";
  o.secrets_dir = dir_ + "/secrets";
  o.common = common();
  o.compression_level = 1;
  auto info = write_recovery_key(o);
  ASSERT_TRUE(info) << info.error().to_string() << "\n" << info.error().detail();
  for (const char* want : {"README.txt", "artifacts/", "artifacts/live.iso", "artifacts/firecracker/",
                           "artifacts/firecracker/vmlinux", "cluster.yaml", "live/filesystem.squashfs", "secrets/",
                           "secrets/ca/ca.key", "secrets/wireguard/node-1.key"})
    EXPECT_NE(std::find(info->contents.begin(), info->contents.end(), want), info->contents.end()) << want;

  auto verify = run({"sfdisk", "--verify", o.output});
  ASSERT_TRUE(verify);
  EXPECT_NE(verify->out.find("No errors detected"), std::string::npos) << verify->out << verify->err;
  const auto& esp = info->layout.partitions.at(0);
  const auto& data = info->layout.partitions.at(1);
  EXPECT_EQ(blkid_value(o.output, esp.offset_bytes(), "TYPE"), "vfat");
  EXPECT_EQ(blkid_value(o.output, data.offset_bytes(), "TYPE"), "ext4");
  EXPECT_EQ(blkid_value(o.output, data.offset_bytes(), "LABEL"), "FOUNDRY_KEY");
  auto entry = run_checked({"mtype", "-i", o.output + "@@" + std::to_string(esp.offset_bytes()),
                            "::/loader/entries/foundry.conf"});
  ASSERT_TRUE(entry) << entry.error().to_string();
  EXPECT_NE(entry->out.find("foundry.live=FOUNDRY_KEY"), std::string::npos) << entry->out;

  const std::string part = o.output + "?offset=" + std::to_string(data.offset_bytes());
  EXPECT_EQ(debugfs_cat(o.output, data.offset_bytes(), "/cluster.yaml"), "name: test\n");
  EXPECT_EQ(debugfs_cat(o.output, data.offset_bytes(), "/secrets/ca/ca.key"), "PRIVATE CA KEY\n");
  auto mode_of = [&](const std::string& path) {
    auto r = run({"debugfs", "-R", "stat " + path, part});
    if (!r || !r->ok()) return std::string("?");
    auto m = r->out.find("Mode:");
    return m == std::string::npos ? std::string("?") : r->out.substr(m + 7, 4);
  };
  EXPECT_EQ(mode_of("/secrets"), "0700");
  EXPECT_EQ(mode_of("/secrets/ca"), "0700");
  EXPECT_EQ(mode_of("/secrets/ca/ca.key"), "0600");
  EXPECT_EQ(mode_of("/secrets/wireguard/node-1.key"), "0600");
  EXPECT_EQ(debugfs_cat(o.output, data.offset_bytes(), "/artifacts/live.iso").size(), iso->iso.size);
  // The source secrets are untouched.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/secrets/ca/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  RecoveryKeyOptions o2 = o;
  o2.output = dir_ + "/key2.img";
  auto again = write_recovery_key(o2);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_TRUE(same_bytes(o.output, o2.output)) << "two builds of the key differ\n"
                                                << first_differences(o.output, o2.output);

  RecoveryKeyOptions bad = o;
  bad.output = dir_ + "/bad.img";
  bad.cluster_file = dir_ + "/missing.yaml";
  EXPECT_FALSE(write_recovery_key(bad));
  EXPECT_FALSE(fs::exists(bad.output));
}
