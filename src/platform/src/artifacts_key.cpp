// The recovery key: one raw GPT image for a USB stick that holds everything
// needed to rebuild the cluster, and boots (UEFI) into the live system.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "artifacts_util.h"
#include "foundry/common/file.h"
#include "foundry/common/unique_fd.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/gpt.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::emit;
using detail::since;

namespace {

std::string readme(const std::string& label) {
  return fmt::format(
      "Foundry recovery key\n"
      "====================\n"
      "\n"
      "This partition (ext4, label {0}) holds everything needed to rebuild the cluster:\n"
      "\n"
      "  cluster.yaml               the cluster file the artifacts were built from\n"
      "  secrets/                   cluster CA, node certificates, WireGuard keys (mode 0600)\n"
      "  artifacts/                 live ISO, disk images (qcow2, raw, vhd), Firecracker kit, manifest\n"
      "  live/filesystem.squashfs   the root of the live system this key boots\n"
      "\n"
      "To recover: boot this key by UEFI (partition 1 is its EFI system partition). The live\n"
      "system mounts this partition read-only at /run/foundry/medium. From there, write a disk\n"
      "image to a machine's disk (dd if=artifacts/disk.raw of=/dev/DISK bs=4M), upload the\n"
      "images to a cloud, or copy the ISO, and run `foundry platform` / `foundry cluster` with\n"
      "cluster.yaml and secrets/. On another machine, read this partition directly (it is ext4).\n"
      "\n"
      "Keep the key safe: secrets/ holds the cluster's private keys.\n",
      label);
}

// Hard-links a file, or every file below a directory, into dst.
Status stage(const std::string& src, const std::string& dst) {
  std::error_code ec;
  if (fs::is_directory(src, ec)) {
    FOUNDRY_TRY(make_dirs(dst));
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(src, ec)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) FOUNDRY_TRY(stage(e.string(), dst + "/" + e.filename().string()));
    return ok();
  }
  if (!fs::is_regular_file(src, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{} is neither a file nor a directory", src))
                    .with_hint("give the artifacts' paths as the writers returned them"));
  return detail::link_or_copy(src, dst);
}

// Copies the secrets with private modes, whatever the source's modes are.
Status stage_secrets(const std::string& src, const std::string& dst) {
  std::error_code ec;
  if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(ErrorKind::Storage, "cannot create {}", dst);
  ::chmod(dst.c_str(), 0700);
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(src, ec)) entries.push_back(e.path());
  if (ec) return fail(ErrorKind::Config, "cannot read the secrets directory {}: {}", src, ec.message());
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) {
    const std::string to = dst + "/" + e.filename().string();
    struct stat st {};
    if (::lstat(e.c_str(), &st) != 0) return fail_errno(ErrorKind::Storage, "cannot stat {}", e.string());
    if (S_ISDIR(st.st_mode)) {
      FOUNDRY_TRY(stage_secrets(e.string(), to));
    } else if (S_ISREG(st.st_mode)) {
      auto data = FOUNDRY_TRY(read_file(e.string()));
      FOUNDRY_TRY(write_file_atomic(to, data, 0600));
      ::chmod(to.c_str(), 0600);
    } else {
      return fail(Error(ErrorKind::Config, fmt::format("secret {} is not a regular file", e.string()))
                      .with_hint("the secrets directory may hold files and directories only"));
    }
  }
  return ok();
}

void list_tree(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root + (rel.empty() ? "" : "/" + rel), ec))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    if (fs::is_directory(root + "/" + r, ec)) {
      out.push_back(r + "/");
      list_tree(root, r, out);
    } else {
      out.push_back(r);
    }
  }
}

}  // namespace

Result<RecoveryKeyInfo> write_recovery_key(const RecoveryKeyOptions& o) {
  const auto t0 = Clock::now();
  const std::string ctx = fmt::format("write recovery key {}", o.output);
  RecoveryKeyInfo info;
  std::error_code ec;
  if (o.output.empty()) return fail(ErrorKind::Config, "write recovery key: no output path given");
  if (!fs::is_directory(o.rootfs, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: root tree {} is not a directory", ctx, o.rootfs))
                    .with_hint("build one with build_rootfs"));
  if (o.cluster_file.empty() || !fs::is_regular_file(o.cluster_file, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: cluster file '{}' does not exist", ctx, o.cluster_file))
                    .with_hint("a recovery key without its cluster file cannot rebuild anything"));
  if (!o.secrets_dir.empty() && !fs::is_directory(o.secrets_dir, ec))
    return fail(ErrorKind::Config, "{}: secrets directory {} does not exist", ctx, o.secrets_dir);
  if (o.label.empty() || o.label.size() > 16)
    return fail(Error(ErrorKind::Validation, fmt::format("{}: label '{}' does not fit ext4", ctx, o.label))
                    .with_hint("use 1 to 16 characters"));
  FOUNDRY_TRY(detail::require_tools(ctx, {{"mkfs.ext4", "e2fsprogs"},
                                          {"debugfs", "e2fsprogs"},
                                          {"mksquashfs", "squashfs-tools"},
                                          {"mformat", "mtools"},
                                          {"mcopy", "mtools"},
                                          {"mmd", "mtools"}}));
  const auto epoch = detail::epoch_or_env(o.common.source_date_epoch);
  const auto& progress = o.common.progress;
  auto work = FOUNDRY_TRY_CTX(detail::scratch_for(o.output, o.common, ".foundry-key-"), "{}", ctx);

  // Stage: the data partition's tree (hard links; nothing big is copied).
  auto t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "key-stage", "collecting artifacts, cluster file and secrets");
  const std::string data = work.path() + "/data";
  FOUNDRY_TRY_CTX(make_dirs(data + "/artifacts"), "{}", ctx);
  FOUNDRY_TRY_CTX(make_dirs(data + "/live"), "{}", ctx);
  FOUNDRY_TRY_CTX(write_file_atomic(data + "/README.txt", readme(o.label)), "{}", ctx);
  auto cluster = FOUNDRY_TRY_CTX(read_file(o.cluster_file), "{}", ctx);
  FOUNDRY_TRY_CTX(write_file_atomic(data + "/cluster.yaml", cluster, 0644), "{}", ctx);
  if (!o.secrets_dir.empty()) FOUNDRY_TRY_CTX(stage_secrets(o.secrets_dir, data + "/secrets"), "{}", ctx);
  std::vector<std::string> seen;
  for (const auto& a : o.artifacts) {
    std::string name = fs::path(a).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(a).lexically_normal().parent_path().filename().string();
    if (name.empty() || std::find(seen.begin(), seen.end(), name) != seen.end())
      return fail(Error(ErrorKind::Config, fmt::format("{}: artifact {} has no name or the same name as another", ctx, a))
                      .with_hint("artifacts are stored by their file name; give each a distinct one"));
    seen.push_back(name);
    FOUNDRY_TRY_CTX(stage(a, data + "/artifacts/" + name), "{}", ctx);
  }
  if (!o.squashfs.empty()) {
    FOUNDRY_TRY_CTX(detail::link_or_copy(o.squashfs, data + "/live/filesystem.squashfs"), "{}", ctx);
  } else {
    FOUNDRY_TRY_CTX(detail::make_squashfs(o.rootfs, data + "/live/filesystem.squashfs", o.compression,
                                          o.compression_level, epoch, detail::tool_options(o.common, epoch)),
                    "{}", ctx);
  }
  // Directory times: the ext4 step clamps every inode's times to the epoch.
  list_tree(data, "", info.contents);
  emit(progress, ProgressEvent::Kind::End, "key-stage", fmt::format("{} entries", info.contents.size()), since(t));

  // Stage: layout.
  const uint64_t data_bytes = detail::ext4_size_for(detail::tree_allocated_bytes(data), detail::count_entries(data));
  const uint64_t need = kMiB + o.esp_size_bytes + data_bytes + kMiB;
  const uint64_t size = o.size_bytes ? o.size_bytes : need;
  if (size < need)
    return fail(Error(ErrorKind::Validation, fmt::format("{}: {} MiB hold less than the {} MiB the key needs", ctx,
                                                         size / kMiB, need / kMiB))
                    .with_hint("leave the size at 0 (automatic) or make it larger"));
  std::vector<PartitionSpec> parts = {
      {"ESP", *parse_guid(gpt_type::kEsp), derive_guid(o.common.seed, "key-partition-esp"), o.esp_size_bytes, 0},
      {o.label, *parse_guid(gpt_type::kLinuxData), derive_guid(o.common.seed, "key-partition-data"), 0, 0},
  };
  info.layout = FOUNDRY_TRY_CTX(plan_gpt_layout(size, derive_guid(o.common.seed, "key-disk"), parts), "{}", ctx);
  const Partition& esp = info.layout.partitions[0];
  const Partition& datap = info.layout.partitions[1];
  const std::string raw = work.path() + "/key.img";
  {
    UniqueFd fd(::open(raw.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(ErrorKind::Storage, "{}: cannot create {}", ctx, raw);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
      return fail_errno(ErrorKind::Storage, "{}: cannot size {}", ctx, raw);
  }

  // Stage: ESP with the live system's boot files.
  t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "key-esp", "ESP with systemd-boot and the live kernel");
  auto boot = FOUNDRY_TRY_CTX(detail::prepare_live_boot(o.rootfs, o.efi_boot_loader, work.path(), epoch), "{}", ctx);
  info.cmdline = detail::join_args(live_kernel_cmdline(o.label));
  const std::string loader_conf_file = work.path() + "/loader.conf";
  const std::string entry_file = work.path() + "/foundry.conf";
  FOUNDRY_TRY_CTX(write_file_atomic(loader_conf_file, loader_conf()), "{}", ctx);
  FOUNDRY_TRY_CTX(write_file_atomic(entry_file, fmt::format("title   {}\n"
                                                            "version {}\n"
                                                            "linux   /live/vmlinuz\n"
                                                            "initrd  /live/initrd.img\n"
                                                            "options {}\n",
                                                            o.title, boot.kernel_version, info.cmdline)),
                  "{}", ctx);
  auto mt = FOUNDRY_TRY_CTX(detail::mtools_options(o.common, epoch, work.path()), "{}", ctx);
  FOUNDRY_TRY_CTX(detail::make_fat_image(raw, esp.size_bytes(), "FOUNDRY_ESP",
                                         derive_fat_serial(o.common.seed, "key-esp"), esp.first_lba,
                                         {"/EFI", "/EFI/BOOT", "/loader", "/loader/entries", "/live"},
                                         {{boot.loader, "/EFI/BOOT/BOOTX64.EFI"},
                                          {loader_conf_file, "/loader/loader.conf"},
                                          {entry_file, "/loader/entries/foundry.conf"},
                                          {boot.kernel, "/live/vmlinuz"},
                                          {boot.initrd, "/live/initrd.img"}},
                                         mt),
                  "{}", ctx);
  emit(progress, ProgressEvent::Kind::End, "key-esp", fmt::format("kernel {}", boot.kernel_version), since(t));

  // Stage: data partition.
  t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "key-data", fmt::format("ext4 {} ({} MiB)", o.label, datap.size_bytes() / kMiB));
  detail::Ext4Spec spec;
  spec.label = o.label;
  spec.uuid = derive_guid(o.common.seed, "key-filesystem-data");
  spec.hash_seed = derive_guid(o.common.seed, "key-filesystem-data-hash-seed");
  spec.offset = datap.offset_bytes();
  spec.bytes = datap.size_bytes() / 4096 * 4096;
  FOUNDRY_TRY_CTX(detail::make_ext4_image(data, raw, spec, epoch, work.path(), detail::tool_options(o.common, epoch)),
                  "{}", ctx);
  emit(progress, ProgressEvent::Kind::End, "key-data", fmt::format("UUID {}", spec.uuid.to_string()), since(t));

  // Stage: partition table last (neither mkfs touches it then), then rename.
  FOUNDRY_TRY_CTX(detail::write_partition_table(raw, info.layout), "{}: GPT", ctx);
  const std::string out_abs = fs::absolute(o.output, ec).string();
  FOUNDRY_TRY(detail::rename_into_place(raw, out_abs, ctx));
  info.image = detail::artifact_file(out_abs);
  info.elapsed = since(t0);
  return info;
}

}  // namespace foundry::platform
