// Artifact writers: what `foundry platform build` makes from one finished
// root tree (build_rootfs) and the raw disk assemble_disk made from it.
//
//   write_live_squashfs  the tree as a squashfs (the live system's root)
//   write_live_iso       hybrid ISO: BIOS (isolinux, El Torito + MBR) and
//                        UEFI (El Torito EFI image + GPT, systemd-boot); the
//                        root is the squashfs, found by a small initramfs
//                        layer appended to the tree's own initramfs
//   write_disk_images    qcow2, raw and fixed VHD (Azure) from the raw disk
//   write_firecracker_kit  vmlinux (ELF, taken out of the bzImage), initrd,
//                        ext4 root image and FullVmConfiguration JSON files
//   write_recovery_key   raw GPT USB image: an ESP that boots the live system
//                        and an ext4 data partition with every artifact, the
//                        cluster file and the secrets (0600)
//
// Every writer makes no mounts (user-space tools only: mksquashfs, xorriso,
// mtools, mkfs.ext4 -d, debugfs, qemu-img), never changes the input tree,
// is reproducible (same inputs and SOURCE_DATE_EPOCH give the same bytes:
// fixed UUIDs, serials, volume ids and times, sorted file order), and writes
// under a temporary name next to the output that is renamed into place only
// when everything worked. See docs/platform.md, "Artifacts".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/platform/disk_image.h"
#include "foundry/platform/progress.h"

namespace foundry::platform {

// The line the node agent (and the test images' stand-in unit) prints on the
// serial console once the node is up; the e2e tests wait for it.
inline constexpr std::string_view kNodeReadyLine = "foundry-node: ready";

// One file an artifact writer produced.
struct ArtifactFile {
  std::string path;  // absolute
  uint64_t size = 0;
};

// Options every writer shares.
struct ArtifactCommon {
  std::string seed = "foundry";  // decides every UUID, serial and volume id
  // Timestamps for reproducible output; default $SOURCE_DATE_EPOCH if set.
  std::optional<int64_t> source_date_epoch;
  std::string work_dir;  // scratch; default: next to the output (so the final rename is atomic)
  std::chrono::seconds tool_timeout{1800};
  ProgressFn progress;
};

// ---------------------------------------------------------------- live root

enum class SquashfsCompression { Zstd, Xz, Gzip };

struct LiveSquashfsOptions {
  std::string rootfs;  // tree from build_rootfs (read only)
  std::string output;  // e.g. DIR/filesystem.squashfs
  SquashfsCompression compression = SquashfsCompression::Zstd;
  int compression_level = 6;  // zstd: 1..22 (6: 197 MB in ~20 s for the 700 MB base tree)
  ArtifactCommon common;
};

Result<ArtifactFile> write_live_squashfs(const LiveSquashfsOptions& opts);

// Kernel command line of the live system: boot=foundry selects the boot
// script of Foundry's initramfs layer, foundry.live=LABEL names the file
// system (ISO volume id or the recovery key's data partition label) that
// holds live/filesystem.squashfs. Serial console as the disk image has.
std::vector<std::string> live_kernel_cmdline(const std::string& label);

// ---------------------------------------------------------------- live ISO

struct LiveIsoOptions {
  std::string rootfs;
  std::string output;  // .iso
  // An existing live squashfs of this tree (write_live_squashfs); empty:
  // one is made in the scratch directory.
  std::string squashfs;
  // ISO volume id, also the label the initramfs looks for: at most 32 of
  // A-Z 0-9 _ (ISO 9660 d-characters). Empty: "FOUNDRY_" + 8 hex digits from the seed.
  std::string volume_id;
  std::string title = "Foundry live";
  std::vector<std::string> extra_kernel_args;  // after live_kernel_cmdline()
  // systemd-bootx64.efi; empty: from the tree, else the build machine.
  std::string efi_boot_loader;
  // isolinux.bin, isohdpfx.bin (Debian: isolinux) and ldlinux.c32 (Debian:
  // syslinux-common); empty: the Debian paths.
  std::string isolinux_bin, isohybrid_mbr, ldlinux_c32;
  SquashfsCompression compression = SquashfsCompression::Zstd;
  int compression_level = 6;
  ArtifactCommon common;
};

struct LiveIsoInfo {
  ArtifactFile iso;
  std::string volume_id;
  std::string kernel_version;
  std::string cmdline;
  std::chrono::milliseconds elapsed{0};
};

Result<LiveIsoInfo> write_live_iso(const LiveIsoOptions& opts);

// The volume id write_live_iso uses for a seed when none is given.
std::string default_volume_id(std::string_view seed);

// ---------------------------------------------------------------- disk images

struct DiskImagesOptions {
  std::string raw_disk;    // from assemble_disk with ImageFormat::Raw
  std::string output_dir;  // created if missing
  std::string basename = "disk";  // -> disk.qcow2, disk.raw, disk.vhd
  std::vector<ImageFormat> formats = {ImageFormat::Qcow2, ImageFormat::Raw, ImageFormat::Vpc};
  bool compress_qcow2 = false;
  ArtifactCommon common;
};

// The raw disk must be a whole number of MiB (Azure's VHD rule; assemble_disk
// sizes are). The VHD is fixed, force_size (virtual size = the raw size), and
// its footer's time stamp and UUID are made reproducible (qemu-img writes the
// current time and a random UUID).
Result<std::vector<ArtifactFile>> write_disk_images(const DiskImagesOptions& opts);

// File name extension for a format: qcow2, raw, vhd.
std::string_view image_extension(ImageFormat f);

// Sets a fixed VHD's footer (last 512 bytes) time stamp to `epoch` and its
// UUID to `uuid`, and recomputes the checksum. Exposed for tests.
Status normalize_vhd_footer(const std::string& vhd, int64_t epoch, const Guid& uuid);

// ---------------------------------------------------------------- Firecracker

struct FirecrackerVm {
  std::string name = "vm";  // config file: <name>.json
  int vcpus = 2;
  uint64_t memory_mib = 1024;
  std::string tap;        // host tap device; empty: no network interface
  std::string guest_mac;  // e.g. from net::derive_mac_from_ip
  std::vector<std::string> extra_boot_args;
};

struct FirecrackerKitOptions {
  std::string rootfs;
  std::string output_dir;  // the kit; must not exist (made in a scratch directory beside it, renamed whole)
  std::vector<FirecrackerVm> vms = {FirecrackerVm{}};
  uint64_t rootfs_image_bytes = 0;  // 0: the tree plus room, rounded to 64 MiB
  ArtifactCommon common;
};

struct FirecrackerKitInfo {
  std::string dir;
  std::string vmlinux, initrd, rootfs_image;  // absolute paths inside dir
  std::vector<std::string> configs;           // absolute, one per VM
  std::vector<ArtifactFile> files;            // everything in the kit, sorted
  std::string kernel_version;
  std::chrono::milliseconds elapsed{0};
};

// Kit layout (paths in the configs are relative to the kit directory: run
// `firecracker --no-api --config-file NAME.json` from inside it):
//   vmlinux        uncompressed ELF kernel
//   initrd.img     the tree's initramfs + Foundry's layer (virtio_mmio etc.)
//   rootfs.ext4    root file system (label root, /dev/vda in its fstab)
//   NAME.json      FullVmConfiguration per VM
Result<FirecrackerKitInfo> write_firecracker_kit(const FirecrackerKitOptions& opts);

// Boot arguments for Firecracker guests (before a VM's extra ones).
std::vector<std::string> firecracker_boot_args();

// The FullVmConfiguration document for one VM of a kit (exposed for tests).
std::string firecracker_config_json(const FirecrackerVm& vm, const std::string& kernel, const std::string& initrd,
                                    const std::string& rootfs_image);

// The uncompressed kernel (an ELF file) inside an x86 bzImage: the
// protected-mode payload the header's payload_offset/payload_length name,
// decompressed in process (xz via liblzma, gzip via zlib: what Debian and
// most distributions use). Fails for other formats with a hint.
Result<std::string> extract_vmlinux(std::string_view bzimage);

// ---------------------------------------------------------------- recovery key

struct RecoveryKeyOptions {
  std::string rootfs;    // boots the live system from the key
  std::string squashfs;  // existing live squashfs; empty: made in scratch
  std::string output;    // raw image (.img)
  // Files or directories put under artifacts/ on the key (name = last path
  // component, directories copied whole, e.g. the Firecracker kit).
  std::vector<std::string> artifacts;
  std::string cluster_file;  // copied to cluster.yaml; required
  std::string secrets_dir;   // copied to secrets/ (dirs 0700, files 0600); may be empty
  std::string label = "FOUNDRY_KEY";  // data partition label (what the initramfs looks for)
  uint64_t size_bytes = 0;   // 0: what the payload needs, rounded up to 64 MiB
  uint64_t esp_size_bytes = 128ull << 20;
  std::string title = "Foundry recovery";
  std::string efi_boot_loader;
  SquashfsCompression compression = SquashfsCompression::Zstd;
  int compression_level = 6;
  ArtifactCommon common;
};

struct RecoveryKeyInfo {
  ArtifactFile image;
  GptLayout layout;
  std::string cmdline;
  std::vector<std::string> contents;  // paths on the data partition, sorted
  std::chrono::milliseconds elapsed{0};
};

// Layout (docs/platform.md, "Recovery key"):
//   partition 1  ESP (FAT32): systemd-boot, kernel, initrd + Foundry layer
//   partition 2  ext4, label FOUNDRY_KEY:
//       README.txt, cluster.yaml, secrets/ (0700, files 0600),
//       artifacts/<every artifact>, live/filesystem.squashfs
// The key boots by UEFI into the live system (root = the squashfs on
// partition 2), from which the artifacts are written to disks or uploaded.
Result<RecoveryKeyInfo> write_recovery_key(const RecoveryKeyOptions& opts);

// ---------------------------------------------------------------- initramfs layer

// A newc cpio archive appended to the tree's initramfs (the kernel unpacks
// concatenated archives in order): scripts/foundry (initramfs-tools boot
// script selected by boot=foundry) and the kernel modules it loads, which a
// small MODULES=list initramfs lacks (squashfs, isofs, overlay, loop,
// virtio_mmio, ... with their dependencies from the tree's modules.dep).
struct InitramfsLayer {
  std::string cpio;                  // the archive bytes
  std::vector<std::string> modules;  // load order (file names)
};

// `modules`: names to include (dependencies first), `required` must all be
// found (a module built into the kernel counts as found).
Result<InitramfsLayer> make_initramfs_layer(const std::string& rootfs, const std::string& kernel_version,
                                            const std::vector<std::string>& modules,
                                            const std::vector<std::string>& required, int64_t mtime);

// The boot script itself (exposed for tests and docs).
std::string initramfs_boot_script();

// Modules for the live system and for Firecracker guests.
std::vector<std::string> live_initramfs_modules();
std::vector<std::string> firecracker_initramfs_modules();

}  // namespace foundry::platform
