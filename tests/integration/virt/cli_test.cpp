// The foundry binary as a user types it, against libvirt's test driver:
// exit codes, one-line reasons, -o json that parses. Each process opening
// test:///<node.xml> starts from that file's state (data/node.xml: the two
// Foundry pools, an image used by VM "web", a custom pool with a volume and
// an empty one), so every command sees the same known world.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "foundry/common/subprocess.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

const std::string kBinary = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
const std::string kNode = "test://" + std::string(FOUNDRY_SOURCE_DIR) + "/tests/integration/virt/data/node.xml";

RunResult foundry(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  RunOptions o;
  o.timeout = std::chrono::seconds(60);
  // The environment must not steer these runs.
  o.extra_env = {"FOUNDRY_URI=", "FOUNDRY_IMAGE_POOL=", "FOUNDRY_VM_POOL=", "FOUNDRY_STORAGE_PATH="};
  auto r = run(args, o);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

nlohmann::json json_of(const RunResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

// Errors are one line (plus an optional hint line).
void expect_one_line_error(const RunResult& r) {
  ASSERT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  auto first_nl = r.err.find('\n');
  auto rest = r.err.substr(first_nl + 1);
  EXPECT_TRUE(rest.empty() || rest.rfind("hint: ", 0) == 0) << r.err;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "foundry-cli-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& data) const {
    auto p = (path / name).string();
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
};

std::string qcow2_bytes() {
  std::string h(4096, '\0');
  h[0] = 'Q', h[1] = 'F', h[2] = 'I', h[3] = '\xfb', h[7] = 3, h[27] = 0x40;  // 1 GiB virtual
  return h;
}

TEST(Cli, PoolListTableAndJson) {
  auto t = foundry({"--connect", kNode, "pool", "list"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out.rfind("NAME", 0), 0u);
  EXPECT_NE(t.out.find("foundry-images"), std::string::npos);
  // Columns line up: every row has AUTOSTART's column at the header's offset.
  auto header_end = t.out.find('\n');
  auto col = t.out.substr(0, header_end).find("STATE");
  auto row = t.out.substr(t.out.find("foundry-vms"));
  EXPECT_EQ(row.substr(col, 7), "running");

  auto j = foundry({"--connect", kNode, "-o", "json", "pool", "list"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto arr = json_of(j);
  ASSERT_TRUE(arr.is_array());
  ASSERT_EQ(arr.size(), 4u);
  EXPECT_EQ(arr[1]["name"], "foundry-images");
  EXPECT_EQ(arr[1]["volumes"], 2);
  EXPECT_EQ(arr[1]["default"], true);
  EXPECT_EQ(arr[1]["type"], "dir");
}

TEST(Cli, PoolInfoJsonListsVolumesWithTheirVm) {
  auto r = foundry({"--connect", kNode, "-o", "json", "pool", "info", "foundry-vms"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json_of(r);
  EXPECT_EQ(j["name"], "foundry-vms");
  ASSERT_EQ(j["volume_list"].size(), 3u);
  EXPECT_EQ(j["volume_list"][0]["name"], "web_boot");
  EXPECT_EQ(j["volume_list"][0]["vm"], "web");
  EXPECT_EQ(j["volume_list"][0]["role"], "boot");
  EXPECT_EQ(j["volume_list"][0]["backing_path"], "/foundry/images/debian-12.qcow2");
  auto missing = foundry({"--connect", kNode, "pool", "info", "nope"});
  EXPECT_EQ(missing.exit_code, 5);
  expect_one_line_error(missing);
}

TEST(Cli, PoolDeleteRefusalsAndForce) {
  auto def = foundry({"--connect", kNode, "pool", "delete", "foundry-vms", "--force"});
  EXPECT_EQ(def.exit_code, 2) << def.err;
  expect_one_line_error(def);
  auto busy = foundry({"--connect", kNode, "pool", "delete", "scratch"});
  EXPECT_EQ(busy.exit_code, 5) << busy.err;
  EXPECT_NE(busy.err.find("holds 1 volume (leftover.qcow2)"), std::string::npos) << busy.err;
  EXPECT_NE(busy.err.find("hint: use --force"), std::string::npos);
  auto forced = foundry({"--connect", kNode, "pool", "delete", "scratch", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("Deleted pool 'scratch'"), std::string::npos);
  auto empty = foundry({"--connect", kNode, "-o", "json", "pool", "delete", "empty"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(json_of(empty)["deleted"], "empty");
  EXPECT_EQ(foundry({"--connect", kNode, "pool", "delete", "nope"}).exit_code, 5);
}

TEST(Cli, PoolAddAndRefresh) {
  auto add = foundry({"--connect", kNode, "-o", "json", "pool", "add", "ssd", "--type", "dir", "--path", "/mnt/ssd"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  auto j = json_of(add);
  EXPECT_EQ(j["name"], "ssd");
  EXPECT_EQ(j["active"], true);
  EXPECT_EQ(j["autostart"], true);
  auto table = foundry({"--connect", kNode, "pool", "add", "ssd", "--path", "/mnt/ssd"});
  EXPECT_NE(table.out.find("✓ Pool ssd defined (dir)"), std::string::npos) << table.out << table.err;
  auto dup = foundry({"--connect", kNode, "pool", "add", "scratch", "--path", "/x"});
  EXPECT_EQ(dup.exit_code, 2);
  auto nopath = foundry({"--connect", kNode, "pool", "add", "x", "--type", "dir"});
  EXPECT_EQ(nopath.exit_code, 2);
  EXPECT_NE(nopath.err.find("--path"), std::string::npos);
  auto badtype = foundry({"--connect", kNode, "pool", "add", "x", "--type", "iscsi", "--path", "/x"});
  EXPECT_EQ(badtype.exit_code, 2);
  auto refresh = foundry({"--connect", kNode, "pool", "refresh", "foundry-images"});
  EXPECT_EQ(refresh.exit_code, 0) << refresh.err;
  EXPECT_NE(refresh.out.find("Refreshed pool 'foundry-images': 2 volumes"), std::string::npos) << refresh.out;
}

TEST(Cli, PoolAddPrintsXmlForEveryTypeWithoutAHypervisor) {
  // No --connect needed: --print-xml never connects.
  auto r = foundry({"--connect", "qemu+unix:///system?socket=/nonexistent", "pool", "add", "tank", "--type", "zfs",
                    "--source-name", "tank/vms", "--print-xml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("<pool type=\"zfs\">"), std::string::npos) << r.out;
  auto nfs = foundry({"pool", "add", "bulk", "--type", "netfs", "--source-host", "nas.example.com", "--source-path",
                      "/export", "--path", "/mnt/bulk", "--print-xml"});
  ASSERT_EQ(nfs.exit_code, 0) << nfs.err;
  EXPECT_NE(nfs.out.find("<dir path=\"/export\" />"), std::string::npos) << nfs.out;
}

TEST(Cli, ImageListInfoAndDeleteRefusedWhileUsed) {
  auto l = foundry({"--connect", kNode, "-o", "json", "image", "list"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  auto arr = json_of(l);
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0]["name"], "debian-12.qcow2");
  EXPECT_EQ(arr[0]["used_by"][0]["vm"], "web");
  EXPECT_TRUE(arr[1]["used_by"].empty());

  auto info = foundry({"--connect", kNode, "image", "info", "debian-12"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("web  foundry-vms  web_boot"), std::string::npos) << info.out;

  auto del = foundry({"--connect", kNode, "image", "delete", "debian-12.qcow2"});
  EXPECT_EQ(del.exit_code, 5);
  expect_one_line_error(del);
  EXPECT_NE(del.err.find("VM web (foundry-vms/web_boot)"), std::string::npos) << del.err;
  EXPECT_EQ(foundry({"--connect", kNode, "image", "delete", "debian-12", "--force"}).exit_code, 0);
  EXPECT_EQ(foundry({"--connect", kNode, "image", "delete", "unused"}).exit_code, 0);
  EXPECT_EQ(foundry({"--connect", kNode, "image", "info", "nope"}).exit_code, 5);
}

TEST(Cli, ImageImportChecks) {
  TempDir t;
  std::string zeros(4096, '\0');
  auto blank = t.file("blank.raw", zeros);
  auto qcow = t.file("fedora.qcow2", qcow2_bytes());
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  };
  std::vector<Case> cases = {
      {{"image", "import", blank, "--name", "blank.raw"}, 2, "not a bootable disk image"},
      {{"image", "import", qcow, "--name", "fedora-43.raw"}, 2, "format mismatch"},
      {{"image", "import", qcow, "--name", "fedora-43"}, 2, "must have a .qcow2 or .raw extension"},
      {{"image", "import", qcow, "--name", "debian-12.qcow2"}, 2, "exists already"},
      {{"image", "import", t.path.string() + "/absent.qcow2", "--name", "a.qcow2"}, 1, "cannot open image file"},
      // The test driver cannot receive uploads: the one step that needs a real
      // libvirtd (tests/e2e/virt) fails as a storage error and leaves nothing.
      {{"image", "import", qcow, "--name", "fedora-43.qcow2"}, 5, "upload"},
  };
  for (auto& c : cases) {
    auto args = c.args;
    args.insert(args.begin(), {"--connect", kNode});
    auto r = foundry(args);
    EXPECT_EQ(r.exit_code, c.code) << c.args[2] << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    expect_one_line_error(r);
  }
}

TEST(Cli, ImagePullChecks) {
  TempDir t;
  auto qcow = t.file("fedora.qcow2", qcow2_bytes());
  auto mismatch = foundry({"--connect", kNode, "image", "pull", "file://" + qcow, "--name", "fedora.qcow2",
                           "--checksum", "sha256:" + std::string(64, '0')});
  EXPECT_EQ(mismatch.exit_code, 2) << mismatch.err;
  EXPECT_NE(mismatch.err.find("checksum mismatch"), std::string::npos);
  auto badsum = foundry({"--connect", kNode, "image", "pull", "file://" + qcow, "--checksum", "md5:abc"});
  EXPECT_EQ(badsum.exit_code, 2);
  auto scheme = foundry({"--connect", kNode, "image", "pull", "ftp://127.0.0.1/x.qcow2"});
  EXPECT_EQ(scheme.exit_code, 2);
  auto gone = foundry({"--connect", kNode, "image", "pull", "file://" + t.path.string() + "/gone.qcow2"});
  EXPECT_EQ(gone.exit_code, 5);
  expect_one_line_error(gone);
}

TEST(Cli, StorageStatusNumbersAndJson) {
  auto r = foundry({"--connect", kNode, "-o", "json", "storage", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json_of(r);
  ASSERT_EQ(j["pools"].size(), 4u);
  ASSERT_EQ(j["vms"].size(), 1u);
  const auto& web = j["vms"][0];
  EXPECT_EQ(web["vm"], "web");
  EXPECT_EQ(web["image"], "debian-12.qcow2");
  EXPECT_EQ(web["volumes"].size(), 3u);
  uint64_t cap = 0, alloc = 0;
  for (const auto& v : web["volumes"]) {
    cap += v["capacity"].get<uint64_t>();
    alloc += v["allocation"].get<uint64_t>();
  }
  EXPECT_EQ(web["capacity"].get<uint64_t>(), (30ull << 30) + 376832);  // 20 GiB + 10 GiB + the ISO
  EXPECT_EQ(web["capacity"].get<uint64_t>(), cap);
  EXPECT_EQ(web["allocation"].get<uint64_t>(), alloc);
  for (const auto& p : j["pools"]) {
    EXPECT_EQ(p["free"], p["available"]);
    EXPECT_LE(p["allocation"].get<uint64_t>(), p["capacity"].get<uint64_t>());
  }
  auto t = foundry({"--connect", kNode, "storage", "status"});
  ASSERT_EQ(t.exit_code, 0);
  EXPECT_NE(t.out.find("web  foundry-vms  boot,cloudinit,data-vdb  debian-12.qcow2"), std::string::npos) << t.out;
}

TEST(Cli, ConnectionFailureExits3WithTheSocketInTheHint) {
  auto r = foundry({"--connect", "qemu+unix:///system?socket=/nonexistent/libvirt-sock", "pool", "list"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot connect to libvirt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: is libvirtd running?"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/libvirt-sock"), std::string::npos);
  EXPECT_EQ(r.err.find("detail:"), std::string::npos);  // library detail only with --verbose
  auto v = foundry({"-v", "--connect", "qemu+unix:///system?socket=/nonexistent/libvirt-sock", "storage", "status"});
  EXPECT_EQ(v.exit_code, 3);
  EXPECT_NE(v.err.find("detail: libvirt:"), std::string::npos) << v.err;
}

TEST(Cli, UriComesFromTheEnvironmentWhenNoFlag) {
  RunOptions o;
  o.extra_env = {"FOUNDRY_URI=" + kNode};
  auto r = run({kBinary, "-o", "json", "pool", "list"}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(json_of(*r).size(), 4u);
}

// The vm group through the binary on test:///default (its one domain
// "test", running). A VM without cloud-init needs no upload, which the test
// driver cannot receive, so create runs all the way here.
TEST(Cli, VmCreateListInfoDestroyOnTheTestDriver) {
  auto list = foundry({"--connect", "test:///default", "vm", "list", "--all"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("NAME", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("test"), std::string::npos) << list.out;
  auto jl = foundry({"--connect", "test:///default", "-o", "json", "vm", "list", "--all"});
  ASSERT_EQ(jl.exit_code, 0) << jl.err;
  ASSERT_EQ(json_of(jl).size(), 1u) << jl.out;
  EXPECT_EQ(json_of(jl)[0]["name"], "test");
  EXPECT_EQ(json_of(jl)[0]["state"], "running");

  auto info = foundry({"--connect", "test:///default", "-o", "json", "vm", "info", "test"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json_of(info)["name"], "test");
  EXPECT_GT(json_of(info)["vcpus"].get<int>(), 0);
  auto table = foundry({"--connect", "test:///default", "vm", "info", "test"});
  EXPECT_NE(table.out.find("State:"), std::string::npos) << table.out;
  auto none = foundry({"--connect", "test:///default", "vm", "info", "nope"});
  EXPECT_EQ(none.exit_code, 4);
  expect_one_line_error(none);

  TempDir t;
  auto file = t.file("blank.yaml", R"(name: blank
vcpus: 1
memory_gib: 1
boot_disk:
  size_gb: 2
  empty: true
data_disks:
  - device: vdb
    size_gb: 1
network_interfaces:
  - ip: 192.0.2.20/24
    gateway: 192.0.2.1
    bridge: br-none
accelerator: qemu
firmware: bios
)");
  auto create = foundry({"--connect", "test:///default", "--storage-path", t.path.string(), "vm", "create", file,
                         "--skip-bridge-check"});
  ASSERT_EQ(create.exit_code, 0) << create.out << create.err;
  for (auto s : {"Creating VM 'blank'...", "✓ Configuration validated", "✓ Storage created (2 GB boot + 1 GB data)",
                 "✓ Domain defined", "✓ VM started", "Successfully created VM 'blank'"})
    EXPECT_NE(create.out.find(s), std::string::npos) << s << "\n" << create.out;

  auto destroy = foundry({"--connect", "test:///default", "vm", "destroy", "test", "--timeout", "0"});
  ASSERT_EQ(destroy.exit_code, 0) << destroy.out << destroy.err;
  for (auto s : {"Destroying VM 'test'...", "✓ VM stopped", "✓ Domain undefined", "Successfully destroyed VM 'test'"})
    EXPECT_NE(destroy.out.find(s), std::string::npos) << s << "\n" << destroy.out;
  auto gone = foundry({"--connect", "test:///default", "vm", "destroy", "nope"});
  EXPECT_EQ(gone.exit_code, 4);
  expect_one_line_error(gone);
}

// image info and pool info as JSON: every listing has -o json.
TEST(Cli, ImageInfoJson) {
  auto r = foundry({"--connect", kNode, "-o", "json", "image", "info", "debian-12"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json_of(r);
  EXPECT_EQ(j["name"], "debian-12.qcow2");
  EXPECT_EQ(j["format"], "qcow2");
  ASSERT_EQ(j["used_by"].size(), 1u);
  EXPECT_EQ(j["used_by"][0]["vm"], "web");
  EXPECT_EQ(j["used_by"][0]["volume"], "web_boot");
}

// One layering for every group (vm, pool, image, storage): --connect /
// --storage-path > FOUNDRY_* > ~/.config/foundry/config.yaml > defaults.
TEST(Cli, ConfigFileEnvironmentAndFlagsLayerForEveryGroup) {
  TempDir home;
  std::filesystem::create_directories(home.path / ".config/foundry");
  home.file(".config/foundry/config.yaml", "uri: " + kNode + "\nimage_pool: scratch\nvm_pool: empty\n");
  auto with = [&](std::vector<std::string> args, std::vector<std::string> env) {
    args.insert(args.begin(), kBinary);
    RunOptions o;
    o.timeout = std::chrono::seconds(60);
    o.extra_env = {"HOME=" + home.path.string(), "XDG_CONFIG_HOME=", "FOUNDRY_CONFIG=", "FOUNDRY_URI=",
                   "FOUNDRY_IMAGE_POOL=", "FOUNDRY_VM_POOL=", "FOUNDRY_STORAGE_PATH="};
    o.extra_env.insert(o.extra_env.end(), env.begin(), env.end());
    auto r = run(args, o);
    EXPECT_TRUE(r);
    return r ? *r : RunResult{};
  };
  auto defaults_of = [&](const RunResult& r) {
    std::vector<std::string> names;
    for (const auto& p : json_of(r))
      if (p["default"] == true) names.push_back(p["name"]);
    return names;
  };

  // The user file alone: its URI and its pool names, in every group.
  auto pools = with({"-o", "json", "pool", "list"}, {});
  ASSERT_EQ(pools.exit_code, 0) << pools.err;
  EXPECT_EQ(defaults_of(pools), (std::vector<std::string>{"empty", "foundry-images", "foundry-vms", "scratch"}));
  auto images = with({"-o", "json", "image", "list"}, {});
  ASSERT_EQ(images.exit_code, 0) << images.err;
  ASSERT_EQ(json_of(images).size(), 1u) << images.out;
  EXPECT_EQ(json_of(images)[0]["name"], "leftover.qcow2");
  auto status = with({"-o", "json", "storage", "status"}, {});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto vms = with({"-o", "json", "vm", "list", "--all"}, {});
  ASSERT_EQ(vms.exit_code, 0) << vms.err;
  EXPECT_TRUE(json_of(vms).is_array()) << vms.out;
  auto destroy = with({"vm", "destroy", "nope"}, {});
  EXPECT_EQ(destroy.exit_code, 4) << destroy.err;
  EXPECT_NE(destroy.err.find("no volumes in pool empty"), std::string::npos) << destroy.err;

  // The environment beats the file.
  auto env_images = with({"-o", "json", "image", "list"}, {"FOUNDRY_IMAGE_POOL=foundry-images"});
  ASSERT_EQ(env_images.exit_code, 0) << env_images.err;
  EXPECT_EQ(json_of(env_images)[0]["name"], "debian-12.qcow2");
  auto env_uri = with({"pool", "list"}, {"FOUNDRY_URI=qemu+unix:///system?socket=/nonexistent/sock"});
  EXPECT_EQ(env_uri.exit_code, 3) << env_uri.err;

  // A flag beats the environment.
  auto flag_uri = with({"--connect", kNode, "-o", "json", "pool", "list"},
                       {"FOUNDRY_URI=qemu+unix:///system?socket=/nonexistent/sock"});
  EXPECT_EQ(flag_uri.exit_code, 0) << flag_uri.err;
  auto flag_pool = with({"-o", "json", "vm", "destroy", "nope", "--pool", "scratch"}, {"FOUNDRY_VM_POOL=empty"});
  EXPECT_NE(flag_pool.err.find("no volumes in pool scratch"), std::string::npos) << flag_pool.err;

  // A broken value in any layer is a configuration error (exit 1) naming it.
  auto bad_env = with({"pool", "list"}, {"FOUNDRY_STORAGE_PATH=relative"});
  EXPECT_EQ(bad_env.exit_code, 1) << bad_env.err;
  EXPECT_NE(bad_env.err.find("FOUNDRY_STORAGE_PATH"), std::string::npos) << bad_env.err;
  auto bad_flag = with({"--storage-path", "relative", "image", "list"}, {});
  EXPECT_EQ(bad_flag.exit_code, 1) << bad_flag.err;
  home.file(".config/foundry/config.yaml", "uri: " + kNode + "\nstorage_path: 42 relative\n");
  auto bad_file = with({"storage", "status"}, {});
  EXPECT_EQ(bad_file.exit_code, 1) << bad_file.err;
  EXPECT_NE(bad_file.err.find(".config/foundry/config.yaml"), std::string::npos) << bad_file.err;
}

TEST(Cli, UsageErrorsExit1AndHelpHasExamples) {
  EXPECT_EQ(foundry({"pool"}).exit_code, 1);
  EXPECT_EQ(foundry({"pool", "info"}).exit_code, 1);
  EXPECT_EQ(foundry({"image", "bogus"}).exit_code, 1);
  for (auto group : {"pool", "image", "storage"}) {
    auto h = foundry({group, "--help"});
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.out.find("DESCRIPTION:"), std::string::npos) << group;
  }
  auto h = foundry({"image", "pull", "--help"});
  EXPECT_NE(h.out.find("EXAMPLES:"), std::string::npos);
  EXPECT_NE(h.out.find("EXIT CODES:"), std::string::npos);
}

}  // namespace
}  // namespace foundry
