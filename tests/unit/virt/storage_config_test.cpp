// The layering every libvirt command group uses for its URI and pools
// (flag > environment > user file > system file > defaults), down to the
// StorageConfig the storage code receives. The CLI only turns --connect,
// --storage-path and its pool flags into ConfigValues; everything after that
// is this code path.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "foundry/config/foundry_config.h"
#include "foundry/virt/storage.h"

namespace foundry::virt {
namespace {

using config::ConfigEnvironment;
using config::ConfigValues;
using config::OriginKind;

struct Files {
  std::filesystem::path dir;
  Files() {
    std::string t = (std::filesystem::temp_directory_path() / "foundry-storage-config-XXXXXX").string();
    dir = ::mkdtemp(t.data());
  }
  ~Files() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = (dir / name).string();
    std::ofstream(p) << text;
    return p;
  }
};

config::FoundryConfig resolve(const ConfigValues& flags, const ConfigEnvironment& env) {
  auto r = config::resolve_config(flags, env);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : config::FoundryConfig{};
}

TEST(StorageConfigLayers, DefaultsMatchTheStorageDefaults) {
  auto c = StorageConfig::from(resolve({}, ConfigEnvironment::from_map({})));
  StorageConfig d;
  EXPECT_EQ(c.image_pool, d.image_pool);
  EXPECT_EQ(c.vm_pool, d.vm_pool);
  EXPECT_EQ(c.base_path, d.base_path);
  EXPECT_EQ(c.vm_pool_path(), "/var/lib/libvirt/images/foundry/vms");
}

TEST(StorageConfigLayers, EachLayerBeatsTheOneBelowPerKey) {
  Files f;
  auto env = ConfigEnvironment::from_map({{"FOUNDRY_VM_POOL", "env-vms"}, {"FOUNDRY_STORAGE_PATH", "/srv/env/"}});
  env.system_file = f.write("system.yaml",
                            "uri: qemu+ssh://sys/system\nvm_pool: sys-vms\nimage_pool: sys-images\n"
                            "storage_path: /srv/sys\n");
  env.user_file = f.write("user.yaml", "uri: test:///default\nimage_pool: user-images\n");

  // No flags: uri and image_pool from the user file (beats the system file),
  // vm_pool and storage_path from the environment (beat both files).
  auto site = resolve({}, env);
  auto c = StorageConfig::from(site);
  EXPECT_EQ(site.uri, "test:///default");
  EXPECT_EQ(site.uri_origin.kind, OriginKind::UserFile);
  EXPECT_EQ(c.image_pool, "user-images");
  EXPECT_EQ(c.vm_pool, "env-vms");
  EXPECT_EQ(c.base_path, "/srv/env");
  EXPECT_EQ(c.image_pool_path(), "/srv/env/images");

  // Flags (what --connect, --storage-path and --pool become) beat everything.
  ConfigValues flags;
  flags.uri = "qemu:///session";
  flags.storage_path = "/mnt/ssd/foundry/";
  flags.vm_pool = "flag-vms";
  site = resolve(flags, env);
  c = StorageConfig::from(site);
  EXPECT_EQ(site.uri, "qemu:///session");
  EXPECT_EQ(site.uri_origin.kind, OriginKind::Flag);
  EXPECT_EQ(c.vm_pool, "flag-vms");
  EXPECT_EQ(c.base_path, "/mnt/ssd/foundry");
  EXPECT_EQ(c.image_pool, "user-images");

  // Without the user file the system file speaks.
  env.user_file.clear();
  c = StorageConfig::from(resolve({}, env));
  EXPECT_EQ(c.image_pool, "sys-images");
  EXPECT_EQ(c.vm_pool, "env-vms");
}

TEST(StorageConfigLayers, FoundryConfigFileReplacesBothFiles) {
  Files f;
  auto env = ConfigEnvironment::from_map({});
  env.system_file = f.write("system.yaml", "storage_path: /srv/sys\n");
  env.explicit_file = f.write("only.yaml", "image_pool: only-images\n");
  auto c = StorageConfig::from(resolve({}, env));
  EXPECT_EQ(c.image_pool, "only-images");
  EXPECT_EQ(c.base_path, StorageConfig::kDefaultBasePath) << "the system file must not be read";
}

TEST(StorageConfigLayers, BadValuesFromAnyLayerAreConfigErrors) {
  Files f;
  auto env = ConfigEnvironment::from_map({{"FOUNDRY_STORAGE_PATH", "relative/dir"}});
  auto r = config::resolve_config({}, env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().exit_code(), 1);
  ASSERT_EQ(r.error().diagnostics().size(), 1u);
  EXPECT_EQ(r.error().diagnostics()[0].field, "FOUNDRY_STORAGE_PATH") << r.error().diagnostics()[0].to_string();

  auto env2 = ConfigEnvironment::from_map({});
  env2.user_file = f.write("user.yaml", "vm_pool: \"has space\"\n");
  auto r2 = config::resolve_config({}, env2);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().exit_code(), 1);

  ConfigValues flags;
  flags.uri = "not a uri";
  auto r3 = config::resolve_config(flags, ConfigEnvironment::from_map({}));
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().exit_code(), 1);
}

}  // namespace
}  // namespace foundry::virt
