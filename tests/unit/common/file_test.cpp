#include "foundry/common/file.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

using namespace foundry;
namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("foundry-file-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileTest, AtomicWriteReplacesAndLeavesNoTemporaries) {
  auto p = (dir_ / "f").string();
  ASSERT_TRUE(write_file_atomic(p, "one"));
  ASSERT_TRUE(write_file_atomic(p, "two", 0600));
  EXPECT_EQ(read_file(p).value(), "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int n = 0;
  for (auto& e : fs::directory_iterator(dir_)) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 1);
}

TEST_F(FileTest, ReadErrorsNameThePath) {
  auto r = read_file((dir_ / "missing.yaml").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  EXPECT_NE(r.error().to_string().find("missing.yaml: No such file or directory"), std::string::npos);
  auto d = read_file(dir_.string());
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().to_string().find("is a directory"), std::string::npos);
}

TEST_F(FileTest, MakeDirsCreatesNested) {
  auto p = (dir_ / "a/b/c").string();
  ASSERT_TRUE(make_dirs(p));
  EXPECT_TRUE(fs::is_directory(p));
  ASSERT_TRUE(make_dirs(p));
}
