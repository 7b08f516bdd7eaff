// The NoCloud ISO and documents read back by real tools: isoinfo
// (genisoimage), xorriso (libisoburn), bsdtar (libarchive, a reader that
// shares no code with libisofs), and Debian's cloud-init itself. No root is
// needed: this kernel has no iso9660 driver, so nothing is mounted.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../unit/cloudinit/fixtures.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using namespace foundry::cloudinit;
using foundry::cloudinit::testing::nic;
using foundry::cloudinit::testing::seed_vm;
namespace fs = std::filesystem;

namespace {

constexpr auto kTimeout = std::chrono::seconds(120);

#define REQUIRE_TOOL(name)                                                \
  do {                                                                    \
    if (find_program(name).empty())                                       \
      GTEST_SKIP() << name << " is not installed (scripts/install-deps)"; \
  } while (0)

class NoCloudIso : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "foundry-cloudinit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    GenerateOptions o;
    o.source_date_epoch = 1730534400;
    auto d = generate(seed_vm(), o);
    ASSERT_TRUE(d) << d.error().to_string();
    docs_ = *d;
    auto iso = build_cloud_init_iso(docs_, 1730534400);
    ASSERT_TRUE(iso) << iso.error().to_string();
    iso_path_ = (dir_ / "seed.iso").string();
    ASSERT_TRUE(write_iso_file(iso_path_, *iso));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  RunResult run_ok(const std::vector<std::string>& argv) {
    RunOptions ro;
    ro.timeout = kTimeout;
    auto r = run(argv, ro);
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r) return {};
    EXPECT_TRUE(r->ok()) << argv[0] << ": " << r->describe() << "\n" << r->out << r->err;
    return *r;
  }

  std::string write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    EXPECT_TRUE(write_file_atomic(p, text));
    return p;
  }

  void expect_extracted(const fs::path& out) {
    EXPECT_EQ(read_file((out / "user-data").string()).value_or("<missing>"), docs_.user_data);
    EXPECT_EQ(read_file((out / "meta-data").string()).value_or("<missing>"), docs_.meta_data);
    EXPECT_EQ(read_file((out / "network-config").string()).value_or("<missing>"),
              docs_.network_config);
    size_t n = 0;
    for (auto& e : fs::directory_iterator(out)) {
      (void)e;
      ++n;
    }
    EXPECT_EQ(n, 3u) << "extra files in the image";
  }

  fs::path dir_;
  Documents docs_;
  std::string iso_path_;
};

// The interpreter cloud-init runs under (the one with its PyYAML), from the
// script's #! line; pyenv shims on PATH may lack the yaml module.
std::string cloud_init_python() {
  std::string ci = find_program("cloud-init");
  if (ci.empty()) return "";
  auto text = read_file(ci);
  if (!text || text->rfind("#!", 0) != 0) return "";
  std::string line = text->substr(2, text->find('\n') - 2);
  line = line.substr(0, line.find(' '));
  return ::access(line.c_str(), X_OK) == 0 ? line : "";
}

}  // namespace

TEST_F(NoCloudIso, IsoinfoSeesCidataJolietAndRockRidge) {
  REQUIRE_TOOL("isoinfo");
  auto r = run_ok({"isoinfo", "-d", "-i", iso_path_});
  EXPECT_NE(r.out.find("Volume id: cidata\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Joliet with UCS level 3 found"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Rock Ridge signatures version 1 found"), std::string::npos) << r.out;

  auto rr = run_ok({"isoinfo", "-R", "-f", "-i", iso_path_});
  EXPECT_EQ(rr.out, "/meta-data\n/network-config\n/user-data\n");
  auto j = run_ok({"isoinfo", "-J", "-f", "-i", iso_path_});
  EXPECT_EQ(j.out, "/meta-data\n/network-config\n/user-data\n");
}

TEST_F(NoCloudIso, IsoinfoExtractsEachFileThroughRockRidgeAndJoliet) {
  REQUIRE_TOOL("isoinfo");
  for (const char* ext : {"-R", "-J"}) {
    EXPECT_EQ(run_ok({"isoinfo", ext, "-i", iso_path_, "-x", "/user-data"}).out, docs_.user_data);
    EXPECT_EQ(run_ok({"isoinfo", ext, "-i", iso_path_, "-x", "/meta-data"}).out, docs_.meta_data);
    EXPECT_EQ(run_ok({"isoinfo", ext, "-i", iso_path_, "-x", "/network-config"}).out,
              docs_.network_config);
  }
}

TEST_F(NoCloudIso, XorrisoExtractsTheThreeFilesWithTheirModes) {
  REQUIRE_TOOL("xorriso");
  fs::path out = dir_ / "xorriso";
  run_ok({"xorriso", "-osirrox", "on", "-indev", iso_path_, "-extract", "/", out.string()});
  expect_extracted(out);
  struct stat st {};
  ASSERT_EQ(::stat((out / "user-data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_mtime, 1730534400);

  auto pvd = run_ok({"xorriso", "-indev", iso_path_, "-pvd_info"});
  EXPECT_NE((pvd.out + pvd.err).find("Volume Id    : cidata"), std::string::npos)
      << pvd.out << pvd.err;
}

TEST_F(NoCloudIso, BsdtarListsAndExtractsTheSameFiles) {
  REQUIRE_TOOL("bsdtar");
  auto list = run_ok({"bsdtar", "-tf", iso_path_});
  std::set<std::string> names;
  std::istringstream in(list.out);
  for (std::string l; std::getline(in, l);)
    if (l != "." && l != "./") names.insert(l.rfind("./", 0) == 0 ? l.substr(2) : l);
  EXPECT_EQ(names, (std::set<std::string>{"meta-data", "network-config", "user-data"})) << list.out;
  fs::path out = dir_ / "bsdtar";
  fs::create_directories(out);
  run_ok({"bsdtar", "-xf", iso_path_, "-C", out.string()});
  expect_extracted(out);
}

TEST_F(NoCloudIso, CloudInitSchemaAcceptsTheUserData) {
  REQUIRE_TOOL("cloud-init");
  std::vector<config::VmConfig> vms;
  vms.push_back(seed_vm());
  auto plain = seed_vm();  // no fqdn, numeric name, no hash, password auth
  plain.name = "007";
  plain.cloud_init->fqdn.clear();
  plain.cloud_init->hostname.clear();
  plain.cloud_init->root_password_hash.clear();
  plain.cloud_init->ssh_pwauth = true;
  vms.push_back(plain);
  auto awkward = seed_vm();
  awkward.cloud_init->ssh_keys = {"ssh-ed25519 AAAAC3Nza user@host: #1 [a], {b}",
                                  "ssh-rsa AAAAB3Nza \"José\" ☃ \\"};
  awkward.cloud_init->root_password_hash = "$6$rounds=5000$s#a: l[t]$h'a\"s";
  vms.push_back(awkward);
  for (size_t i = 0; i < vms.size(); ++i) {
    auto d = generate(vms[i]).value();
    auto p = write("user-data-" + std::to_string(i), d.user_data);
    auto r = run_ok({"cloud-init", "schema", "--config-file", p});
    EXPECT_NE(r.out.find("Valid cloud-config"), std::string::npos) << d.user_data << r.out << r.err;
    EXPECT_EQ(r.err.find("schema errors"), std::string::npos) << r.err;
  }
}

// cloud-init 22.4 (Debian 12) has no `schema --schema-type network-config`;
// its own network-config parser and renderers are the check instead:
// `cloud-init devel net-convert` fails on anything it cannot parse.
TEST_F(NoCloudIso, CloudInitParsesAndRendersTheNetworkConfig) {
  REQUIRE_TOOL("cloud-init");
  auto help = run_ok({"cloud-init", "schema", "--help"});
  if (help.out.find("--schema-type") != std::string::npos) {
    auto p = write("network-config", docs_.network_config);
    auto r =
        run_ok({"cloud-init", "schema", "--schema-type", "network-config", "--config-file", p});
    EXPECT_EQ(r.err.find("schema errors"), std::string::npos) << r.err;
  }

  auto vm = seed_vm();
  vm.network_interfaces.push_back(nic("192.168.1.50/24", "192.168.1.1", {"192.168.1.1"}, false));
  struct Case {
    DefaultRouteStyle style;
    std::vector<std::string> renderers;
  };
  // The seed's `to: default` renders only through netplan on cloud-init
  // without PR #6391 (Debian 12: 22.4); `0.0.0.0/0` renders through all
  // three (see docs/cloudinit.md).
  std::vector<Case> cases = {{DefaultRouteStyle::Keyword, {"netplan"}},
                             {DefaultRouteStyle::ZeroCidr, {"netplan", "networkd", "eni"}}};
  for (const auto& c : cases) {
    GenerateOptions o;
    o.default_route_style = c.style;
    auto d = generate(vm, o).value();
    auto p = write("network-config-" + std::to_string(int(c.style)), d.network_config);
    for (const auto& renderer : c.renderers) {
      fs::path out = dir_ / ("render-" + std::to_string(int(c.style)) + "-" + renderer);
      auto r = run_ok({"cloud-init", "devel", "net-convert", "-p", p, "-k", "yaml", "-d",
                       out.string(), "-D", "debian", "-O", renderer});
      std::string rendered;
      for (auto& e : fs::recursive_directory_iterator(out))
        if (e.is_regular_file()) rendered += read_file(e.path().string()).value_or("");
      SCOPED_TRACE(renderer + ":\n" + rendered);
      EXPECT_NE(rendered.find("10.55.22.22"), std::string::npos);
      EXPECT_NE(rendered.find("192.168.1.50"), std::string::npos);
      EXPECT_NE(rendered.find("10.55.22.1"), std::string::npos) << "default gateway lost";
      EXPECT_NE(rendered.find("8.8.8.8"), std::string::npos);
      if (renderer != "eni") {  // ENI matches interfaces by name only
        EXPECT_NE(rendered.find("be:ef:0a:37:16:16"), std::string::npos);
      }
    }
  }
}

// PyYAML is what cloud-init parses user-data with (YAML 1.1: yes/no/on/off
// are booleans, 0o17 and 1:30 are numbers). Every printable ASCII string of
// one or two characters, and a few awkward ones, must come back as the same
// string from a block mapping and from a flow sequence.
TEST_F(NoCloudIso, PyYamlReadsEveryScalarBackAsTheSameString) {
  std::string py = cloud_init_python();
  if (py.empty()) GTEST_SKIP() << "cloud-init's Python (with PyYAML) was not found";
  std::vector<std::string> all = {
      "",      "yes",  "No",         "on",     "0o17",     "1:30",
      "1_000", "0x1F", "2024-01-01", "José ☃", "a\u2028b", "ssh-ed25519 AAAA u@h: #1 [a], {b}"};
  for (int a = 0x20; a < 0x7f; ++a) {
    all.push_back(std::string(1, char(a)));
    for (int b = 0x20; b < 0x7f; ++b) all.push_back(std::string{char(a), char(b)});
  }
  std::string doc = "block:\n";
  for (const auto& s : all) doc += "  - " + yaml_scalar(s) + "\n";
  doc += "flow: [";
  for (size_t i = 0; i < all.size(); ++i) doc += (i ? ", " : "") + yaml_scalar(all[i]);
  doc += "]\n";
  auto p = write("scalars.yaml", doc);
  RunOptions ro;
  ro.timeout = kTimeout;
  auto r = run({py, "-c",
                "import sys, json, yaml\n"
                "d = yaml.safe_load(open(sys.argv[1], encoding='utf-8'))\n"
                "json.dump(d, sys.stdout)\n",
                p},
               ro);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->ok()) << r->describe() << r->err;
  auto j = nlohmann::json::parse(r->out);
  ASSERT_EQ(j["block"].size(), all.size());
  ASSERT_EQ(j["flow"].size(), all.size());
  size_t bad = 0;
  for (size_t i = 0; i < all.size() && bad < 10; ++i) {
    for (const char* ctx : {"block", "flow"}) {
      const auto& v = j[ctx][i];
      if (!v.is_string() || v.get<std::string>() != all[i]) {
        ++bad;
        ADD_FAILURE() << ctx << ": '" << all[i] << "' written as <" << yaml_scalar(all[i])
                      << "> came back as " << v.dump();
      }
    }
  }
}
