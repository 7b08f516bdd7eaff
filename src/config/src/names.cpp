#include "foundry/config/vm_config.h"

namespace foundry::config {

std::string_view to_string(DiskFormat f) { return f == DiskFormat::Qcow2 ? "qcow2" : "raw"; }
std::string_view to_string(CpuMode m) { return m == CpuMode::HostModel ? "host-model" : "host-passthrough"; }
std::string_view to_string(Accelerator a) { return a == Accelerator::Kvm ? "kvm" : "qemu"; }
std::string_view to_string(Firmware f) { return f == Firmware::Uefi ? "uefi" : "bios"; }
std::string_view to_string(ImageKind k) {
  switch (k) {
    case ImageKind::None: return "none";
    case ImageKind::Path: return "path";
    case ImageKind::PoolVolume: return "pool-volume";
  }
  return "none";
}

}  // namespace foundry::config
