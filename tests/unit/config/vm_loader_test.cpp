// The VM file loader: examples and valid files load with the right values and
// defaults; every file of the invalid corpus (tests/data/vm/invalid) fails
// with a Validation error at the line and field its header names.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/config/vm_config.h"

namespace fs = std::filesystem;
using namespace foundry;
using namespace foundry::config;
using ::testing::HasSubstr;

namespace {

const std::string kSource = FOUNDRY_SOURCE_DIR;
const std::string kValid = kSource + "/tests/data/vm/valid/";
const std::string kInvalid = kSource + "/tests/data/vm/invalid/";

VmConfig load_ok(const std::string& path) {
  auto r = load_vm_file(path);
  if (!r) {
    std::string all;
    for (const auto& d : r.error().diagnostics()) all += d.to_string() + "\n";
    ADD_FAILURE() << path << ": " << r.error().to_string() << "\n" << all;
    return {};
  }
  return *r;
}

std::string dump(const Error& e) {
  std::string out = e.to_string() + "\n";
  for (const auto& d : e.diagnostics()) out += "  " + d.to_string() + "\n";
  return out;
}

// A minimal valid VM in YAML, for tests that change one thing.
const std::string kMinimal = R"(name: t1
vcpus: 1
memory_gib: 1
boot_disk:
  size_gb: 1
  image: debian-12
network_interfaces:
  - ip: 10.0.0.2/24
    gateway: 10.0.0.1
    bridge: br0
)";

}  // namespace

// ---------------------------------------------------------------------------
// Examples and valid files

TEST(VmExamples, AllExamplesLoad) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(kSource + "/examples")) {
    auto name = e.path().filename().string();
    // config.yaml is Foundry's own configuration, cluster.yaml a cluster file (platform tests).
    if (e.path().extension() != ".yaml" || name == "config.yaml" || name == "cluster.yaml") continue;
    auto vm = load_ok(e.path().string());
    EXPECT_FALSE(vm.name.empty()) << name;
    EXPECT_EQ(vm.source_file, e.path().string());
    ++n;
  }
  EXPECT_GE(n, 3);
}

TEST(VmExamples, SimpleVmMatchesTheSeedShape) {
  auto vm = load_ok(kSource + "/examples/simple-vm.yaml");
  EXPECT_EQ(vm.name, "my-vm");
  EXPECT_EQ(vm.vcpus, 2u);
  EXPECT_EQ(vm.memory_gib, 4u);
  EXPECT_EQ(vm.boot_disk.image, "debian-12");
  EXPECT_EQ(vm.boot_disk.image_kind, ImageKind::PoolVolume);
  ASSERT_EQ(vm.network_interfaces.size(), 1u);
  EXPECT_EQ(vm.network_interfaces[0].ip.to_string(), "10.55.22.22/24");
  EXPECT_EQ(net::derive_mac_from_ip(vm.network_interfaces[0].ip.addr), "be:ef:0a:37:16:16");
  EXPECT_TRUE(vm.network_interfaces[0].default_route);
  ASSERT_TRUE(vm.cloud_init);
  EXPECT_EQ(vm.cloud_init->hostname, "my-vm");
  EXPECT_EQ(vm.cloud_init->fqdn, "my-vm.example.com");
  EXPECT_EQ(vm.cloud_init->ssh_keys.size(), 1u);
}

TEST(VmExamples, MultiDiskNormalizesAndKeepsOrder) {
  auto vm = load_ok(kSource + "/examples/multi-disk-vm.yaml");
  EXPECT_EQ(vm.name, "db-01");
  EXPECT_EQ(vm.boot_disk.image_kind, ImageKind::Path);
  EXPECT_EQ(vm.boot_disk.image, "/var/lib/libvirt/images/fedora-42.qcow2");
  ASSERT_EQ(vm.data_disks.size(), 2u);
  EXPECT_EQ(vm.data_disks[0].device, "vdb");
  EXPECT_EQ(vm.data_disks[0].size_gb, 100u);
  EXPECT_EQ(vm.data_disks[1].device, "vdc");
  EXPECT_EQ(vm.data_disks[1].size_gb, 200u);
  ASSERT_EQ(vm.network_interfaces.size(), 2u);
  EXPECT_TRUE(vm.network_interfaces[0].default_route);
  EXPECT_FALSE(vm.network_interfaces[1].default_route);
  EXPECT_EQ(vm.network_interfaces[0].dns_servers, (std::vector<std::string>{"192.0.2.53", "2001:db8::53"}));
  ASSERT_TRUE(vm.cloud_init);
  EXPECT_EQ(vm.cloud_init->fqdn, "db-01.example.com");
  EXPECT_EQ(vm.cloud_init->hostname, "db-01");
  EXPECT_EQ(vm.cloud_init->ssh_keys.size(), 2u);
  EXPECT_THAT(vm.cloud_init->root_password_hash, ::testing::StartsWith("$6$"));
  EXPECT_EQ(vm.cpu_mode, CpuMode::HostPassthrough);
}

TEST(VmExamples, CustomPoolSetsSiteKeys) {
  auto vm = load_ok(kSource + "/examples/custom-pool-vm.yaml");
  EXPECT_EQ(vm.storage_pool, "foundry-ssd");
  EXPECT_TRUE(vm.storage_pool_set);
  EXPECT_EQ(vm.accelerator, Accelerator::Qemu);
  EXPECT_TRUE(vm.accelerator_set);
  EXPECT_TRUE(vm.firmware_set);
  EXPECT_FALSE(vm.autostart);
}

TEST(VmLoader, DefaultsForOmittedFields) {
  auto vm = load_ok(kValid + "minimal.yaml");
  EXPECT_EQ(vm.cpu_mode, CpuMode::HostModel);
  EXPECT_TRUE(vm.autostart);
  EXPECT_EQ(vm.storage_pool, "foundry-vms");
  EXPECT_FALSE(vm.storage_pool_set);
  EXPECT_EQ(vm.boot_disk.format, DiskFormat::Qcow2);
  EXPECT_FALSE(vm.boot_disk.empty);
  EXPECT_EQ(vm.accelerator, Accelerator::Kvm);
  EXPECT_FALSE(vm.accelerator_set);
  EXPECT_EQ(vm.firmware, Firmware::Uefi);
  EXPECT_FALSE(vm.firmware_set);
  EXPECT_TRUE(vm.firmware_path.empty());
  EXPECT_FALSE(vm.cloud_init.has_value());
  EXPECT_TRUE(vm.data_disks.empty());
  ASSERT_EQ(vm.network_interfaces.size(), 1u);
  EXPECT_TRUE(vm.network_interfaces[0].default_route);
  EXPECT_TRUE(vm.network_interfaces[0].dns_servers.empty());
}

TEST(VmLoader, EmptyBootDiskFlowStyleAndSlash31) {
  auto vm = load_ok(kValid + "empty-boot-disk.yaml");
  EXPECT_EQ(vm.name, "blank_disk-vm");
  EXPECT_TRUE(vm.boot_disk.empty);
  EXPECT_EQ(vm.boot_disk.image_kind, ImageKind::None);
  EXPECT_TRUE(vm.boot_disk.image.empty());
  EXPECT_EQ(vm.boot_disk.format, DiskFormat::Raw);
  ASSERT_EQ(vm.network_interfaces.size(), 2u);
  EXPECT_EQ(vm.network_interfaces[0].ip.prefix, 31);
  EXPECT_TRUE(vm.network_interfaces[0].default_route);
  EXPECT_FALSE(vm.network_interfaces[1].default_route);  // default false after the first
  EXPECT_EQ(vm.network_interfaces[1].bridge, "br-storage.10");
}

TEST(VmLoader, AllFields) {
  auto vm = load_ok(kValid + "all-fields.yaml");
  EXPECT_EQ(vm.name, "all-fields");
  EXPECT_EQ(vm.vcpus, 16u);
  EXPECT_EQ(vm.memory_gib, 64u);
  EXPECT_EQ(vm.boot_disk.size_gb, 100u);
  EXPECT_EQ(vm.boot_disk.image_kind, ImageKind::Path);
  ASSERT_EQ(vm.data_disks.size(), 3u);
  EXPECT_EQ(vm.data_disks[2].device, "vdaa");
  ASSERT_EQ(vm.network_interfaces.size(), 2u);
  EXPECT_FALSE(vm.network_interfaces[0].default_route);
  EXPECT_TRUE(vm.network_interfaces[1].default_route);
  EXPECT_EQ(vm.network_interfaces[0].dns_servers.size(), 3u);
  ASSERT_TRUE(vm.cloud_init);
  EXPECT_EQ(vm.cloud_init->fqdn, "all-fields.lab.example.com");
  EXPECT_EQ(vm.cloud_init->hostname, "all-fields");
  ASSERT_EQ(vm.cloud_init->ssh_keys.size(), 7u);
  // Surrounding whitespace is not part of a key.
  EXPECT_EQ(vm.cloud_init->ssh_keys[6], vm.cloud_init->ssh_keys[0]);
  EXPECT_TRUE(vm.cloud_init->ssh_pwauth);
  EXPECT_EQ(vm.cpu_mode, CpuMode::HostPassthrough);
  EXPECT_FALSE(vm.autostart);
  EXPECT_EQ(vm.storage_pool, "foundry-ssd");
  EXPECT_EQ(vm.accelerator, Accelerator::Qemu);
  EXPECT_EQ(vm.firmware, Firmware::Uefi);
  EXPECT_EQ(vm.firmware_path, "/usr/share/OVMF/OVMF_CODE_4M.fd");
}

TEST(VmLoader, HostnameFromNameWithoutFqdn) {
  auto vm = load_ok(kValid + "cloud-init-no-fqdn.yaml");
  ASSERT_TRUE(vm.cloud_init);
  EXPECT_TRUE(vm.cloud_init->fqdn.empty());
  EXPECT_EQ(vm.cloud_init->hostname, "db-replica-2");
  EXPECT_EQ(vm.firmware, Firmware::Bios);
}

TEST(VmLoader, StringInputUsesNameForMessages) {
  auto vm = load_vm_yaml(kMinimal, "inline");
  ASSERT_TRUE(vm) << dump(vm.error());
  EXPECT_EQ(vm->source_file, "");
  auto bad = load_vm_yaml(kMinimal + "vcpus: 2\n", "inline.yaml");
  ASSERT_FALSE(bad);
  ASSERT_EQ(bad.error().diagnostics().size(), 1u);
  EXPECT_EQ(bad.error().diagnostics()[0].file, "inline.yaml");
  EXPECT_EQ(bad.error().message(), "inline.yaml: 1 problem");
}

TEST(VmLoader, Utf8ByteOrderMarkIsAccepted) {
  auto vm = load_vm_yaml("\xef\xbb\xbf" + kMinimal, "bom.yaml");
  EXPECT_TRUE(vm) << dump(vm.error());
}

TEST(VmLoader, NonAsciiNameIsRejectedNotMangled) {
  std::string text = kMinimal;
  text.replace(text.find("t1"), 2, "caf\xc3\xa9");
  auto vm = load_vm_yaml(text, "x.yaml");
  ASSERT_FALSE(vm);
  ASSERT_EQ(vm.error().diagnostics().size(), 1u);
  EXPECT_EQ(vm.error().diagnostics()[0].field, "name");
}

// ---------------------------------------------------------------------------
// Errors: kinds and collection

TEST(VmLoaderErrors, MissingFileIsAConfigError) {
  auto r = load_vm_file(kInvalid + "does-not-exist.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  EXPECT_EQ(r.error().exit_code(), 1);
  EXPECT_EQ(r.error().sys_errno(), ENOENT);
  EXPECT_THAT(r.error().to_string(), HasSubstr("does-not-exist.yaml"));
}

TEST(VmLoaderErrors, DirectoryIsAConfigError) {
  auto r = load_vm_file(kInvalid);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
}

TEST(VmLoaderErrors, UnreadableFileIsAConfigError) {
  auto dir = fs::temp_directory_path() / ("foundry-config-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
  auto path = (dir / "vm.yaml").string();
  ASSERT_TRUE(write_file_atomic(path, kMinimal, 0000));
  // Root reads any file whatever its mode, so check from a child that gave
  // up root (uid/gid nobody); as a normal user check directly.
  auto check = [&]() -> int {
    auto r = load_vm_file(path);
    if (r) return 10;
    if (r.error().kind() != ErrorKind::Config) return 11;
    if (r.error().sys_errno() != EACCES) return 12;
    return 0;
  };
  int rc;
  if (::geteuid() == 0) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
      ::_exit(check());
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 30;
  } else {
    rc = check();
  }
  fs::remove_all(dir);
  EXPECT_EQ(rc, 0) << "10: loaded, 11: wrong kind, 12: wrong errno, 20: could not drop root";
}

TEST(VmLoaderErrors, EveryProblemOfAFileIsReported) {
  const std::string text = R"(name: -Bad
vcpus: "4"
memory: 8
boot_disk:
  size_gb: 2.5
  image: fedora
  empty: true
data_disks:
  - device: vdb
    size_gb: 10
  - device: vdb
    size_gb: 10
network_interfaces:
  - ip: 10.20.30.40
    gateway: 10.20.31.1
    bridge: br0/x
  - ip: 10.20.30.41/24
    gateway: 10.20.31.1
    bridge: br1
    default_route: yes
cloud_init:
  fqdn: host_1.example.com
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo..."]
  root_password_hash: secret
cpu_mode: host_model
vcpus: 3
)";
  auto r = load_vm_yaml(text, "many.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_EQ(r.error().exit_code(), 2);
  // line -> field, one per problem planted above
  std::multimap<int, std::string> want = {
      {1, "memory_gib"},                     // missing (reported at the top mapping)
      {1, "name"},                           // starts with '-'
      {2, "vcpus"},                          // quoted number
      {3, "memory"},                         // unknown key (did you mean memory_gib?)
      {5, "boot_disk.size_gb"},              // float
      {7, "boot_disk.empty"},                // image and empty: true
      {11, "data_disks[1].device"},          // duplicate device
      {14, "network_interfaces[0].ip"},      // no prefix
      {16, "network_interfaces[0].bridge"},  // '/'
      {18, "network_interfaces[1].gateway"}, // outside the subnet
      {20, "network_interfaces[1].default_route"},  // yes
      {22, "cloud_init.fqdn"},               // '_'
      {23, "cloud_init.ssh_keys[0]"},        // the seed's placeholder key
      {24, "cloud_init.root_password_hash"}, // no '$'
      {25, "cpu_mode"},                      // host_model
      {26, "vcpus"},                         // duplicate key
  };
  std::multimap<int, std::string> got;
  for (const auto& d : r.error().diagnostics()) {
    got.emplace(d.line, d.field);
    EXPECT_EQ(d.file, "many.yaml");
    EXPECT_GT(d.column, 0) << d.to_string();
    EXPECT_FALSE(d.message.empty());
  }
  EXPECT_EQ(got, want) << dump(r.error());
  EXPECT_EQ(r.error().message(), fmt::format("many.yaml: {} problems", want.size()));
  // Sorted by position, so the output reads top to bottom.
  const auto& ds = r.error().diagnostics();
  EXPECT_TRUE(std::is_sorted(ds.begin(), ds.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  }));
}

TEST(VmLoaderErrors, UnknownKeySuggestsTheClosestKnownKey) {
  auto r = load_vm_yaml(kMinimal + "autostrat: true\n", "x.yaml");
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().diagnostics().size(), 1u);
  EXPECT_EQ(r.error().diagnostics()[0].hint, "did you mean autostart?");
  r = load_vm_yaml(kMinimal + "ram: 4\n", "x.yaml");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().diagnostics()[0].hint, HasSubstr("known keys here: name, vcpus, memory_gib"));
}

TEST(VmLoaderErrors, DiagnosticPrintsFileLineColumnFieldAndHint) {
  auto r = load_vm_yaml(kMinimal + "cpu_mode: host_model\n", "vm.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().diagnostics()[0].to_string(),
            "vm.yaml:11:11: cpu_mode: \"host_model\" is not one of host-model, host-passthrough "
            "(hint: did you mean host-model?)");
}

TEST(VmLoaderErrors, ManyProblemsAreCappedButCounted) {
  std::string text = kMinimal + "data_disks:\n";
  for (int i = 0; i < 300; ++i) text += "  - {device: vda, size_gb: 1}\n";
  auto r = load_vm_yaml(text, "x.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().diagnostics().size(), 100u);
  EXPECT_EQ(r.error().message(), "x.yaml: 300 problems");
  EXPECT_THAT(r.error().hint(), HasSubstr("first 100"));
}

TEST(VmLoaderErrors, HugeFileIsRefusedBeforeParsing) {
  std::string text = kMinimal + "# " + std::string(2 << 20, 'x') + "\n";
  auto r = load_vm_yaml(text, "big.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_THAT(r.error().diagnostics()[0].message, HasSubstr("bytes"));
}

TEST(VmLoaderErrors, CyclicAliasDoesNotHang) {
  auto r = load_vm_yaml(kMinimal + "data_disks: &a [*a]\n", "x.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().diagnostics()[0].field, "data_disks[0]");
}

// ---------------------------------------------------------------------------
// The invalid corpus. Each file names what it expects in its header:
//   # expect: LINE FIELD      (FIELD "-" = the file as a whole)
// or, when it cannot carry a header (empty, binary, UTF-16), in the EXPECT
// table of the directory. The file must fail with a Validation error (exit 2)
// and exactly the expected diagnostics: no problem missed, none invented.

namespace {

struct Expect {
  int line;
  std::string field;
  bool operator<(const Expect& o) const { return std::tie(line, field) < std::tie(o.line, o.field); }
  bool operator==(const Expect& o) const = default;
};

std::map<std::string, std::vector<Expect>> table_expectations() {
  std::map<std::string, std::vector<Expect>> out;
  std::ifstream in(kInvalid + "EXPECT");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string file, field;
    int l = 0;
    ls >> file >> l >> field;
    out[file].push_back({l, field == "-" ? "" : field});
  }
  return out;
}

std::vector<Expect> expectations(const std::string& file) {
  static const auto table = table_expectations();
  if (auto it = table.find(file); it != table.end()) return it->second;
  std::vector<Expect> out;
  std::ifstream in(kInvalid + file, std::ios::binary);
  std::string line;
  while (std::getline(in, line) && line.starts_with("#")) {
    if (!line.starts_with("# expect: ")) continue;
    std::istringstream ls(line.substr(10));
    Expect e{0, ""};
    ls >> e.line >> e.field;
    if (e.field == "-") e.field.clear();
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kInvalid))
    if (e.path().extension() == ".yaml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class InvalidCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidCorpus, FailsWithValidationAtTheExpectedLineAndField) {
  const std::string file = GetParam();
  auto want = expectations(file);
  ASSERT_FALSE(want.empty()) << file << " has no '# expect: LINE FIELD' header and no EXPECT entry";
  auto r = load_vm_file(kInvalid + file);
  ASSERT_FALSE(r) << file << " loaded without error";
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::Validation) << dump(e);
  EXPECT_EQ(e.exit_code(), 2);
  std::vector<Expect> got;
  for (const auto& d : e.diagnostics()) {
    got.push_back({d.line, d.field});
    EXPECT_EQ(d.file, kInvalid + file);
    EXPECT_FALSE(d.message.empty());
    EXPECT_THAT(d.to_string(), HasSubstr(fmt::format("{}:{}:", file, d.line)));
  }
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  auto show = [](const std::vector<Expect>& v) {
    std::string s;
    for (const auto& x : v) s += fmt::format(" {}:{}", x.line, x.field.empty() ? "-" : x.field);
    return s;
  };
  EXPECT_EQ(got, want) << "want" << show(want) << "\ngot" << show(got) << "\n" << dump(e);
}

INSTANTIATE_TEST_SUITE_P(Files, InvalidCorpus, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           const std::string& f = param_info.param;
                           std::string n = f.substr(0, f.size() - 5);
                           std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(c); }, '_');
                           return n;
                         });

TEST(InvalidCorpusCoverage, AtLeastFortyFiles) { EXPECT_GE(corpus_files().size(), 40u); }
