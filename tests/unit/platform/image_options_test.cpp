// Option parsing, the boot files and the recipe inputs: everything of the
// image pipeline that needs no root and no outside program.
#include <gtest/gtest.h>

#include "foundry/platform/base_image.h"
#include "foundry/platform/disk_image.h"
#include "foundry/platform/rootfs.h"

using namespace foundry::platform;

TEST(ParseSize, AcceptsBinaryUnits) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("3G"), 3ull << 30);
  EXPECT_EQ(*parse_size("3GiB"), 3ull << 30);
  EXPECT_EQ(*parse_size("3gb"), 3ull << 30);
  EXPECT_EQ(*parse_size("512M"), 512ull << 20);
  EXPECT_EQ(*parse_size("1T"), 1ull << 40);
  EXPECT_EQ(*parse_size("64k"), 64ull << 10);
  for (const char* bad : {"", "G", "3X", "-1G", "1.5G", "99999999999999999999", "20000000000T"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(ImageFormat, ParsesNamesAndAliases) {
  EXPECT_EQ(*parse_image_format("qcow2"), ImageFormat::Qcow2);
  EXPECT_EQ(*parse_image_format("raw"), ImageFormat::Raw);
  EXPECT_EQ(*parse_image_format("vhd"), ImageFormat::Vpc);
  EXPECT_EQ(to_string(ImageFormat::Vpc), "vpc");
  EXPECT_FALSE(parse_image_format("vmdk"));
}

TEST(PackageNames, FollowDebianPolicy) {
  EXPECT_TRUE(validate_package_names(default_base_packages()));
  EXPECT_TRUE(validate_package_names({"g++", "libstdc++6", "vim=2:9.0.1378-2", "linux-image-amd64/bookworm-backports"}));
  for (const char* bad : {"Vim", "a", "-x", "x y", "x;rm", "$(id)", "x=", "x/"})
    EXPECT_FALSE(validate_package_names({bad})) << bad;
}

TEST(BootFiles, EntryNamesKernelInitrdAndCommandLine) {
  auto ids = DiskIdentity::derive("s");
  auto e = loader_entry("Foundry", "6.1.0-9-amd64", "root=UUID=" + ids.root_fs.to_string() + " ro console=ttyS0");
  EXPECT_NE(e.find("linux   /foundry/vmlinuz\n"), std::string::npos);
  EXPECT_NE(e.find("initrd  /foundry/initrd.img\n"), std::string::npos);
  EXPECT_NE(e.find("options root=UUID=" + ids.root_fs.to_string()), std::string::npos);
  EXPECT_NE(loader_conf().find("default foundry.conf"), std::string::npos);
  auto f = fstab_for(ids);
  EXPECT_NE(f.find("UUID=" + ids.root_fs.to_string() + "\t/\text4"), std::string::npos);
  EXPECT_NE(f.find("UUID=" + fat_serial_to_string(ids.esp_serial) + "\t/boot/efi\tvfat"), std::string::npos);
  auto cmd = default_kernel_cmdline();
  // The serial console must be the last console= (it becomes /dev/console).
  std::string last_console;
  for (const auto& a : cmd)
    if (a.rfind("console=", 0) == 0) last_console = a;
  EXPECT_EQ(last_console.rfind("console=ttyS0", 0), 0u);
}

TEST(Inputs, ChangeWithEveryInputThatChangesTheImage) {
  BaseImageOptions o;
  o.rootfs.sources = *parse_one_line_sources("deb http://m/debian bookworm main\n", "t");
  o.rootfs.source_date_epoch = 1700000000;
  o.disk.output = "x.qcow2";
  auto base = describe_base_image_inputs(o);
  ASSERT_TRUE(base) << base.error().to_string();
  EXPECT_NE(base->find("recipe-version: "), std::string::npos);
  EXPECT_NE(base->find("etc/cloud/cloud.cfg.d/90-foundry.cfg"), std::string::npos);
  EXPECT_NE(base->find("renderers: [ networkd ]"), std::string::npos);
  EXPECT_NE(base->find("virtio_blk"), std::string::npos);
  // Same options, same text: package order does not matter.
  auto o2 = o;
  std::reverse(o2.rootfs.packages.begin(), o2.rootfs.packages.end());
  EXPECT_EQ(*describe_base_image_inputs(o2), *base);

  auto changed = [&](auto mutate) {
    auto c = o;
    mutate(c);
    auto d = describe_base_image_inputs(c);
    return d && *d != *base;
  };
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.packages.push_back("vim"); }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.suite = "trixie"; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.initramfs = InitramfsPolicy::Most; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.initramfs_modules.push_back("xen_blkfront"); }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.source_date_epoch = 1; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.rootfs.sources[0].uris[0] = "http://other/debian"; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.disk.seed = "other"; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.disk.size_bytes = 4ull << 30; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.disk.format = ImageFormat::Raw; }));
  EXPECT_TRUE(changed([](BaseImageOptions& c) { c.disk.kernel_cmdline.push_back("quiet"); }));
  // The output path is not an input of the image bytes.
  EXPECT_FALSE(changed([](BaseImageOptions& c) { c.disk.output = "elsewhere/y.qcow2"; }));
}

TEST(Inputs, RejectBadPackageNames) {
  BaseImageOptions o;
  o.rootfs.sources = *parse_one_line_sources("deb http://m/debian bookworm main\n", "t");
  o.rootfs.packages.push_back("bad name");
  EXPECT_FALSE(describe_base_image_inputs(o));
}
