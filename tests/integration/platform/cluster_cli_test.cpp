// `foundry platform validate` and `foundry platform build` failure paths as
// a user types them: bad cluster files fail with exit 2 and file:line before
// any work; a build whose package stage fails leaves no artifact, manifest
// or staging directory behind. Seconds: mmdebstrap fails right after its apt
// update, since the sources name a local repository with an empty index (no
// network; a missing mirror would cost apt's retries with back-off instead).
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
const std::string kData = std::string(FOUNDRY_SOURCE_DIR) + "/tests/data/cluster/";
const std::string kExample = std::string(FOUNDRY_SOURCE_DIR) + "/examples/cluster.yaml";

RunResult foundry_cli(std::vector<std::string> args) {
  args.insert(args.begin(), kFoundry);
  RunOptions ro;
  ro.timeout = std::chrono::minutes(5);
  auto r = run(args, ro);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

struct Tmp {
  std::string path;
  Tmp() {
    std::string t = (fs::temp_directory_path() / "foundry-cluster-cli-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST(PlatformValidate, ExampleIsValid) {
  if (find_program("apt-cache").empty()) GTEST_SKIP() << "apt-cache not installed";
  auto r = foundry_cli({"platform", "validate", kExample});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cluster demo, 3 nodes"));
  EXPECT_THAT(r.out, HasSubstr("10.90.0.13"));
}

TEST(PlatformValidate, BadFilesExitTwoWithFileAndLine) {
  if (find_program("apt-cache").empty()) GTEST_SKIP() << "apt-cache not installed";
  struct Case {
    const char* file;
    const char* says;
  };
  for (const auto& c : {Case{"duplicate-node-name.yaml", "duplicate-node-name.yaml:12:11: nodes[1].name"},
                        Case{"duplicate-address.yaml", "nodes[1].address: address 192.0.2.11 is already used"},
                        Case{"unknown-role.yaml", "\"master\" is not one of control, worker"},
                        Case{"missing-ssh-keys.yaml", "ssh_keys"},
                        Case{"package-unreachable.yaml",
                             "package-unreachable.yaml:25:7: os.packages[1]: package foundry-no-such-package is not"}}) {
    auto r = foundry_cli({"platform", "validate", kData + "invalid/" + c.file});
    EXPECT_EQ(r.exit_code, 2) << c.file << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.file;
    EXPECT_THAT(r.err, HasSubstr("hint:")) << c.file;
  }
  auto missing = foundry_cli({"platform", "validate", "/nonexistent/cluster.yaml"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
}

TEST(PlatformBuild, BadClusterFileFailsBeforeAnyWork) {
  Tmp t;
  auto r = foundry_cli({"platform", "build", kData + "invalid/unknown-role.yaml", "-o", t.path + "/out"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(t.path + "/out")) << "a build that fails validation must not create anything";
}

TEST(PlatformBuild, FailedStageLeavesNoArtifacts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mmdebstrap --mode=root)";
  if (find_program("mmdebstrap").empty()) GTEST_SKIP() << "mmdebstrap not installed";
  Tmp t;
  const std::string sources = t.path + "/empty.list";
  fs::create_directories(t.path + "/repo");
  ASSERT_TRUE(write_file_atomic(t.path + "/repo/Packages", ""));
  ASSERT_TRUE(write_file_atomic(sources, "deb [trusted=yes] file://" + t.path + "/repo ./\n"));
  const std::string out = t.path + "/out";
  auto r = foundry_cli({"platform", "build", kExample, "-o", out, "--sources", sources, "--cache", t.path + "/cache"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("mmdebstrap"));
  EXPECT_THAT(r.err, HasSubstr("Unable to locate package"));
  EXPECT_THAT(r.out, HasSubstr("✓ validate"));
  EXPECT_FALSE(fs::exists(out + "/manifest.json"));
  EXPECT_FALSE(fs::exists(out + "/images"));
  EXPECT_FALSE(fs::exists(out + "/nodes"));
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
  // The keys made before the failure are kept for the next attempt (0700).
  EXPECT_TRUE(fs::exists(out + "/secrets/ca.key"));
  EXPECT_EQ(fs::status(out + "/secrets").permissions() & fs::perms::all, fs::perms::owner_all);
}
