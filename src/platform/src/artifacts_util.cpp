#include "artifacts_util.h"
#include "fs_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"
#include "foundry/platform/gpt.h"

namespace foundry::platform::detail {

namespace fs = std::filesystem;

Status require_tools(const std::string& ctx, const std::vector<std::pair<std::string, std::string>>& tool_package) {
  for (const auto& [tool, pkg] : tool_package)
    if (find_program(tool).empty())
      return fail(Error(ErrorKind::Operation, fmt::format("{}: {} is not installed", ctx, tool))
                      .with_hint(fmt::format("install the Debian package {} (scripts/install-deps)", pkg)));
  return ok();
}

RunOptions tool_options(const ArtifactCommon& c, std::optional<int64_t> epoch) {
  RunOptions ro;
  ro.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.tool_timeout);
  ro.extra_env = {"LC_ALL=C"};
  if (epoch) ro.extra_env.push_back(fmt::format("SOURCE_DATE_EPOCH={}", *epoch));
  return ro;
}

Result<TempDir> scratch_for(const std::string& output, const ArtifactCommon& c, const std::string& prefix) {
  std::error_code ec;
  fs::path abs = fs::absolute(output, ec);
  std::string parent = c.work_dir.empty() ? abs.parent_path().string() : c.work_dir;
  return TempDir::create(parent, prefix);
}

Result<RunOptions> mtools_options(const ArtifactCommon& c, std::optional<int64_t> epoch, const std::string& scratch) {
  RunOptions ro = tool_options(c, epoch);
  const std::string rc = scratch + "/mtoolsrc";
  FOUNDRY_TRY(write_file_atomic(rc, ""));
  ro.extra_env.push_back("MTOOLS_SKIP_CHECK=1");
  ro.extra_env.push_back("MTOOLSRC=" + rc);
  return ro;
}

Status make_fat_image(const std::string& image, uint64_t bytes, const std::string& label, uint32_t serial,
                      uint64_t hidden_sectors, const std::vector<std::string>& dirs,
                      const std::vector<FatFile>& files, const RunOptions& mtools) {
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(ErrorKind::Storage, "cannot create {}", image);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno(ErrorKind::Storage, "cannot stat {}", image);
    if (static_cast<uint64_t>(st.st_size) < hidden_sectors * kSectorSize + bytes &&
        ::ftruncate(fd.get(), static_cast<off_t>(hidden_sectors * kSectorSize + bytes)) != 0)
      return fail_errno(ErrorKind::Storage, "cannot size {}", image);
  }
  const std::string img = hidden_sectors ? fmt::format("{}@@{}", image, hidden_sectors * kSectorSize) : image;
  // FAT32 from 64 MiB on (mformat would pick FAT16 below, which firmware
  // reads as well and which suits an El Torito image).
  std::vector<std::string> argv = {"mformat", "-i", img};
  if (bytes >= 64 * kMiB) argv.push_back("-F");
  argv.insert(argv.end(), {"-T", std::to_string(bytes / kSectorSize), "-h", "64", "-s", "32", "-H",
                           std::to_string(hidden_sectors), "-N", fmt::format("{:08x}", serial), "-v", label, "::"});
  FOUNDRY_TRY_CTX(run_checked(argv, mtools), "format FAT file system {}", label);
  if (!dirs.empty()) {
    std::vector<std::string> mmd = {"mmd", "-i", img};
    for (const auto& d : dirs) mmd.push_back("::" + d);
    FOUNDRY_TRY_CTX(run_checked(mmd, mtools), "make directories in FAT file system {}", label);
  }
  for (const auto& f : files)
    FOUNDRY_TRY_CTX(run_checked({"mcopy", "-i", img, f.source, "::" + f.dest}, mtools), "copy {} to FAT {}", f.source,
                    label);
  return ok();
}

uint64_t count_entries(const std::string& path) {
  struct stat top {};
  if (::lstat(path.c_str(), &top) != 0) return 0;
  uint64_t n = 0;
  std::error_code ec;
  std::deque<std::string> dirs{path};
  while (!dirs.empty()) {
    std::string d = dirs.front();
    dirs.pop_front();
    for (const auto& e : fs::directory_iterator(d, ec)) {
      ++n;
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == top.st_dev)
        dirs.push_back(e.path().string());
    }
  }
  return n;
}

uint64_t ext4_size_for(uint64_t tree_bytes, uint64_t inode_count) {
  // Inodes at one per 16 KiB, so the inode count also bounds the size;
  // metadata and journal ~10 %, plus free room for a booted system's logs.
  uint64_t need = tree_bytes + tree_bytes / 4 + 128 * kMiB;
  need = std::max(need, inode_count * 2 * 16384);
  const uint64_t step = 64 * kMiB;
  return (need + step - 1) / step * step;
}

Status make_ext4_image(const std::string& tree, const std::string& image, const Ext4Spec& spec,
                       std::optional<int64_t> epoch, const std::string& scratch, const RunOptions& base) {
  const std::string conf = scratch + "/mke2fs.conf";
  FOUNDRY_TRY(write_file_atomic(conf, kMke2fsConf));
  RunOptions ro = base;
  ro.extra_env.push_back("MKE2FS_CONFIG=" + conf);
  // Superblock times (mkfs time, last write) for mke2fs and debugfs.
  if (epoch) ro.extra_env.push_back(fmt::format("E2FSPROGS_FAKE_TIME={}", *epoch));
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(ErrorKind::Storage, "cannot create {}", image);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno(ErrorKind::Storage, "cannot stat {}", image);
    if (static_cast<uint64_t>(st.st_size) < spec.offset + spec.bytes &&
        ::ftruncate(fd.get(), static_cast<off_t>(spec.offset + spec.bytes)) != 0)
      return fail_errno(ErrorKind::Storage, "cannot size {}", image);
  }
  const uint64_t block = 4096;
  FOUNDRY_TRY_CTX(
      run_checked({"mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", std::to_string(block), "-L", spec.label, "-U",
                   spec.uuid.to_string(), "-E",
                   fmt::format("root_owner=0:0,hash_seed={},offset={},nodiscard,lazy_itable_init=0,lazy_journal_init=0",
                               spec.hash_seed.to_string(), spec.offset),
                   "-d", tree, image, std::to_string(spec.bytes / block)},
                  ro),
      "make ext4 file system {} from {}", spec.label, tree);

  // debugfs commands: replaced files first, then the times
  // (append_ext4_time_commands, shared with assemble_disk).
  std::string cmds;
  int n = 0;
  for (const auto& [path, content] : spec.replace) {
    const std::string local = scratch + fmt::format("/replace-{}", n++);
    FOUNDRY_TRY(write_file_atomic(local, content, 0644));
    std::string q = debugfs_path(path.starts_with("/") ? path.substr(1) : path);
    if (q.empty()) return fail(ErrorKind::Config, "ext4 {}: cannot replace {} (a newline, CR or tab in its name)",
                               spec.label, path);
    cmds += fmt::format("rm {}\nwrite {} {}\nsif {} uid 0\nsif {} gid 0\nsif {} mode 0100644\n", q, local, q, q, q, q);
    if (epoch) cmds += fmt::format("sif {} mtime @{}\n", q, *epoch);
  }
  if (epoch) FOUNDRY_TRY_CTX(append_ext4_time_commands(tree, *epoch, cmds), "ext4 file system {}", spec.label);
  if (cmds.empty()) return ok();
  const std::string target = spec.offset ? fmt::format("{}?offset={}", image, spec.offset) : image;
  FOUNDRY_TRY_CTX(run_debugfs(target, cmds, scratch + "/debugfs-cmds", ro), "finish ext4 file system {}", spec.label);
  return ok();
}

std::string find_efi_boot_loader(const std::string& explicit_path, const std::string& rootfs) {
  if (!explicit_path.empty()) return explicit_path;
  std::error_code ec;
  for (const char* rel : {"/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/lib/systemd/boot/efi/systemd-bootx64.efi"})
    if (fs::exists(rootfs + rel, ec)) return rootfs + rel;
  for (const char* abs : {"/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/lib/systemd/boot/efi/systemd-bootx64.efi"})
    if (fs::exists(abs, ec)) return abs;
  return "";
}

Status link_or_copy(const std::string& src, const std::string& dst) {
  if (::link(src.c_str(), dst.c_str()) == 0) return ok();
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) return fail(ErrorKind::Storage, "cannot copy {} to {}: {}", src, dst, ec.message());
  return ok();
}

Status rename_into_place(const std::string& from, const std::string& to, const std::string& ctx) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return fail_errno(ErrorKind::Storage, "{}: cannot move {} to {}", ctx, from, to);
  return ok();
}

ArtifactFile artifact_file(const std::string& path) {
  std::error_code ec;
  ArtifactFile f;
  f.path = fs::absolute(path, ec).lexically_normal().string();
  f.size = fs::file_size(path, ec);
  if (ec) f.size = 0;
  return f;
}

std::string join_args(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

Status make_squashfs(const std::string& tree, const std::string& out, SquashfsCompression comp, int level,
                     std::optional<int64_t> epoch, const RunOptions& ro) {
  std::vector<std::string> argv = {"mksquashfs", tree, out, "-noappend", "-no-progress", "-quiet", "-reproducible"};
  switch (comp) {
    case SquashfsCompression::Zstd:
      argv.insert(argv.end(), {"-comp", "zstd", "-Xcompression-level", std::to_string(level)});
      break;
    case SquashfsCompression::Xz: argv.insert(argv.end(), {"-comp", "xz"}); break;
    case SquashfsCompression::Gzip:
      argv.insert(argv.end(), {"-comp", "gzip", "-Xcompression-level", std::to_string(std::clamp(level, 1, 9))});
      break;
  }
  // -all-time: squashfs keeps one mtime per inode and nothing else; with
  // mkfs-time the image then depends on the tree's bytes only. Without an
  // epoch the tree's own times stay.
  if (epoch)
    argv.insert(argv.end(), {"-mkfs-time", std::to_string(*epoch), "-all-time", std::to_string(*epoch)});
  // The tree may hold mount points (proc, sys, dev) left empty; -one-file-system
  // keeps anything mounted there out.
  argv.push_back("-one-file-system");
  // mksquashfs refuses SOURCE_DATE_EPOCH together with the options above,
  // also when it comes from the caller's own environment (a user's
  // `SOURCE_DATE_EPOCH=... foundry platform build`): env -u drops it.
  RunOptions env = ro;
  std::erase_if(env.extra_env, [](const std::string& e) { return e.rfind("SOURCE_DATE_EPOCH=", 0) == 0; });
  if (epoch) argv.insert(argv.begin(), {"env", "-u", "SOURCE_DATE_EPOCH"});
  FOUNDRY_TRY_CTX(run_checked(argv, env), "make squashfs {} from {}", out, tree);
  return ok();
}

}  // namespace foundry::platform::detail
