// Foundry's own configuration (seed 001, "Configuration Layers"): which
// libvirt to talk to, which pools to use, where the default pools live, and
// site defaults for VM files.
//
// Each setting is taken from the first layer that has it:
//   1. command-line flag            (--connect, --pool, ...; ConfigValues)
//   2. environment variable         (FOUNDRY_URI, FOUNDRY_VM_POOL, ...)
//   3. ~/.config/foundry/config.yaml ($XDG_CONFIG_HOME/foundry/config.yaml)
//   4. /etc/foundry/config.yaml
//   5. built-in default             (qemu:///system, foundry-vms, ...)
// FOUNDRY_CONFIG=FILE replaces layers 3 and 4 with that one file.
//
// Everything the layers read is injected through ConfigEnvironment, so tests
// never see the real $HOME, /etc or environment.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/vm_config.h"

namespace foundry::config {

// The settings as one layer gives them: only what that layer sets.
struct ConfigValues {
  std::optional<std::string> uri;
  std::optional<std::string> vm_pool;
  std::optional<std::string> image_pool;
  std::optional<std::string> storage_path;
  std::optional<Accelerator> accelerator;
  std::optional<Firmware> firmware;
  std::optional<std::string> firmware_path;
};

enum class OriginKind { Default, SystemFile, UserFile, Env, Flag };
std::string_view to_string(OriginKind k);

// Where one effective setting came from, for `foundry config show` and for
// messages ("vm_pool foundry-ssd (from FOUNDRY_VM_POOL) does not exist").
struct Origin {
  OriginKind kind = OriginKind::Default;
  std::string source;  // file path, environment variable or flag; "" for defaults
  std::string describe() const;  // "default", "FOUNDRY_VM_POOL", "/etc/foundry/config.yaml"
};

// The effective settings after layering.
struct FoundryConfig {
  static constexpr std::string_view kDefaultUri = "qemu:///system";
  static constexpr std::string_view kDefaultVmPool = "foundry-vms";
  static constexpr std::string_view kDefaultImagePool = "foundry-images";
  static constexpr std::string_view kDefaultStoragePath = "/var/lib/libvirt/images/foundry";

  std::string uri{kDefaultUri};
  std::string vm_pool{kDefaultVmPool};
  std::string image_pool{kDefaultImagePool};
  std::string storage_path{kDefaultStoragePath};
  Accelerator accelerator = Accelerator::Kvm;
  Firmware firmware = Firmware::Uefi;
  std::string firmware_path;  // empty: find OVMF on the host

  Origin uri_origin, vm_pool_origin, image_pool_origin, storage_path_origin;
  Origin accelerator_origin, firmware_origin, firmware_path_origin;

  // The files that were read, lowest priority first.
  std::vector<std::string> files_read;
};

// What the layers read: environment and file locations. Tests build one by
// hand; from_process() is the real one.
struct ConfigEnvironment {
  // Returns the variable's value, or nothing when unset. Empty values count
  // as unset (FOUNDRY_VM_POOL= on a command line clears an export).
  std::function<std::optional<std::string>(std::string_view)> getenv;
  std::string system_file = "/etc/foundry/config.yaml";
  std::string user_file;  // "" = no user layer
  // Set from FOUNDRY_CONFIG: the only file read, and it must exist.
  std::string explicit_file;

  // The process environment; user_file from $XDG_CONFIG_HOME or $HOME.
  static ConfigEnvironment from_process();
  // A fixed map of variables (tests); no files unless set afterwards.
  static ConfigEnvironment from_map(std::vector<std::pair<std::string, std::string>> vars);
};

// Parses one config.yaml. Unknown keys, wrong types and bad values are
// errors with diagnostics, like the VM file; the kind is Config (exit 1): it
// is Foundry's configuration that is broken, not an input being validated.
Result<ConfigValues> load_config_file(const std::string& path);
Result<ConfigValues> load_config_yaml(const std::string& text, const std::string& name_for_messages);

// Layers flags > environment > user file > system file > defaults. Missing
// files are skipped (except FOUNDRY_CONFIG's); unreadable or invalid ones are
// errors, as are invalid environment values (kind Config, with diagnostics
// naming the variable).
Result<FoundryConfig> resolve_config(const ConfigValues& flags, const ConfigEnvironment& env);

// Fills in what the VM file left to the site. storage_pool: a --pool flag
// beats the file, the file beats environment, config files and default.
// accelerator, firmware and firmware_path: the same order.
void apply_site_config(VmConfig& vm, const FoundryConfig& site);

}  // namespace foundry::config
