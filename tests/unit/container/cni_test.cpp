// CNI invocation against fake plugins (shell scripts in a temporary
// directory): order, prevResult chaining, environment, DEL in reverse,
// rollback of a half-done ADD, error reporting, and conflist parsing.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/container/cni.h"

namespace fc = foundry::container;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

class FakePlugins : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "foundry-cni-XXXXXX").string();
    dir_ = ::mkdtemp(t.data());
    // Each fake records the command and its stdin, and answers ADD with a
    // result naming itself, so chaining is visible.
    for (const char* name : {"fake-a", "fake-b"}) {
      std::string p = dir_ + "/" + name;
      std::ofstream(p) << "#!/bin/sh\n"
                       << "echo \"$CNI_COMMAND " << name << " $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME\" >> " << dir_
                       << "/calls\n"
                       << "cat > " << dir_ << "/" << name << ".$CNI_COMMAND.json\n"
                       << "if [ \"$CNI_COMMAND\" = ADD ]; then echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\""
                       << (std::string(name) == "fake-a" ? "192.0.2.5/24" : "198.51.100.7/24") << "\"}],\"by\":\""
                       << name << "\"}'; fi\n";
      fs::permissions(p, fs::perms::owner_all);
    }
    std::string f = dir_ + "/fake-fail";
    std::ofstream(f) << "#!/bin/sh\necho \"$CNI_COMMAND fake-fail\" >> " << dir_
                     << "/calls\necho '{\"code\":7,\"msg\":\"boom\",\"details\":\"no bridge\"}'; exit 1\n";
    fs::permissions(f, fs::perms::owner_all);
    rt_.container_id = "c1";
    rt_.netns = "/proc/123/ns/net";
    rt_.plugin_dirs = {dir_ + "/nonexistent", dir_};
  }
  void TearDown() override { fs::remove_all(dir_); }

  fc::CniNetwork net(std::vector<std::string> types) {
    json plugins = json::array();
    for (const auto& t : types) plugins.push_back({{"type", t}, {"opt", t + "-opt"}});
    return *fc::parse_conflist(json{{"cniVersion", "1.0.0"}, {"name", "testnet"}, {"plugins", plugins}}.dump());
  }
  std::string calls() { return foundry::read_file(dir_ + "/calls").value_or(""); }
  json sent(const std::string& file) { return json::parse(*foundry::read_file(dir_ + "/" + file)); }

  std::string dir_;
  fc::CniRuntime rt_;
};

}  // namespace

TEST_F(FakePlugins, AddChainsPrevResultAndDelRunsInReverse) {
  auto n = net({"fake-a", "fake-b"});
  auto r = fc::cni_add(n, rt_);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)["by"], "fake-b");
  EXPECT_EQ(fc::cni_first_ipv4(*r), "198.51.100.7/24");
  json a = sent("fake-a.ADD.json"), b = sent("fake-b.ADD.json");
  EXPECT_EQ(a["name"], "testnet");
  EXPECT_EQ(a["cniVersion"], "1.0.0");
  EXPECT_EQ(a["opt"], "fake-a-opt");
  EXPECT_FALSE(a.contains("prevResult"));
  EXPECT_EQ(b["prevResult"]["by"], "fake-a");
  ASSERT_TRUE(fc::cni_del(n, rt_, *r));
  EXPECT_EQ(calls(),
            "ADD fake-a c1 /proc/123/ns/net eth0\nADD fake-b c1 /proc/123/ns/net eth0\n"
            "DEL fake-b c1 /proc/123/ns/net eth0\nDEL fake-a c1 /proc/123/ns/net eth0\n");
  EXPECT_EQ(sent("fake-a.DEL.json")["prevResult"]["by"], "fake-b");  // the stored ADD result
  ASSERT_TRUE(fc::cni_check(n, rt_, *r));
}

TEST_F(FakePlugins, FailedAddIsRolledBackAndExplained) {
  auto n = net({"fake-a", "fake-b", "fake-fail"});
  auto r = fc::cni_add(n, rt_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "CNI ADD of network \"testnet\": plugin fake-fail failed: boom (no bridge) (CNI error 7)");
  EXPECT_EQ(calls(),
            "ADD fake-a c1 /proc/123/ns/net eth0\nADD fake-b c1 /proc/123/ns/net eth0\nADD fake-fail\n"
            "DEL fake-b c1 /proc/123/ns/net eth0\nDEL fake-a c1 /proc/123/ns/net eth0\n");
}

TEST_F(FakePlugins, MissingPlugin) {
  auto r = fc::cni_add(net({"fake-a", "nope"}), rt_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("CNI plugin \"nope\" not found in"), std::string::npos);
  EXPECT_NE(r.error().hint().find("containernetworking-plugins"), std::string::npos);
}

TEST(Conflist, ErrorsNameTheField) {
  auto no_type = fc::parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"x":1}]})", "f.conflist");
  ASSERT_FALSE(no_type);
  EXPECT_EQ(no_type.error().diagnostics().at(0).field, "plugins[1].type");
  auto no_name = fc::parse_conflist(R"({"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})");
  ASSERT_FALSE(no_name);
  EXPECT_EQ(no_name.error().diagnostics().at(0).field, "name");
  auto path_type = fc::parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../bin/sh"}]})");
  ASSERT_FALSE(path_type);
  EXPECT_EQ(path_type.error().diagnostics().at(0).field, "plugins[0].type");
  EXPECT_FALSE(fc::parse_conflist("{"));
}

TEST(Conflist, FindAndInstallDefault) {
  std::string t = (fs::temp_directory_path() / "foundry-cnidir-XXXXXX").string();
  std::string dir = ::mkdtemp(t.data());
  auto none = fc::find_network(dir, "foundry");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "no CNI network \"foundry\" in " + dir);
  ASSERT_TRUE(fc::install_default_network(dir));
  auto n = fc::find_network(dir, "foundry");
  ASSERT_TRUE(n) << n.error().to_string();
  EXPECT_EQ(n->plugins.at(0)["type"], "bridge");
  EXPECT_EQ(n->cni_version, "1.0.0");
  auto other = fc::find_network(dir, "other");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().hint(), "networks there: foundry");
  fs::remove_all(dir);
}
