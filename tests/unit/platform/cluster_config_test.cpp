// The cluster file loader (src/config cluster_config.h) and the package
// availability check (src/platform cluster_build.h), against the example and
// the corpus in tests/data/cluster. Each invalid file names what it expects:
//   # expect: LINE FIELD        (one line per diagnostic)
//   # message: SUBSTRING        (in the first diagnostic's message or hint)
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "foundry/config/cluster_config.h"
#include "foundry/platform/cluster_build.h"

using foundry::Error;
using foundry::ErrorKind;
using namespace foundry::config;
using namespace foundry::platform;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

const std::string kData = std::string(FOUNDRY_SOURCE_DIR) + "/tests/data/cluster/";
const std::string kExample = std::string(FOUNDRY_SOURCE_DIR) + "/examples/cluster.yaml";

// A package index that has exactly these packages.
PackageAvailability fake_index(std::set<std::string> have) {
  return [have](const std::vector<std::string>&) -> foundry::Result<std::set<std::string>> { return have; };
}

std::string dump(const Error& e) {
  std::string s = e.to_string() + "\n";
  for (const auto& d : e.diagnostics()) s += "  " + d.to_string() + "\n";
  return s;
}

}  // namespace

TEST(ClusterExample, LoadsWithThreeNodes) {
  auto c = load_cluster_file(kExample);
  ASSERT_TRUE(c) << dump(c.error());
  EXPECT_EQ(c->name, "demo");
  ASSERT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->nodes[0].name, "cp1");
  EXPECT_EQ(c->nodes[0].role, NodeRole::Control);
  EXPECT_EQ(c->nodes[1].role, NodeRole::Worker);
  EXPECT_EQ(c->nodes[0].address.to_string(), "192.0.2.11/24");
  EXPECT_TRUE(c->nodes[0].has_gateway);
  EXPECT_EQ(c->mesh.cidr.to_string(), "10.90.0.0/24");
  EXPECT_EQ(c->mesh.port, 51820);
  // Derived mesh addresses skip the one worker2 gives itself.
  EXPECT_EQ(c->nodes[0].mesh_address.to_string(), "10.90.0.1");
  EXPECT_EQ(c->nodes[1].mesh_address.to_string(), "10.90.0.2");
  EXPECT_EQ(c->nodes[2].mesh_address.to_string(), "10.90.0.13");
  EXPECT_EQ(c->os.release, "bookworm");
  ASSERT_EQ(c->os.packages.size(), 1u);
  EXPECT_EQ(c->os.packages[0].name, "htop");
  EXPECT_GT(c->os.packages[0].pos.line, 0);
  EXPECT_EQ(c->ssh_keys.size(), 1u);
  EXPECT_TRUE(c->has_target(Target::Qemu));
  EXPECT_TRUE(c->has_target(Target::Firecracker));
  EXPECT_FALSE(c->has_target(Target::Aws));
  // The configuration section is kept apart, as text, for after boot.
  EXPECT_THAT(c->configuration_yaml, HasSubstr("workloads"));
  EXPECT_THAT(c->configuration_yaml, HasSubstr("busybox"));
}

TEST(ClusterExample, PackagesCheckedAgainstAnIndex) {
  auto c = load_cluster_file(kExample);
  ASSERT_TRUE(c);
  EXPECT_TRUE(check_cluster_packages(*c, fake_index({"htop"})));
  auto st = check_cluster_packages(*c, fake_index({}));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind(), ErrorKind::Validation);
  ASSERT_EQ(st.error().diagnostics().size(), 1u);
  EXPECT_EQ(st.error().diagnostics()[0].field, "os.packages[0]");
}

TEST(ClusterValid, MinimalDefaults) {
  auto c = load_cluster_file(kData + "valid/minimal.yaml");
  ASSERT_TRUE(c) << dump(c.error());
  ASSERT_EQ(c->nodes.size(), 1u);
  EXPECT_FALSE(c->nodes[0].has_gateway);
  EXPECT_EQ(c->mesh.interface, "wg0");
  EXPECT_TRUE(c->configuration_yaml.empty());
}

TEST(ClusterValid, TargetsDefaultToQemu) {
  std::string text;
  {
    std::ifstream in(kData + "valid/minimal.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  text.erase(text.find("targets:"));
  auto c = load_cluster_yaml(text, "t.yaml");
  ASSERT_TRUE(c) << dump(c.error());
  ASSERT_EQ(c->targets.size(), 1u);
  EXPECT_EQ(c->targets[0], Target::Qemu);
}

namespace {

struct Expect {
  int line;
  std::string field;
  bool operator<(const Expect& o) const { return std::tie(line, field) < std::tie(o.line, o.field); }
  bool operator==(const Expect& o) const = default;
};

struct CaseSpec {
  std::vector<Expect> expects;
  std::string message;
};

CaseSpec spec_of(const std::string& file) {
  CaseSpec s;
  std::ifstream in(kData + "invalid/" + file);
  std::string line;
  while (std::getline(in, line) && line.starts_with("#")) {
    if (line.starts_with("# expect: ")) {
      std::istringstream ls(line.substr(10));
      Expect e{0, ""};
      ls >> e.line >> e.field;
      s.expects.push_back(e);
    } else if (line.starts_with("# message: ")) {
      s.message = line.substr(11);
    }
  }
  return s;
}

std::vector<std::string> invalid_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kData + "invalid"))
    if (e.path().extension() == ".yaml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class ClusterInvalid : public ::testing::TestWithParam<std::string> {};

// Every bad file fails before any work: a Validation error (exit 2), exactly
// the expected diagnostics, each naming the file and line, with a hint.
TEST_P(ClusterInvalid, FailsAtTheExpectedLineWithAHint) {
  const std::string file = GetParam();
  auto spec = spec_of(file);
  ASSERT_FALSE(spec.expects.empty()) << file << " has no '# expect:' header";
  // The index has every package except the one the corpus calls unreachable.
  auto r = validate_cluster(kData + "invalid/" + file, fake_index({"htop", "vim", "tcpdump"}));
  ASSERT_FALSE(r) << file << " loaded without error";
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::Validation) << dump(e);
  EXPECT_EQ(e.exit_code(), 2);
  std::vector<Expect> got;
  bool message_seen = spec.message.empty();
  for (const auto& d : e.diagnostics()) {
    got.push_back({d.line, d.field});
    EXPECT_THAT(d.to_string(), HasSubstr(fmt::format("{}:{}:", file, d.line)));
    EXPECT_FALSE(d.hint.empty()) << d.to_string();
    if (d.message.find(spec.message) != std::string::npos || d.hint.find(spec.message) != std::string::npos)
      message_seen = true;
  }
  EXPECT_TRUE(message_seen) << "no diagnostic says \"" << spec.message << "\"\n" << dump(e);
  auto want = spec.expects;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want) << dump(e);
}

INSTANTIATE_TEST_SUITE_P(Files, ClusterInvalid, ::testing::ValuesIn(invalid_files()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param.substr(0, p.param.size() - 5);
                           std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(c); }, '_');
                           return n;
                         });

TEST(ClusterInvalidCorpus, CoversTheIssuesCases) {
  auto files = invalid_files();
  for (const char* f : {"duplicate-node-name.yaml", "duplicate-address.yaml", "address-in-mesh.yaml",
                        "unknown-role.yaml", "missing-ssh-keys.yaml", "package-unreachable.yaml"})
    EXPECT_NE(std::find(files.begin(), files.end(), f), files.end()) << f;
}
