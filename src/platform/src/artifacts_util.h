// Helpers shared by the artifact writers (artifacts*.cpp), private to the
// platform library.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/common/subprocess.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/guid.h"
#include "fs_util.h"

namespace foundry::platform::detail {

// Checks that each tool is on PATH; the error names the Debian package.
Status require_tools(const std::string& ctx, const std::vector<std::pair<std::string, std::string>>& tool_package);

// RunOptions with the writer's timeout and, when set, SOURCE_DATE_EPOCH.
RunOptions tool_options(const ArtifactCommon& c, std::optional<int64_t> epoch);

// A scratch directory next to `output` (or in work_dir).
Result<TempDir> scratch_for(const std::string& output, const ArtifactCommon& c, const std::string& prefix);

// mtools environment: an empty config (a user's ~/.mtoolsrc cannot change
// names or case) and SOURCE_DATE_EPOCH for every directory entry's time.
Result<RunOptions> mtools_options(const ArtifactCommon& c, std::optional<int64_t> epoch, const std::string& scratch);

// A FAT image file of `bytes` (whole MiB) with the given files, copied one
// per mcopy call in the given order (the layout is then the same on every
// build). Directories are created first, in order. dest paths are "::/..".
struct FatFile {
  std::string source;
  std::string dest;  // "/EFI/BOOT/BOOTX64.EFI"
};
Status make_fat_image(const std::string& image, uint64_t bytes, const std::string& label, uint32_t serial,
                      uint64_t hidden_sectors, const std::vector<std::string>& dirs,
                      const std::vector<FatFile>& files, const RunOptions& mtools);

// An ext4 file system of `bytes` at `offset` in `image` (created/extended
// as needed) from the directory `tree` (mkfs.ext4 -d), with a pinned
// feature set, a fixed UUID and hash seed, superblock times from the epoch,
// files in `replace` written over the copies from the tree (path in the
// file system -> content, mode 0644, root-owned), and every inode's atime
// and ctime (and any newer mtime) set to the epoch.
struct Ext4Spec {
  std::string label;
  Guid uuid;
  Guid hash_seed;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  std::vector<std::pair<std::string, std::string>> replace;
};
Status make_ext4_image(const std::string& tree, const std::string& image, const Ext4Spec& spec,
                       std::optional<int64_t> epoch, const std::string& scratch, const RunOptions& base);

// Bytes an ext4 file system needs for a tree of `tree_bytes` (allocated),
// rounded up to 64 MiB.
uint64_t ext4_size_for(uint64_t tree_bytes, uint64_t inode_count);

// Number of directory entries below path (no mount crossing).
uint64_t count_entries(const std::string& path);

// The tree's initramfs plus Foundry's layer, written to out.
Status write_layered_initrd(const std::string& initrd, const InitramfsLayer& layer, const std::string& out);

// The systemd-boot EFI binary: explicit, else from the tree, else the host's.
std::string find_efi_boot_loader(const std::string& explicit_path, const std::string& rootfs);

// Hard link src to dst, copying when that fails (another file system).
Status link_or_copy(const std::string& src, const std::string& dst);

// rename(2) with a message naming both ends.
Status rename_into_place(const std::string& from, const std::string& to, const std::string& ctx);

ArtifactFile artifact_file(const std::string& path);

std::string join_args(const std::vector<std::string>& v);

// mksquashfs of tree -> out (reproducible: sorted, fixed times).
Status make_squashfs(const std::string& tree, const std::string& out, SquashfsCompression comp, int level,
                     std::optional<int64_t> epoch, const RunOptions& ro);

// The boot part the ISO and the recovery key share: the tree's kernel, its
// initramfs with Foundry's live layer (written into scratch) and the
// systemd-boot binary.
struct LiveBoot {
  std::string kernel;  // path to the tree's vmlinuz
  std::string initrd;  // layered initrd in scratch
  std::string kernel_version;
  std::string loader;  // systemd-bootx64.efi
};
Result<LiveBoot> prepare_live_boot(const std::string& rootfs, const std::string& efi_loader,
                                   const std::string& scratch, std::optional<int64_t> epoch);

}  // namespace foundry::platform::detail
