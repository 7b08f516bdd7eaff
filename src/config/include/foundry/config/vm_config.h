// The VM file (seed 001, "Configuration Format") as typed data.
//
// load_vm_file() parses YAML, reports every problem of a file at once with
// file:line:column, the field path and a hint, applies defaults and
// normalization (name and fqdn to lowercase), and validates every rule of the
// seed. A VmConfig that came out of it is valid; later stages do not re-check.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/net/ip.h"

namespace foundry::config {

enum class DiskFormat { Qcow2, Raw };
enum class CpuMode { HostModel, HostPassthrough };
enum class Accelerator { Kvm, Qemu };
enum class Firmware { Uefi, Bios };

// What boot_disk.image names. A value with a '/' is a file on the host (the
// seed's `/var/lib/libvirt/images/fedora-42.qcow2`); one without is the name
// of a volume in the image pool (`fedora-42`, as `foundry image list` shows).
enum class ImageKind { None, Path, PoolVolume };

struct BootDisk {
  uint64_t size_gb = 0;
  std::string image;  // base image: a path or an image name in the image pool; empty when `empty`
  DiskFormat format = DiskFormat::Qcow2;
  bool empty = false;
  ImageKind image_kind = ImageKind::None;  // None exactly when `empty`
};

struct DataDisk {
  std::string device;  // vdb, vdc, ...
  uint64_t size_gb = 0;
};

struct NetworkInterface {
  net::Ipv4Cidr ip;                      // address + prefix length
  net::Ipv4 gateway;
  std::vector<std::string> dns_servers;  // as written; validated as IPv4 or IPv6
  std::string bridge;
  bool default_route = false;            // default: true for the first interface only
};

struct CloudInit {
  std::string fqdn;      // lowercase; empty when not given
  std::string hostname;  // first label of fqdn (or the VM name)
  std::vector<std::string> ssh_keys;
  std::string root_password_hash;  // crypt format, starts with '$'
  bool ssh_pwauth = false;
};

struct VmConfig {
  std::string source_file;  // the path it was loaded from ("" for strings)
  std::string name;         // lowercase
  uint32_t vcpus = 0;
  uint64_t memory_gib = 0;
  BootDisk boot_disk;
  std::vector<DataDisk> data_disks;
  std::vector<NetworkInterface> network_interfaces;
  std::optional<CloudInit> cloud_init;  // absent: no cloud-init ISO
  CpuMode cpu_mode = CpuMode::HostModel;
  bool autostart = true;
  std::string storage_pool = "foundry-vms";
  Accelerator accelerator = Accelerator::Kvm;
  Firmware firmware = Firmware::Uefi;
  std::string firmware_path;  // OVMF code file; empty = find on the host

  // Which site-wide settings the file itself set. apply_site_config()
  // (foundry_config.h) fills the others from flags, environment and
  // config.yaml, so a key written in the VM file beats the site defaults.
  bool storage_pool_set = false;
  bool accelerator_set = false;
  bool firmware_set = false;
};

// Parses and validates a VM file. On failure the Error has kind Config when
// the file cannot be read at all (missing, no permission, a directory) and
// Validation for anything wrong with its content (bad YAML, empty, binary or
// not UTF-8, wrong types, unknown or duplicate keys, broken rules). Every
// problem of the file is a Diagnostic (file, 1-based line and column, field
// path, message, hint), sorted by position; the message summarises
// ("vm.yaml: 3 problems").
Result<VmConfig> load_vm_file(const std::string& path);
// Same for YAML text; `name_for_messages` stands in for the file name.
Result<VmConfig> load_vm_yaml(const std::string& text, const std::string& name_for_messages);

std::string_view to_string(DiskFormat f);
std::string_view to_string(CpuMode m);
std::string_view to_string(Accelerator a);
std::string_view to_string(Firmware f);
std::string_view to_string(ImageKind k);

}  // namespace foundry::config
