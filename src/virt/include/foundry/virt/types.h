// Plain value types shared by the libvirt client, storage management, the
// domain XML generator and the VM orchestration. No libvirt headers here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace foundry::virt {

// Volume names of a VM's disks: `{vm}_boot`, `{vm}_data-{dev}`, `{vm}_cloudinit`.
struct VolumeName {
  enum class Role { Boot, Data, CloudInit };
  struct Parsed {
    std::string vm;
    Role role = Role::Boot;
    std::string device;  // data disks only: vdb, vdc, ...
  };

  static std::string boot(std::string_view vm);
  static std::string data(std::string_view vm, std::string_view device);
  static std::string cloudinit(std::string_view vm);
  // The VM and role a volume name stands for; nullopt for names outside the
  // convention (base images, foreign volumes).
  static std::optional<Parsed> parse(std::string_view volume);
};
std::string_view to_string(VolumeName::Role r);  // "boot", "data", "cloudinit"

enum class DomainState { NoState, Running, Blocked, Paused, ShuttingDown, ShutOff, Crashed, Suspended };
std::string_view to_string(DomainState s);  // "running", "shut off", ...

struct VolumeDetails {
  std::string name;
  std::string pool;
  std::string path;
  std::string key;
  std::string format;  // libvirt's target format: raw, qcow2, iso, ... ("" when none)
  uint64_t capacity = 0;
  uint64_t allocation = 0;
  std::string backing_path;  // empty when the volume has no backing store
  std::string backing_format;
};

enum class VolumeFormat { Raw, Qcow2 };
std::string_view to_string(VolumeFormat f);

struct BackingStore {
  std::string path;  // the base volume's path (its target path in its pool)
  VolumeFormat format = VolumeFormat::Qcow2;
};

struct VolumeSpec {
  std::string name;
  VolumeFormat format = VolumeFormat::Qcow2;
  uint64_t capacity = 0;    // bytes (virtual size)
  uint64_t allocation = 0;  // bytes to preallocate; 0 = sparse
  std::optional<BackingStore> backing;
};

}  // namespace foundry::virt
