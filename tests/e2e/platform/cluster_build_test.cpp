// `foundry platform build examples/cluster.yaml` as a user runs it, twice:
// once with the network, once --offline inside a network namespace with no
// interfaces but loopback (so apt cannot reach any mirror). Same cluster
// file, same package versions, same secrets and SOURCE_DATE_EPOCH: every
// artifact must be bit-identical (issue 6: reproducible and offline). On a
// mismatch, for each differing artifact: the first differing bytes (cmp -l)
// and, up to 512 MiB, the first 200 lines of diffoscope's report.
//
// The .debs are cached in $FOUNDRY_TEST_CACHE/base-image/apt, shared with
// the base-image fixture, so only the first run ever downloads; both builds
// install from that cache (the second one cannot do anything else).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e_support.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
const std::string kExample = std::string(FOUNDRY_SOURCE_DIR) + "/examples/cluster.yaml";

std::string cache_dir() {
  const char* root = std::getenv("FOUNDRY_TEST_CACHE");
  return std::string(root && *root ? root : "/var/cache/foundry-test") + "/base-image/apt";
}

mode_t mode_of(const std::string& p) {
  struct stat st{};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

RunResult build(const std::vector<std::string>& prefix, const std::string& out, const std::string& secrets,
                bool offline) {
  std::vector<std::string> argv = prefix;
  for (const auto& a : {kFoundry, std::string("--verbose"), std::string("platform"), std::string("build"), kExample,
                        std::string("-o"), out, std::string("--secrets"), secrets, std::string("--cache"),
                        cache_dir()})
    argv.push_back(a);
  if (offline) argv.push_back("--offline");
  RunOptions ro;
  ro.timeout = std::chrono::minutes(25);
  ro.extra_env = {"SOURCE_DATE_EPOCH=1767225600"};
  auto r = run(argv, ro);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

nlohmann::json manifest(const std::string& dir) {
  auto text = read_file(dir + "/manifest.json");
  if (!text) return {};
  return nlohmann::json::parse(*text, nullptr, false);
}

}  // namespace

TEST(PlatformClusterBuild, TwoBuildsOneOfflineGiveIdenticalArtifacts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mmdebstrap --mode=root)";
  for (const char* tool : {"mmdebstrap", "unshare", "mkfs.ext4", "mcopy", "qemu-img", "dpkg-scanpackages"})
    if (find_program(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
  e2e::TempDir work("foundry-cluster-e2e-");
  ASSERT_FALSE(work.path().empty());
  const std::string secrets = work / "secrets";

  auto t = e2e::Clock::now();
  auto a = build({}, work / "a", secrets, false);
  double online_s = e2e::seconds_since(t);
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  std::printf("online build: %.0f s\n", online_s);
  // Progress names every stage.
  for (const char* stage : {"validate", "identity", "mmdebstrap", "node-os", "root-fs", "config-drives",
                            "manifest"})
    EXPECT_THAT(a.out, HasSubstr(std::string("✓ ") + stage)) << a.out;

  // Offline: a network namespace of our own with nothing but loopback.
  t = e2e::Clock::now();
  auto b = build({"unshare", "--net", "--"}, work / "b", secrets, true);
  double offline_s = e2e::seconds_since(t);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  std::printf("offline build: %.0f s\n", offline_s);

  auto ma = manifest(work / "a");
  auto mb = manifest(work / "b");
  ASSERT_TRUE(ma.is_object() && mb.is_object());
  EXPECT_EQ(ma["inputs"]["offline"], false);
  EXPECT_EQ(mb["inputs"]["offline"], true);

  // The SBOM: every installed package with its version, the same in both.
  ASSERT_TRUE(ma["packages"].is_array());
  EXPECT_GT(ma["packages"].size(), 150u);
  EXPECT_EQ(ma["packages"], mb["packages"]);
  std::set<std::string> names;
  for (const auto& p : ma["packages"]) names.insert(p["name"].get<std::string>());
  for (const char* p : {"wireguard-tools", "htop", "linux-image-amd64", "systemd", "cloud-init"})
    EXPECT_TRUE(names.count(p)) << p << " missing from the SBOM";

  // Every artifact: listed with size and sha256 that match the file, and
  // identical between the two builds.
  std::map<std::string, std::string> hashes_a, hashes_b;
  for (const auto& x : ma["artifacts"]) hashes_a[x["path"]] = x["sha256"];
  for (const auto& x : mb["artifacts"]) hashes_b[x["path"]] = x["sha256"];
  // Every kind the example's targets ask for, plus what is always built.
  std::set<std::string> kinds;
  for (const auto& x : ma["artifacts"]) kinds.insert(x["kind"].get<std::string>());
  for (const char* k : {"disk-qcow2", "disk-raw", "disk-vhd", "config-drive", "live-iso", "firecracker-kernel",
                        "firecracker-rootfs", "firecracker-config", "recovery-key"})
    EXPECT_TRUE(kinds.count(k)) << k << " missing from the manifest";
  // The manifest's checksums are the files' (an independent tool): every
  // artifact up to 2 GiB, which covers each kind but the two 3 GiB disk
  // formats and the 6 GiB key. Re-reading those, long evicted from the page
  // cache by the second build, cost about 4 minutes of the test; their
  // sizes are still checked, and the comparison between the builds is the
  // manifests' checksums of every artifact.
  for (const auto& x : ma["artifacts"]) {
    std::string p = work / "a" + "/" + x["path"].get<std::string>();
    std::error_code ec;
    const uint64_t size = fs::file_size(p, ec);
    EXPECT_EQ(size, x["size"].get<uint64_t>()) << p;
    if (size > (2ull << 30)) continue;
    // openssl uses the CPU's SHA extensions; coreutils' sha256sum does not.
    auto sum = run({"openssl", "dgst", "-sha256", "-r", p});
    ASSERT_TRUE(sum && sum->ok()) << p;
    EXPECT_EQ(sum->out.substr(0, 64), x["sha256"].get<std::string>()) << p;
  }
  std::vector<std::string> differing;
  for (const auto& [path, h] : hashes_a)
    if (hashes_b[path] != h) differing.push_back(path);
  EXPECT_EQ(hashes_a.size(), hashes_b.size());
  for (const auto& path : differing) {
    ADD_FAILURE() << path << " differs between the two builds";
    const std::string pa = work / "a" + "/" + path, pb = work / "b" + "/" + path;
    // Where, in bytes: quick even for the 6 GiB key, and enough to find the
    // inode or file when diffoscope cannot look inside (an ext4 image).
    if (auto c = run({"sh", "-c", "cmp -l \"$1\" \"$2\" | head -20", "sh", pa, pb}); c && !c->out.empty())
      std::printf("first differing bytes of %s (offset, octal a, octal b):\n%s", path.c_str(), c->out.c_str());
    // diffoscope reads a whole disk image into memory to diff it as bytes
    // (15 GB for the 6 GiB recovery key) and can say no more than cmp about
    // an ext4 it cannot open without libguestfs: the big images get cmp's
    // offsets only (compare the trees with --keep-rootfs and diffoscope).
    std::error_code size_ec;
    if (fs::file_size(pa, size_ec) > (512ull << 20)) {
      std::printf("(%s is over 512 MiB: no diffoscope report; rebuild both with --keep-rootfs DIR and run "
                  "diffoscope on the two trees)\n",
                  path.c_str());
      continue;
    }
    if (find_program("diffoscope").empty()) {
      std::printf("(diffoscope is not installed: no report for %s; scripts/install-deps)\n", path.c_str());
      continue;
    }
    RunOptions ro;
    ro.timeout = std::chrono::minutes(10);
    auto d = run({"sh", "-c",
                  "diffoscope --no-progress --timeout 240 --max-report-size 200000 --text - \"$1\" \"$2\" 2>&1 "
                  "| head -200",
                  "sh", pa, pb},
                 ro);
    if (d) std::printf("diffoscope %s (first 200 lines):\n%s\n", path.c_str(), d->out.c_str());
  }

  // No secret in the manifest or the output; keys and drives are 0600.
  auto mtext = read_file(work / "a/manifest.json");
  ASSERT_TRUE(mtext);
  EXPECT_THAT(*mtext, Not(HasSubstr("PRIVATE KEY")));
  for (const auto& n : {"cp1", "worker1", "worker2"}) {
    auto wg = read_file(secrets + "/nodes/" + n + "/wg.key");
    ASSERT_TRUE(wg);
    std::string key = wg->substr(0, 44);
    EXPECT_THAT(*mtext, Not(HasSubstr(key)));
    EXPECT_THAT(a.out + a.err, Not(HasSubstr(key)));
    EXPECT_EQ(mode_of(secrets + "/nodes/" + n + "/wg.key"), 0600u);
    EXPECT_EQ(mode_of(secrets + "/nodes/" + n + "/node.key"), 0600u);
    EXPECT_EQ(mode_of(work / "a/nodes/" + n + "-config.iso"), 0600u);
  }
  EXPECT_EQ(mode_of(work / "a/recovery/demo-recovery.img"), 0600u);
  // The config drive carries the node's identity and its mesh peers.
  if (!find_program("bsdtar").empty()) {
    auto ud = run({"bsdtar", "-xOf", work / "a/nodes/cp1-config.iso", "user-data"});
    ASSERT_TRUE(ud && ud->ok());
    EXPECT_THAT(ud->out, HasSubstr("path: /etc/foundry/wg0.conf"));
    EXPECT_THAT(ud->out, HasSubstr("path: /etc/foundry/node.key"));
    EXPECT_THAT(ud->out, HasSubstr("permissions: '0600'"));
  }
  // qemu-img agrees with the formats.
  auto info = [&](const std::string& rel, const char* fmt) {
    auto r = run({"qemu-img", "info", "--output=json", "-f", fmt, work / "a/" + rel});
    ASSERT_TRUE(r && r->ok()) << rel << (r ? r->err : "");
    EXPECT_THAT(r->out, HasSubstr(std::string("\"format\": \"") + fmt + "\"")) << rel;
  };
  info("images/demo.qcow2", "qcow2");
  info("images/demo.raw", "raw");
  info("images/demo.vhd", "vpc");
  // Nothing of the builds is left behind.
  for (const auto& d : {work / "a", work / "b"})
    for (const auto& e : fs::directory_iterator(d))
      EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
}
