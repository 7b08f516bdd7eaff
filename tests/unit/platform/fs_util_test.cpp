// The tree helpers must never write or delete outside the tree, whatever
// symlinks the tree holds (a root file system is full of absolute links).
#include "fs_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "apt_cache.h"
#include "recipe.h"

using namespace foundry;
using namespace foundry::platform;
using namespace foundry::platform::detail;
namespace fs = std::filesystem;

namespace {

class Tree : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path().string() + "/foundry-fsutil-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    fs::create_directories(root_ + "/etc");
    fs::create_directories(outside_);
    std::ofstream(outside_ + "/precious") << "keep me\n";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  std::string base_, root_, outside_;
};

}  // namespace

TEST_F(Tree, WriteReplacesASymlinkInsteadOfFollowingIt) {
  fs::create_symlink(outside_ + "/precious", root_ + "/etc/resolv.conf");
  ASSERT_TRUE(write_in_root(root_, "etc/resolv.conf", "nameserver 192.0.2.1\n", 0644, 1700000000));
  EXPECT_EQ(read_file(outside_ + "/precious").value(), "keep me\n");
  EXPECT_FALSE(fs::is_symlink(root_ + "/etc/resolv.conf"));
  EXPECT_EQ(read_file(root_ + "/etc/resolv.conf").value(), "nameserver 192.0.2.1\n");
  struct stat st {};
  ASSERT_EQ(::stat((root_ + "/etc/resolv.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1700000000);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(Tree, WriteRefusesAParentThatLeavesTheTree) {
  fs::create_symlink(outside_, root_ + "/var");
  auto r = write_in_root(root_, "var/precious", "overwritten\n", 0644);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("outside the image tree"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(read_file(outside_ + "/precious").value(), "keep me\n");
  EXPECT_FALSE(write_in_root(root_, "../outside/precious", "x", 0644));
  EXPECT_FALSE(write_in_root(root_, "/etc/x", "x", 0644));
  EXPECT_EQ(read_file(outside_ + "/precious").value(), "keep me\n");
}

TEST_F(Tree, SymlinkAndRemoveDoNotFollowLinks) {
  fs::create_symlink(outside_ + "/precious", root_ + "/etc/machine-id");
  ASSERT_TRUE(remove_in_root(root_, "etc/machine-id"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ + "/etc/machine-id")));
  EXPECT_TRUE(fs::exists(outside_ + "/precious"));
  ASSERT_TRUE(remove_in_root(root_, "etc/does-not-exist"));
  ASSERT_TRUE(symlink_in_root(root_, "etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"));
  EXPECT_EQ(fs::read_symlink(root_ + "/etc/resolv.conf"), "../run/systemd/resolve/stub-resolv.conf");
}

TEST_F(Tree, RemoveTreeDoesNotFollowSymlinkedDirectories) {
  fs::create_symlink(outside_, root_ + "/link-to-outside");
  fs::create_directories(root_ + "/a/b/c");
  std::ofstream(root_ + "/a/b/c/f") << "x";
  ASSERT_TRUE(remove_tree(root_));
  EXPECT_FALSE(fs::exists(root_));
  EXPECT_EQ(read_file(outside_ + "/precious").value(), "keep me\n");
  EXPECT_TRUE(remove_tree(root_));  // already gone is fine
}

TEST_F(Tree, TempDirRemovesItselfUnlessKept) {
  std::string kept;
  {
    auto t = TempDir::create(base_, "t-");
    ASSERT_TRUE(t);
    std::ofstream(t->path() + "/f") << "x";
    EXPECT_TRUE(fs::exists(t->path()));
    std::string p = t->path();
    auto moved = std::move(*t);
    EXPECT_EQ(moved.path(), p);
  }
  for (const auto& e : fs::directory_iterator(base_)) EXPECT_EQ(e.path().filename().string().rfind("t-", 0), std::string::npos);
  {
    auto t = TempDir::create(base_, "k-");
    ASSERT_TRUE(t);
    t->keep();
    kept = t->path();
  }
  EXPECT_TRUE(fs::exists(kept));
}

TEST_F(Tree, TailFileKeepsTheLastLines) {
  std::ofstream(base_ + "/log") << "1\n2\n3\n4\n";
  EXPECT_EQ(tail_file(base_ + "/log", 2), "3\n4\n");
  EXPECT_EQ(tail_file(base_ + "/log", 10), "1\n2\n3\n4\n");
  EXPECT_EQ(tail_file(base_ + "/missing", 2), "");
}

TEST(Recipe, ScriptsAreValidShell) {
  RootfsOptions o;
  std::vector<std::pair<std::string, std::string>> scripts = {{"setup", setup_hook_script()},
                                                              {"customize", customize_hook_script()}};
  for (const auto& f : overlay_files(o))
    if (f.mode & 0111) scripts.emplace_back(f.path, f.content);
  ASSERT_GE(scripts.size(), 3u);
  for (const auto& [name, text] : scripts) {
    EXPECT_EQ(text.rfind("#!/bin/sh\n", 0), 0u) << name;
    RunOptions ro;
    ro.stdin_data = text;
    auto r = run({"sh", "-n"}, ro);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok()) << name << ": " << r->err;
  }
}

TEST(Recipe, InitramfsHookListsTheRequiredDrivers) {
  RootfsOptions o;
  std::string hook;
  for (const auto& f : overlay_files(o))
    if (f.path == "etc/initramfs-tools/hooks/foundry-modules") hook = f.content;
  for (const char* m : {"virtio_pci", "virtio_blk", "virtio_scsi", "ext4", "sr_mod"})
    EXPECT_NE(hook.find(m), std::string::npos) << m;
}

TEST_F(Tree, AptCachePruneDropsOtherVersionsOfInstalledPackagesOnly) {
  const std::string cache = base_ + "/cache";
  fs::create_directories(cache);
  for (const char* f : {"vim_2%3a9.0.1378-2_amd64.deb", "vim_2%3a9.0.1000-1_amd64.deb", "zstd_1.5.4+dfsg2-5_amd64.deb",
                        "htop_3.2.2-2_amd64.deb", "notes.txt"})
    std::ofstream(cache + "/" + f) << "x";
  prune_apt_cache(cache, {{"vim", "2:9.0.1378-2", "amd64"}, {"zstd", "1.5.4+dfsg2-5", "amd64"}});
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(cache)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"vim_2%3a9.0.1378-2_amd64.deb", "zstd_1.5.4+dfsg2-5_amd64.deb",
                                         "htop_3.2.2-2_amd64.deb", "notes.txt"}));
}

TEST(DebugfsPath, QuotesAndDoublesQuotesAndRefusesLineBreaks) {
  EXPECT_EQ(debugfs_path(""), "\"/\"");
  EXPECT_EQ(debugfs_path("etc/with space"), "\"/etc/with space\"");
  // debugfs takes backslashes literally: systemd's escaped unit names as is.
  EXPECT_EQ(debugfs_path("usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice"),
            "\"/usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice\"");
  EXPECT_EQ(debugfs_path("etc/say \"hi\""), "\"/etc/say \"\"hi\"\"\"");
  EXPECT_EQ(debugfs_path("a\nb"), "");
  EXPECT_EQ(debugfs_path("a\tb"), "");
}
