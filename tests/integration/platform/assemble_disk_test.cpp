// assemble_disk against the real tools (mtools, mkfs.ext4, debugfs,
// qemu-img) on a small hand-made tree, checked with independent readers:
// sfdisk and blkid for the partition table and file systems, mtools and
// debugfs for the files inside. No root needed and nothing is mounted.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/platform/disk_image.h"

using namespace foundry;
using namespace foundry::platform;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kEpoch = 1700000000;
constexpr const char* kKernelVersion = "6.1.0-99-test";

std::string bytes(size_t n, unsigned seed) {
  std::string s(n, '\0');
  unsigned x = seed;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

void put(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

class AssembleDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"mformat", "mcopy", "mkfs.ext4", "debugfs", "sfdisk", "blkid", "qemu-img", "e2fsck"})
      if (find_program(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
    std::string tmpl = fs::temp_directory_path().string() + "/foundry-disk-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    tree_ = dir_ + "/tree";
    out_ = dir_ + "/out";
    fs::create_directories(out_);
    put(tree_ + "/boot/vmlinuz-" + kKernelVersion, bytes(300000, 1));
    put(tree_ + "/boot/initrd.img-" + kKernelVersion, bytes(500000, 2));
    put(tree_ + "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "MZ" + bytes(90000, 3));
    put(tree_ + "/var/lib/dpkg/status",
        "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n\n");
    put(tree_ + "/etc/hostname", "localhost\n");
    put(tree_ + "/etc/with space", "x\n");
    // Names systemd and packages really use: a backslash escape, a quote.
    put(tree_ + "/usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice", "[Unit]\n");
    put(tree_ + "/etc/say \"hi\"", "x\n");
    fs::create_symlink("hostname", tree_ + "/etc/link");
    fs::create_directories(tree_ + "/var/empty");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  DiskOptions options(const std::string& name, ImageFormat f = ImageFormat::Raw) {
    DiskOptions o;
    o.rootfs = tree_;
    o.output = out_ + "/" + name;
    o.format = f;
    o.size_bytes = 256ull << 20;
    o.esp_size_bytes = 64ull << 20;
    o.seed = "test-seed";
    o.source_date_epoch = kEpoch;
    o.title = "Foundry test";
    return o;
  }

  // Entries of out_ other than the given outputs (leftover scratch files).
  std::vector<std::string> leftovers(const std::vector<std::string>& expected = {}) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(out_)) {
      auto n = e.path().filename().string();
      if (std::find(expected.begin(), expected.end(), n) == expected.end()) v.push_back(n);
    }
    return v;
  }

  std::string dir_, tree_, out_;
};

// cmp stops at the first difference and is several times faster than
// hashing both images on a busy machine.
bool same_bytes(const std::string& a, const std::string& b) {
  auto r = run({"cmp", "-s", a, b});
  return r && r->exit_code == 0;
}

std::string blkid_value(const std::string& image, uint64_t offset, const std::string& tag) {
  auto r = run({"blkid", "-p", "-O", std::to_string(offset), "-s", tag, "-o", "value", image});
  if (!r || !r->ok()) return "";
  return r->out.substr(0, r->out.find('\n'));
}

}  // namespace

TEST_F(AssembleDisk, MakesAValidGptDiskWithBothFileSystems) {
  std::vector<std::string> stages;
  auto o = options("disk.raw");
  o.progress = [&](const ProgressEvent& e) {
    if (e.kind == ProgressEvent::Kind::End) stages.push_back(e.stage);
  };
  auto info = assemble_disk(o);
  ASSERT_TRUE(info) << info.error().to_string() << "\n" << info.error().detail();
  EXPECT_EQ(stages, (std::vector<std::string>{"layout", "esp", "root-fs", "times", "gpt", "convert"}));
  EXPECT_EQ(info->kernel_version, kKernelVersion);
  EXPECT_EQ(fs::file_size(o.output), o.size_bytes);
  EXPECT_EQ(leftovers({"disk.raw"}), std::vector<std::string>{});
  const auto ids = DiskIdentity::derive("test-seed");

  // The partition table, as util-linux reads it.
  auto verify = run({"sfdisk", "--verify", o.output});
  ASSERT_TRUE(verify);
  EXPECT_TRUE(verify->ok()) << verify->out << verify->err;
  EXPECT_NE(verify->out.find("No errors detected"), std::string::npos) << verify->out;
  auto dump = run_checked({"sfdisk", "--json", o.output});
  ASSERT_TRUE(dump);
  auto pt = nlohmann::json::parse(dump->out)["partitiontable"];
  EXPECT_EQ(pt["label"], "gpt");
  EXPECT_EQ(pt["id"], ids.disk.to_string().size() ? [&] {
    std::string u = ids.disk.to_string();
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
  }() : "");
  ASSERT_EQ(pt["partitions"].size(), 2u);
  auto upper = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  EXPECT_EQ(pt["partitions"][0]["type"], upper(std::string(gpt_type::kEsp)));
  EXPECT_EQ(pt["partitions"][0]["uuid"], upper(ids.esp_partition.to_string()));
  EXPECT_EQ(pt["partitions"][0]["start"], 2048);
  EXPECT_EQ(pt["partitions"][0]["size"], 64 * 2048);
  EXPECT_EQ(pt["partitions"][0]["name"], "ESP");
  EXPECT_EQ(pt["partitions"][1]["type"], upper(std::string(gpt_type::kLinuxRootX86_64)));
  EXPECT_EQ(pt["partitions"][1]["uuid"], upper(ids.root_partition.to_string()));
  EXPECT_EQ(pt["partitions"][1]["name"], "root");

  // The file systems, as blkid probes them at the partition offsets.
  const uint64_t esp_off = info->layout.partitions[0].offset_bytes();
  const uint64_t root_off = info->layout.partitions[1].offset_bytes();
  EXPECT_EQ(blkid_value(o.output, esp_off, "TYPE"), "vfat");
  EXPECT_EQ(blkid_value(o.output, esp_off, "VERSION"), "FAT32");
  EXPECT_EQ(blkid_value(o.output, esp_off, "UUID"), fat_serial_to_string(ids.esp_serial));
  EXPECT_EQ(blkid_value(o.output, root_off, "TYPE"), "ext4");
  EXPECT_EQ(blkid_value(o.output, root_off, "UUID"), ids.root_fs.to_string());
  EXPECT_EQ(blkid_value(o.output, root_off, "LABEL"), "root");

  // ESP contents, read back with mtools.
  const std::string esp = o.output + "@@" + std::to_string(esp_off);
  auto mtype = [&](const std::string& p) {
    RunOptions ro;
    ro.extra_env = {"MTOOLS_SKIP_CHECK=1"};
    auto r = run_checked({"mtype", "-i", esp, "::" + p}, ro);
    return r ? r->out : std::string("<" + r.error().to_string() + ">");
  };
  EXPECT_EQ(mtype("/EFI/BOOT/BOOTX64.EFI"), read_file(tree_ + "/usr/lib/systemd/boot/efi/systemd-bootx64.efi").value());
  EXPECT_EQ(mtype("/foundry/vmlinuz"), read_file(tree_ + "/boot/vmlinuz-" + std::string(kKernelVersion)).value());
  EXPECT_EQ(mtype("/foundry/initrd.img"), read_file(tree_ + "/boot/initrd.img-" + std::string(kKernelVersion)).value());
  EXPECT_EQ(mtype("/loader/loader.conf"), loader_conf());
  auto entry = mtype("/loader/entries/foundry.conf");
  EXPECT_NE(entry.find("options root=UUID=" + ids.root_fs.to_string() + " ro"), std::string::npos) << entry;
  EXPECT_NE(entry.find("console=ttyS0"), std::string::npos);
  auto fsck_vfat = run({"fsck.vfat", "-n", esp});
  (void)fsck_vfat;  // fsck.vfat cannot take @@offset; blkid and mtype above read the FAT

  // Root contents, read back with debugfs; consistency with e2fsck.
  const std::string rootdev = o.output + "?offset=" + std::to_string(root_off);
  auto dcat = run_checked({"debugfs", "-R", "cat /etc/fstab", rootdev});
  ASSERT_TRUE(dcat);
  EXPECT_EQ(dcat->out, fstab_for(ids));
  auto stat = run_checked({"debugfs", "-R", "stat \"/etc/with space\"", rootdev});
  ASSERT_TRUE(stat);
  EXPECT_NE(stat->out.find("ctime: 0x6553f100:00000000"), std::string::npos) << stat->out;
  EXPECT_NE(stat->out.find("atime: 0x6553f100:00000000"), std::string::npos) << stat->out;
  auto fsck = run({"e2fsck", "-fn", rootdev});
  ASSERT_TRUE(fsck);
  EXPECT_EQ(fsck->exit_code, 0) << fsck->out << fsck->err;
}

TEST_F(AssembleDisk, SameTreeSeedAndEpochGiveTheSameBytes) {
  auto a = assemble_disk(options("a.raw"));
  ASSERT_TRUE(a) << a.error().to_string() << "\n" << a.error().detail();
  // Reading the tree moved atimes; a chmod to the same mode moves a ctime.
  // Every inode's times are fixed, also those of names debugfs needs quoted
  // (a missed one made two node OS builds differ in one inode).
  ::chmod((tree_ + "/etc/hostname").c_str(), 0644);
  for (const std::string rel : {"/usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice", "/etc/say \"hi\""}) {
    const struct timespec ts[2] = {{12345, 0}, {0, UTIME_OMIT}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (tree_ + rel).c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << rel;
  }
  auto b = assemble_disk(options("b.raw"));
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_TRUE(same_bytes(out_ + "/a.raw", out_ + "/b.raw"));

  auto c_opts = options("c.raw");
  c_opts.seed = "another-seed";
  auto c = assemble_disk(c_opts);
  ASSERT_TRUE(c);
  EXPECT_FALSE(same_bytes(out_ + "/a.raw", out_ + "/c.raw"));
  EXPECT_EQ(blkid_value(out_ + "/c.raw", c->layout.partitions[1].offset_bytes(), "UUID"),
            DiskIdentity::derive("another-seed").root_fs.to_string());
}

TEST_F(AssembleDisk, WritesQcow2AndVhd) {
  for (auto [name, fmt, want] : {std::tuple{"d.qcow2", ImageFormat::Qcow2, "qcow2"},
                                 std::tuple{"d.vhd", ImageFormat::Vpc, "vpc"}}) {
    auto info = assemble_disk(options(name, fmt));
    ASSERT_TRUE(info) << info.error().to_string() << "\n" << info.error().detail();
    // A fixed VHD is raw data plus a 512-byte footer: qemu-img probes it as
    // raw, so the format is given and the footer checked by hand.
    std::vector<std::string> argv = {"qemu-img", "info", "--output=json"};
    if (fmt == ImageFormat::Vpc) argv.insert(argv.end(), {"-f", "vpc"});
    argv.push_back(out_ + "/" + name);
    auto r = run_checked(argv);
    ASSERT_TRUE(r) << r.error().to_string() << r.error().detail();
    auto j = nlohmann::json::parse(r->out);
    EXPECT_EQ(j["format"], want);
    EXPECT_EQ(j["virtual-size"], 256ull << 20) << name;
    if (fmt == ImageFormat::Vpc) {
      auto data = read_file(out_ + "/" + name);
      ASSERT_TRUE(data);
      ASSERT_EQ(data->size(), (256ull << 20) + 512);
      EXPECT_EQ(data->substr(data->size() - 512, 8), "conectix");
      // qemu stamps the footer with the current time; Foundry sets it to the
      // epoch (seconds since 2000-01-01, big-endian at offset 24).
      const auto* f = reinterpret_cast<const unsigned char*>(data->data() + data->size() - 512);
      uint32_t ts = (uint32_t{f[24]} << 24) | (uint32_t{f[25]} << 16) | (uint32_t{f[26]} << 8) | f[27];
      EXPECT_EQ(int64_t{ts}, kEpoch - 946684800);
    }
  }
  // The same inputs a second later give the same VHD.
  ::sleep(1);
  auto again = assemble_disk(options("e.vhd", ImageFormat::Vpc));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_TRUE(same_bytes(out_ + "/d.vhd", out_ + "/e.vhd"));
  EXPECT_EQ(leftovers({"d.qcow2", "d.vhd", "e.vhd"}), std::vector<std::string>{});
}

TEST_F(AssembleDisk, TooSmallDiskFailsBeforeWritingAnything) {
  put(tree_ + "/big", bytes(40 << 20, 4));
  auto o = options("small.raw");
  o.size_bytes = 100ull << 20;
  auto r = assemble_disk(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().to_string().find("does not fit"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().hint().find("--size"), std::string::npos);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

TEST_F(AssembleDisk, AFailingToolNamesTheStageAndLeavesNothing) {
  auto o = options("broken.raw");
  o.boot_loader = dir_ + "/no-such-loader.efi";
  auto r = assemble_disk(o);
  ASSERT_FALSE(r);
  auto text = r.error().to_string();
  EXPECT_NE(text.find("ESP"), std::string::npos) << text;
  EXPECT_NE(text.find("mcopy failed"), std::string::npos) << text;
  EXPECT_FALSE(r.error().detail().empty());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

TEST_F(AssembleDisk, TreeWithoutKernelIsRejected) {
  fs::remove(tree_ + "/boot/vmlinuz-" + std::string(kKernelVersion));
  auto r = assemble_disk(options("nokernel.raw"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("no kernel"), std::string::npos);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}
