// config.yaml and the layers: flag > environment > user file > system file >
// default. Files and environment are injected; nothing reads the real $HOME,
// /etc or process environment (except the from_process test, which only
// looks at how paths are derived).
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "foundry/common/file.h"
#include "foundry/config/foundry_config.h"

namespace fs = std::filesystem;
using namespace foundry;
using namespace foundry::config;
using ::testing::HasSubstr;

namespace {

// A private directory for the test's config files, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "foundry-config-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ + "/" + name;
    EXPECT_TRUE(write_file_atomic(p, text));
    return p;
  }
  std::string path(const std::string& name) const { return path_ + "/" + name; }
  const std::string& root() const { return path_; }

 private:
  std::string path_;
};

std::string dump(const Error& e) {
  std::string out = e.to_string() + "\n";
  for (const auto& d : e.diagnostics()) out += "  " + d.to_string() + "\n";
  return out;
}

FoundryConfig resolve_ok(const ConfigValues& flags, const ConfigEnvironment& env) {
  auto r = resolve_config(flags, env);
  if (!r) {
    ADD_FAILURE() << dump(r.error());
    return {};
  }
  return *r;
}

}  // namespace

TEST(ConfigFile, ExampleLoads) {
  auto v = load_config_file(std::string(FOUNDRY_SOURCE_DIR) + "/examples/config.yaml");
  ASSERT_TRUE(v) << dump(v.error());
  EXPECT_EQ(v->uri, "qemu:///system");
  EXPECT_EQ(v->vm_pool, "foundry-vms");
  EXPECT_EQ(v->image_pool, "foundry-images");
  EXPECT_EQ(v->storage_path, "/var/lib/libvirt/images/foundry");
  EXPECT_EQ(v->accelerator, Accelerator::Kvm);
  EXPECT_EQ(v->firmware, Firmware::Uefi);
  EXPECT_FALSE(v->firmware_path);
}

TEST(ConfigFile, OnlyTheKeysGivenAreSet) {
  auto v = load_config_yaml("vm_pool: fast\nstorage_path: /srv/foundry/\n", "c.yaml");
  ASSERT_TRUE(v) << dump(v.error());
  EXPECT_EQ(v->vm_pool, "fast");
  EXPECT_EQ(v->storage_path, "/srv/foundry");  // trailing '/' dropped
  EXPECT_FALSE(v->uri);
  EXPECT_FALSE(v->image_pool);
  EXPECT_FALSE(v->accelerator);
}

TEST(ConfigFile, ProblemsAreConfigErrorsWithDiagnostics) {
  auto v = load_config_yaml(
      "uri: system\n"          // 1: not a URI
      "vm_pool: a/b\n"         // 2: bad pool name
      "image_pol: images\n"    // 3: unknown key, did you mean image_pool
      "accelerator: kvm2\n"    // 4: not kvm|qemu
      "storage_path: rel\n"    // 5: not absolute
      "vm_pool: again\n",      // 6: duplicate
      "c.yaml");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().kind(), ErrorKind::Config);
  EXPECT_EQ(v.error().message(), "c.yaml: 6 problems");
  std::vector<std::pair<int, std::string>> got;
  for (const auto& d : v.error().diagnostics()) got.emplace_back(d.line, d.field);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{{1, "uri"},
                                                           {2, "vm_pool"},
                                                           {3, "image_pol"},
                                                           {4, "accelerator"},
                                                           {5, "storage_path"},
                                                           {6, "vm_pool"}}))
      << dump(v.error());
  EXPECT_EQ(v.error().diagnostics()[2].hint, "did you mean image_pool?");
}

TEST(ConfigFile, SyntaxErrorAndEmptyFile) {
  auto v = load_config_yaml("uri: [qemu\n", "c.yaml");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().kind(), ErrorKind::Config);
  EXPECT_THAT(v.error().diagnostics()[0].message, HasSubstr("YAML syntax error"));
  v = load_config_yaml("# nothing\n", "c.yaml");
  ASSERT_FALSE(v);
  EXPECT_THAT(v.error().diagnostics()[0].message, HasSubstr("empty"));
}

TEST(ConfigLayers, DefaultsWhenNothingIsSet) {
  auto cfg = resolve_ok({}, ConfigEnvironment::from_map({}));
  EXPECT_EQ(cfg.uri, "qemu:///system");
  EXPECT_EQ(cfg.vm_pool, "foundry-vms");
  EXPECT_EQ(cfg.image_pool, "foundry-images");
  EXPECT_EQ(cfg.storage_path, "/var/lib/libvirt/images/foundry");
  EXPECT_EQ(cfg.accelerator, Accelerator::Kvm);
  EXPECT_EQ(cfg.firmware, Firmware::Uefi);
  EXPECT_TRUE(cfg.firmware_path.empty());
  EXPECT_EQ(cfg.vm_pool_origin.kind, OriginKind::Default);
  EXPECT_EQ(cfg.vm_pool_origin.describe(), "default");
  EXPECT_TRUE(cfg.files_read.empty());
}

TEST(ConfigLayers, EachLayerOverridesTheOneBelow) {
  TempDir dir;
  auto env = ConfigEnvironment::from_map({{"FOUNDRY_VM_POOL", "env-vms"}, {"FOUNDRY_URI", "qemu:///session"}});
  env.system_file = dir.write("etc.yaml",
                              "uri: qemu+ssh://sys/system\n"
                              "vm_pool: sys-vms\n"
                              "image_pool: sys-images\n"
                              "storage_path: /srv/sys\n"
                              "accelerator: qemu\n");
  env.user_file = dir.write("user.yaml",
                            "vm_pool: user-vms\n"
                            "image_pool: user-images\n"
                            "uri: qemu+ssh://user/system\n");
  ConfigValues flags;
  flags.uri = "test:///default";

  auto cfg = resolve_ok(flags, env);
  EXPECT_EQ(cfg.uri, "test:///default");  // flag beats env, user and system
  EXPECT_EQ(cfg.uri_origin.kind, OriginKind::Flag);
  EXPECT_EQ(cfg.vm_pool, "env-vms");  // env beats user and system
  EXPECT_EQ(cfg.vm_pool_origin.kind, OriginKind::Env);
  EXPECT_EQ(cfg.vm_pool_origin.describe(), "FOUNDRY_VM_POOL");
  EXPECT_EQ(cfg.image_pool, "user-images");  // user beats system
  EXPECT_EQ(cfg.image_pool_origin.kind, OriginKind::UserFile);
  EXPECT_EQ(cfg.image_pool_origin.source, env.user_file);
  EXPECT_EQ(cfg.storage_path, "/srv/sys");  // system beats default
  EXPECT_EQ(cfg.storage_path_origin.kind, OriginKind::SystemFile);
  EXPECT_EQ(cfg.accelerator, Accelerator::Qemu);
  EXPECT_EQ(cfg.firmware, Firmware::Uefi);  // default
  EXPECT_EQ(cfg.firmware_origin.kind, OriginKind::Default);
  EXPECT_EQ(cfg.files_read, (std::vector<std::string>{env.system_file, env.user_file}));
}

TEST(ConfigLayers, EveryKeyHasAnEnvironmentVariable) {
  auto env = ConfigEnvironment::from_map({{"FOUNDRY_URI", "qemu:///session"},
                                          {"FOUNDRY_VM_POOL", "v"},
                                          {"FOUNDRY_IMAGE_POOL", "i"},
                                          {"FOUNDRY_STORAGE_PATH", "/srv/f/"},
                                          {"FOUNDRY_ACCELERATOR", "qemu"},
                                          {"FOUNDRY_FIRMWARE", "bios"},
                                          {"FOUNDRY_FIRMWARE_PATH", "/x/OVMF_CODE.fd"}});
  auto cfg = resolve_ok({}, env);
  EXPECT_EQ(cfg.uri, "qemu:///session");
  EXPECT_EQ(cfg.vm_pool, "v");
  EXPECT_EQ(cfg.image_pool, "i");
  EXPECT_EQ(cfg.storage_path, "/srv/f");
  EXPECT_EQ(cfg.accelerator, Accelerator::Qemu);
  EXPECT_EQ(cfg.firmware, Firmware::Bios);
  EXPECT_EQ(cfg.firmware_path, "/x/OVMF_CODE.fd");
  EXPECT_EQ(cfg.accelerator_origin.describe(), "FOUNDRY_ACCELERATOR");
}

TEST(ConfigLayers, EmptyEnvironmentValueCountsAsUnset) {
  auto cfg = resolve_ok({}, ConfigEnvironment::from_map({{"FOUNDRY_VM_POOL", ""}}));
  EXPECT_EQ(cfg.vm_pool, "foundry-vms");
  EXPECT_EQ(cfg.vm_pool_origin.kind, OriginKind::Default);
}

TEST(ConfigLayers, BadEnvironmentValuesAreReportedTogether) {
  auto r = resolve_config({}, ConfigEnvironment::from_map({{"FOUNDRY_VM_POOL", "a b"},
                                                           {"FOUNDRY_ACCELERATOR", "kvn"},
                                                           {"FOUNDRY_STORAGE_PATH", "relative"}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  ASSERT_EQ(r.error().diagnostics().size(), 3u) << dump(r.error());
  std::vector<std::string> fields;
  for (const auto& d : r.error().diagnostics()) {
    fields.push_back(d.field);
    EXPECT_EQ(d.file, "environment");
  }
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("FOUNDRY_VM_POOL", "FOUNDRY_ACCELERATOR",
                                                      "FOUNDRY_STORAGE_PATH"));
  for (const auto& d : r.error().diagnostics())
    if (d.field == "FOUNDRY_ACCELERATOR") {
      EXPECT_EQ(d.hint, "did you mean kvm?");
    }
}

TEST(ConfigLayers, BadFlagValuesAreConfigErrors) {
  ConfigValues flags;
  flags.vm_pool = "no/slash";
  auto r = resolve_config(flags, ConfigEnvironment::from_map({}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  EXPECT_EQ(r.error().diagnostics().at(0).field, "vm_pool");
}

TEST(ConfigLayers, MissingFilesAreSkippedInvalidOnesAreNot) {
  TempDir dir;
  auto env = ConfigEnvironment::from_map({});
  env.system_file = dir.path("absent.yaml");
  env.user_file = dir.write("user.yaml", "vm_pol: x\n");
  auto r = resolve_config({}, env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  EXPECT_EQ(r.error().diagnostics().at(0).file, env.user_file);
  EXPECT_EQ(r.error().diagnostics().at(0).line, 1);

  env.user_file = dir.write("user.yaml", "vm_pool: x\n");
  auto cfg = resolve_ok({}, env);
  EXPECT_EQ(cfg.vm_pool, "x");
  EXPECT_EQ(cfg.files_read, std::vector<std::string>{env.user_file});
}

TEST(ConfigLayers, UnreadableFileIsAnError) {
  TempDir dir;
  auto env = ConfigEnvironment::from_map({});
  env.user_file = dir.root();  // exists but is a directory: not "missing"
  auto r = resolve_config({}, env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
}

TEST(ConfigLayers, FoundryConfigReplacesBothFilesAndMustExist) {
  TempDir dir;
  auto env = ConfigEnvironment::from_map({});
  env.system_file = dir.write("etc.yaml", "vm_pool: sys\nimage_pool: sys-img\n");
  env.user_file = dir.write("user.yaml", "vm_pool: user\n");
  env.explicit_file = dir.write("only.yaml", "image_pool: only-img\n");
  auto cfg = resolve_ok({}, env);
  EXPECT_EQ(cfg.vm_pool, "foundry-vms");  // neither etc nor user was read
  EXPECT_EQ(cfg.image_pool, "only-img");
  EXPECT_EQ(cfg.files_read, std::vector<std::string>{env.explicit_file});

  env.explicit_file = dir.path("missing.yaml");
  auto r = resolve_config({}, env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno(), ENOENT);
}

TEST(ConfigLayers, FromProcessDerivesTheUserFile) {
  // Only checks how the path is derived from HOME / XDG_CONFIG_HOME: the
  // variables are set for this process and restored.
  auto keep = [](const char* n) {
    const char* v = ::getenv(n);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto home = keep("HOME"), xdg = keep("XDG_CONFIG_HOME"), fc = keep("FOUNDRY_CONFIG");
  ::setenv("HOME", "/home/tester", 1);
  ::unsetenv("XDG_CONFIG_HOME");
  ::unsetenv("FOUNDRY_CONFIG");
  auto e1 = ConfigEnvironment::from_process();
  ::setenv("XDG_CONFIG_HOME", "/xdg", 1);
  ::setenv("FOUNDRY_CONFIG", "/tmp/f.yaml", 1);
  auto e2 = ConfigEnvironment::from_process();
  auto restore = [](const char* n, const std::optional<std::string>& v) {
    if (v) ::setenv(n, v->c_str(), 1);
    else ::unsetenv(n);
  };
  restore("HOME", home);
  restore("XDG_CONFIG_HOME", xdg);
  restore("FOUNDRY_CONFIG", fc);
  EXPECT_EQ(e1.user_file, "/home/tester/.config/foundry/config.yaml");
  EXPECT_EQ(e1.system_file, "/etc/foundry/config.yaml");
  EXPECT_TRUE(e1.explicit_file.empty());
  EXPECT_EQ(e2.user_file, "/xdg/foundry/config.yaml");
  EXPECT_EQ(e2.explicit_file, "/tmp/f.yaml");
}

TEST(SiteConfig, VmFileBeatsSiteDefaultsButNotFlags) {
  const std::string base = R"(name: t1
vcpus: 1
memory_gib: 1
boot_disk: {size_gb: 1, image: debian-12}
network_interfaces: [{ip: 10.0.0.2/24, gateway: 10.0.0.1, bridge: br0}]
)";
  auto plain = load_vm_yaml(base, "a.yaml").value();
  auto pinned = load_vm_yaml(base + "storage_pool: file-pool\naccelerator: kvm\n", "b.yaml").value();

  auto site = resolve_ok({}, ConfigEnvironment::from_map({{"FOUNDRY_VM_POOL", "env-pool"},
                                                          {"FOUNDRY_ACCELERATOR", "qemu"},
                                                          {"FOUNDRY_FIRMWARE_PATH", "/ovmf/CODE.fd"}}));
  auto a = plain;
  apply_site_config(a, site);
  EXPECT_EQ(a.storage_pool, "env-pool");
  EXPECT_EQ(a.accelerator, Accelerator::Qemu);
  EXPECT_EQ(a.firmware_path, "/ovmf/CODE.fd");
  auto b = pinned;
  apply_site_config(b, site);
  EXPECT_EQ(b.storage_pool, "file-pool");
  EXPECT_EQ(b.accelerator, Accelerator::Kvm);

  ConfigValues flags;
  flags.vm_pool = "flag-pool";
  flags.accelerator = Accelerator::Qemu;
  auto flagged = resolve_ok(flags, ConfigEnvironment::from_map({}));
  auto c = pinned;
  apply_site_config(c, flagged);
  EXPECT_EQ(c.storage_pool, "flag-pool");
  EXPECT_EQ(c.accelerator, Accelerator::Qemu);

  // No firmware path for BIOS guests.
  auto bios = load_vm_yaml(base + "firmware: bios\n", "c.yaml").value();
  apply_site_config(bios, site);
  EXPECT_TRUE(bios.firmware_path.empty());
}
