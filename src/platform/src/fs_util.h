// File-system helpers private to the platform library: writing into a tree
// that is not ours to trust (a rootfs whose symlinks point at the build
// machine's own files), removing trees without crossing into mounts, and a
// temporary directory that removes itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/common/subprocess.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "foundry/platform/progress.h"

namespace foundry::platform {
struct GptLayout;
}

namespace foundry::platform::detail {

// Writes the protective MBR + primary GPT and the backup GPT of `layout`
// (gpt.h's encoder) into the disk image file and syncs it: the last step of
// every disk Foundry makes, after the file systems (no mkfs touches it then).
Status write_partition_table(const std::string& image, const GptLayout& layout);

// Replaces root/rel with a regular file holding data. Whatever was at root/rel
// (a file, or a symlink pointing anywhere, even outside root) is unlinked
// first and the new file is created with O_EXCL|O_NOFOLLOW, so a link in the
// tree can never redirect the write onto the build machine. The parent must
// resolve to a directory inside root. mtime: when set, the file's timestamps.
Status write_in_root(const std::string& root, const std::string& rel, std::string_view data, mode_t mode,
                     std::optional<int64_t> mtime = std::nullopt);

// Replaces root/rel with a symlink to target (dangling is fine).
Status symlink_in_root(const std::string& root, const std::string& rel, const std::string& target);

// Removes root/rel if it exists, without following a symlink there.
Status remove_in_root(const std::string& root, const std::string& rel);

// Mount points at or below path, from /proc/self/mountinfo.
std::vector<std::string> mounts_under(const std::string& path);

// rm -rf that refuses to start when anything is mounted below path and never
// descends into a directory on another device (rm --one-file-system).
Status remove_tree(const std::string& path);

// Total bytes allocated by the regular files below path (no mount crossing).
uint64_t tree_allocated_bytes(const std::string& path);

// A directory from mkdtemp, removed with remove_tree on destruction unless
// keep() was called.
class TempDir {
 public:
  static Result<TempDir> create(const std::string& parent, const std::string& prefix);
  TempDir() = default;
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)), keep_(o.keep_) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
  bool keep_ = false;
};

// Sets atime and mtime of path (not following a final symlink).
Status set_times(const std::string& path, int64_t epoch);

// Last `max_lines` lines of a text file ("" when unreadable).
std::string tail_file(const std::string& path, size_t max_lines);

// Progress reporting and SOURCE_DATE_EPOCH, shared by the rootfs and disk
// stages.
inline void emit(const ProgressFn& fn, ProgressEvent::Kind kind, std::string stage, std::string msg,
                 std::chrono::milliseconds elapsed = {}) {
  if (fn) fn(ProgressEvent{kind, std::move(stage), std::move(msg), elapsed});
}

inline std::chrono::milliseconds since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
}

// The option when set, else $SOURCE_DATE_EPOCH when it is a number >= 0.
inline std::optional<int64_t> epoch_or_env(std::optional<int64_t> configured) {
  if (configured) return configured;
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
    char* end = nullptr;
    long long v = std::strtoll(e, &end, 10);
    if (end && *end == '\0' && v >= 0) return static_cast<int64_t>(v);
  }
  return std::nullopt;
}

// The path "/" + rel as one debugfs argument: in double quotes, a quote
// doubled (debugfs' parser takes backslashes literally, so systemd's
// "system-systemd\x2dcryptsetup.slice" needs nothing). Empty when debugfs
// cannot take the name at all: a newline, CR or tab in it.
std::string debugfs_path(const std::string& rel);

// Appends to `cmds` the debugfs commands that make an ext4 file system that
// `mke2fs -d tree` made independent of when it was made: mke2fs copies each
// file's atime and ctime from the tree, and neither can be set from user
// space (reading a file moves its atime, any change its ctime), so they are
// set to `epoch` in the new file system, and mtimes newer than it are
// clamped to it. Walks the tree like mke2fs (no crossing into mounts).
// Returns the number of inodes; a name debugfs cannot take is an error
// (left alone it would make the image differ from build to build).
Result<size_t> append_ext4_time_commands(const std::string& tree, int64_t epoch, std::string& cmds);

// Runs `debugfs -w -f CMD_FILE target` with `cmds` written to cmd_file.
// debugfs exits 0 even when a command fails: any line on stderr after its
// version banner is an error here.
Status run_debugfs(const std::string& target, const std::string& cmds, const std::string& cmd_file,
                   const RunOptions& ro);

// mke2fs reads /etc/mke2fs.conf, which differs between releases (1.47
// upstream turns on orphan_file, which older kernels and GRUB refuse). Every
// ext4 Foundry writes (disk images, Firecracker root, recovery key) uses this
// pinned feature set, so no image depends on the build machine's copy.
inline constexpr const char* kMke2fsConf = R"([defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
)";

}  // namespace foundry::platform::detail
