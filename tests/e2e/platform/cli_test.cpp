// `foundry platform base-image` as a user types it: the paths that fail
// before any work starts, and --print-inputs (what cache stamps hash).
// Fast: nothing here builds an image.
#include <filesystem>

#include <gtest/gtest.h>

#include "foundry/common/subprocess.h"

using namespace foundry;

namespace {

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";

RunResult foundry_cli(std::vector<std::string> args) {
  args.insert(args.begin(), kFoundry);
  auto r = run(args);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

}  // namespace

TEST(PlatformCli, PrintInputsIsStableAndFollowsTheOptions) {
  auto a = foundry_cli({"platform", "base-image", "-o", "/nonexistent/x.qcow2", "--print-inputs"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("package: cloud-init\n"), std::string::npos);
  EXPECT_NE(a.out.find("disk-format: qcow2\n"), std::string::npos);
  auto b = foundry_cli({"platform", "base-image", "-o", "/elsewhere/y.qcow2", "--print-inputs"});
  EXPECT_EQ(a.out, b.out) << "the output path must not change the inputs";
  auto c = foundry_cli({"platform", "base-image", "-o", "x.qcow2", "--packages", "vim,htop", "--print-inputs"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("package: htop\n"), std::string::npos);
  EXPECT_NE(a.out, c.out);
  auto d = foundry_cli({"platform", "base-image", "-o", "x.raw", "--size", "2G", "--print-inputs"});
  EXPECT_NE(d.out.find("disk-format: raw\n"), std::string::npos);
  EXPECT_NE(d.out.find("disk-size: 2147483648\n"), std::string::npos);
  auto e = foundry_cli({"platform", "base-image", "-o", "x.qcow2", "--no-default-packages", "--print-inputs"});
  EXPECT_EQ(e.out.find("package: cloud-init\n"), std::string::npos);
  EXPECT_NE(e.out.find("package: linux-image-amd64\n"), std::string::npos);
}

TEST(PlatformCli, BadInputsFailBeforeAnyWorkWithTheirExitCode) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--size", "3X"}, 1, "is not a size"},
      {{"--packages", "Bad_Name"}, 2, "is not a Debian package name"},
      {{"--format", "raw"}, 1, "does not match the extension"},
      {{"--sources", "/nonexistent/sources.list"}, 1, "/nonexistent/sources.list"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"platform", "base-image", "-o", "out.qcow2"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = foundry_cli(args);
    EXPECT_EQ(r.exit_code, c.code) << c.args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args[0] << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists("out.qcow2"));
  }
  auto missing = foundry_cli({"platform", "base-image"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--output"), std::string::npos) << missing.err;
}

TEST(PlatformCli, HelpReadsLikeAManualPage) {
  auto r = foundry_cli({"platform", "base-image", "--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* section : {"DESCRIPTION", "DEFAULT PACKAGES", "EXAMPLES", "EXIT STATUS", "SEE ALSO"})
    EXPECT_NE(r.out.find(section), std::string::npos) << section;
}
