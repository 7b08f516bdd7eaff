// A bootable GPT disk image from a root tree, made without mounting anything:
// the EFI system partition is formatted and filled with mtools, the root file
// system is made by mkfs.ext4 -d straight from the directory, both inside the
// disk image file at their partition offsets, and Foundry writes the GPT.
//
// Boot chain (UEFI): firmware -> EFI/BOOT/BOOTX64.EFI (systemd-boot) ->
// loader/entries/foundry.conf -> kernel + initramfs from the ESP -> root
// file system by UUID. See docs/platform.md for why systemd-boot.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/platform/gpt.h"
#include "foundry/platform/guid.h"
#include "foundry/platform/progress.h"

namespace foundry::platform {

enum class ImageFormat { Raw, Qcow2, Vpc };
std::string_view to_string(ImageFormat f);
// "raw", "qcow2", "vpc" (or "vhd").
Result<ImageFormat> parse_image_format(std::string_view s);

// "3G", "3GiB", "512M", "1T", "4096" (bytes). Binary units.
Result<uint64_t> parse_size(std::string_view s);

// Every identifier of a disk, derived from one seed (guid.h).
struct DiskIdentity {
  Guid disk;
  Guid esp_partition;
  Guid root_partition;
  Guid root_fs;         // ext4 UUID: root=UUID=... on the kernel command line
  Guid root_hash_seed;  // ext4 directory hash seed (else random at mkfs time)
  uint32_t esp_serial = 0;
  static DiskIdentity derive(std::string_view seed);
};

// Serial console and a normal read-only root mount until systemd remounts it.
std::vector<std::string> default_kernel_cmdline();

struct DiskOptions {
  std::string rootfs;  // directory from build_rootfs; its etc/fstab is rewritten with this disk's UUIDs
  std::string output;  // the image; replaced atomically when everything worked
  ImageFormat format = ImageFormat::Qcow2;
  uint64_t size_bytes = 3ull << 30;
  uint64_t esp_size_bytes = 256ull << 20;
  std::string seed = "foundry";  // decides every GUID/UUID/serial
  std::string root_label = "root";
  std::string esp_label = "ESP";
  std::vector<std::string> kernel_cmdline = default_kernel_cmdline();  // root=UUID=... is added
  std::string title = "Foundry";  // boot menu title
  // systemd-bootx64.efi; empty: from the tree (package systemd-boot-efi),
  // else from the build machine.
  std::string boot_loader;
  // Timestamps for reproducible output; default $SOURCE_DATE_EPOCH if set.
  std::optional<int64_t> source_date_epoch;
  bool compress = false;  // qcow2 compressed clusters (smaller, slower to write)
  std::string work_dir;   // scratch; default: next to output (so the final rename is atomic)
  std::chrono::seconds tool_timeout{1200};
  ProgressFn progress;
};

struct DiskInfo {
  std::string output;
  ImageFormat format = ImageFormat::Qcow2;
  GptLayout layout;
  DiskIdentity ids;
  std::string kernel_version;
  std::string cmdline;  // the kernel command line in the boot entry
  uint64_t tree_bytes = 0;
  std::chrono::milliseconds elapsed{0};
};

Result<DiskInfo> assemble_disk(const DiskOptions& opts);

// qemu-img convert from a raw image (vpc: fixed-size VHD, as Azure wants).
Status convert_image(const std::string& raw, const std::string& out, ImageFormat fmt, bool compress,
                     std::chrono::seconds timeout);

// Every disk option that changes the image bytes, as text (for cache stamps).
std::string describe_disk_inputs(const DiskOptions& opts);

// The systemd-boot files for a disk (exposed for tests).
std::string loader_conf();
std::string loader_entry(const std::string& title, const std::string& kernel_version, const std::string& cmdline);
std::string fstab_for(const DiskIdentity& ids);

}  // namespace foundry::platform
