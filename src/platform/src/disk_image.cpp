#include "foundry/platform/disk_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/common/subprocess.h"
#include "foundry/common/unique_fd.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/rootfs.h"
#include "fs_util.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string_view to_string(ImageFormat f) {
  switch (f) {
    case ImageFormat::Raw: return "raw";
    case ImageFormat::Qcow2: return "qcow2";
    case ImageFormat::Vpc: return "vpc";
  }
  return "raw";
}

Result<ImageFormat> parse_image_format(std::string_view s) {
  if (s == "raw" || s == "img") return ImageFormat::Raw;
  if (s == "qcow2") return ImageFormat::Qcow2;
  if (s == "vpc" || s == "vhd") return ImageFormat::Vpc;
  return fail(Error(ErrorKind::Config, fmt::format("unknown image format '{}'", s))
                  .with_hint("use raw, qcow2 or vpc (VHD)"));
}

Result<uint64_t> parse_size(std::string_view s) {
  auto bad = [&] {
    return fail(Error(ErrorKind::Config, fmt::format("'{}' is not a size", s))
                    .with_hint("write a number of bytes or a number with K, M, G or T (binary units), e.g. 3G"));
  };
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return bad();
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return bad();
  std::string unit(s.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.erase(unit.size() - 2);
  else if (unit.size() == 2 && unit.back() == 'B') unit.pop_back();
  int shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "K") shift = 10;
  else if (unit == "M") shift = 20;
  else if (unit == "G") shift = 30;
  else if (unit == "T") shift = 40;
  else return bad();
  if (shift && v > (UINT64_MAX >> shift)) return bad();
  return v << shift;
}

DiskIdentity DiskIdentity::derive(std::string_view seed) {
  DiskIdentity d;
  d.disk = derive_guid(seed, "disk");
  d.esp_partition = derive_guid(seed, "partition-esp");
  d.root_partition = derive_guid(seed, "partition-root");
  d.root_fs = derive_guid(seed, "filesystem-root");
  d.root_hash_seed = derive_guid(seed, "filesystem-root-hash-seed");
  d.esp_serial = derive_fat_serial(seed, "filesystem-esp");
  return d;
}

std::vector<std::string> default_kernel_cmdline() {
  // The last console= is /dev/console, where systemd and the initramfs write:
  // the serial port, which is what libvirt logs and what tests read.
  return {"ro", "console=tty0", "console=ttyS0,115200n8"};
}

std::string loader_conf() {
  // timeout 0: no menu unless a key is held; editor no: the command line
  // cannot be changed from the console.
  return "default foundry.conf\ntimeout 0\neditor no\n";
}

std::string loader_entry(const std::string& title, const std::string& kernel_version, const std::string& cmdline) {
  return fmt::format(
      "title   {}\n"
      "version {}\n"
      "linux   /foundry/vmlinuz\n"
      "initrd  /foundry/initrd.img\n"
      "options {}\n",
      title, kernel_version, cmdline);
}

std::string fstab_for(const DiskIdentity& ids) {
  return fmt::format(
      "# Written by foundry assemble_disk: file systems by UUID (derived from the image seed).\n"
      "UUID={}\t/\text4\tdefaults,errors=remount-ro\t0\t1\n"
      "# The ESP holds the boot loader, kernel and initramfs; nofail so a missing vfat driver never blocks boot.\n"
      "UUID={}\t/boot/efi\tvfat\tumask=0077,nofail,noauto,x-systemd.automount\t0\t0\n",
      ids.root_fs.to_string(), fat_serial_to_string(ids.esp_serial));
}

Status convert_image(const std::string& raw, const std::string& out, ImageFormat fmt, bool compress,
                     std::chrono::seconds timeout) {
  std::vector<std::string> argv = {"qemu-img", "convert", "-f", "raw", "-O", std::string(to_string(fmt))};
  if (fmt == ImageFormat::Qcow2 && compress) argv.push_back("-c");
  // A fixed VHD is what Azure imports; force_size keeps the exact byte size
  // instead of rounding it to a CHS geometry.
  if (fmt == ImageFormat::Vpc) argv.insert(argv.end(), {"-o", "subformat=fixed,force_size=on"});
  argv.push_back(raw);
  argv.push_back(out);
  RunOptions ro;
  ro.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  FOUNDRY_TRY_CTX(run_checked(argv, ro), "convert {} to {} ({})", raw, out, to_string(fmt));
  return ok();
}

namespace {

using detail::emit;
using detail::since;

std::optional<int64_t> effective_epoch(const DiskOptions& o) { return detail::epoch_or_env(o.source_date_epoch); }

using detail::kMke2fsConf;

// Inode times of the root file system (fs_util.h: append_ext4_time_commands).
Result<size_t> clamp_inode_times(const std::string& tree, const std::string& raw, uint64_t offset, int64_t epoch,
                                 const std::string& work, const RunOptions& base) {
  std::string cmds;
  size_t count = FOUNDRY_TRY(detail::append_ext4_time_commands(tree, epoch, cmds));
  FOUNDRY_TRY_CTX(detail::run_debugfs(fmt::format("{}?offset={}", raw, offset), cmds, work + "/debugfs-times", base),
                  "set inode times");
  return count;
}

std::string find_boot_loader(const DiskOptions& o) {
  if (!o.boot_loader.empty()) return o.boot_loader;
  std::error_code ec;
  for (const char* rel : {"/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/lib/systemd/boot/efi/systemd-bootx64.efi"}) {
    if (fs::exists(o.rootfs + rel, ec)) return o.rootfs + rel;
  }
  for (const char* abs : {"/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/lib/systemd/boot/efi/systemd-bootx64.efi"}) {
    if (fs::exists(abs, ec)) return abs;
  }
  return "";
}

}  // namespace

Result<DiskInfo> assemble_disk(const DiskOptions& o) {
  const auto t0 = Clock::now();
  const std::string ctx = fmt::format("assemble disk image {}", o.output);
  DiskInfo info;
  info.output = o.output;
  info.format = o.format;
  info.ids = DiskIdentity::derive(o.seed);
  const auto epoch = effective_epoch(o);

  // Stage: check inputs and plan the layout.
  auto t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "layout", "checking the tree and planning partitions");
  std::error_code ec;
  if (o.output.empty()) return fail(ErrorKind::Config, "assemble disk image: no output path given");
  if (!fs::is_directory(o.rootfs, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: root tree {} is not a directory", ctx, o.rootfs))
                    .with_hint("build one with build_rootfs / foundry platform base-image"));
  for (const char* tool : {"mformat", "mmd", "mcopy", "mkfs.ext4", "debugfs"})
    if (find_program(tool).empty())
      return fail(Error(ErrorKind::Operation, fmt::format("{}: {} is not installed", ctx, tool))
                      .with_hint("install mtools and e2fsprogs (scripts/install-deps)"));
  if (o.format != ImageFormat::Raw && find_program("qemu-img").empty())
    return fail(Error(ErrorKind::Operation, fmt::format("{}: qemu-img is not installed", ctx))
                    .with_hint("install qemu-utils (scripts/install-deps)"));
  auto tree = FOUNDRY_TRY_CTX(inspect_rootfs(o.rootfs), "{}", ctx);
  info.kernel_version = tree.kernel_version;
  std::string loader = find_boot_loader(o);
  if (loader.empty())
    return fail(Error(ErrorKind::Operation, fmt::format("{}: no systemd-bootx64.efi in the tree or on this machine", ctx))
                    .with_hint("include the package systemd-boot-efi in the image"));
  const std::string kernel = o.rootfs + "/" + tree.kernel;
  const std::string initrd = o.rootfs + "/" + tree.initrd;
  uint64_t esp_payload = fs::file_size(kernel, ec) + fs::file_size(initrd, ec) + fs::file_size(loader, ec);
  // FAT32 needs at least 65525 clusters; mformat picks 512-byte clusters
  // for small volumes, so 64 MiB is a safe floor.
  if (o.esp_size_bytes < 64 * kMiB)
    return fail(Error(ErrorKind::Validation, fmt::format("{}: an ESP of {} MiB is too small for FAT32", ctx,
                                                         o.esp_size_bytes / kMiB))
                    .with_hint("give the ESP at least 64 MiB"));
  if (esp_payload + 4 * kMiB > o.esp_size_bytes)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("{}: kernel, initramfs and boot loader ({} MiB) do not fit the {} MiB ESP", ctx,
                                  esp_payload / kMiB + 1, o.esp_size_bytes / kMiB))
                    .with_hint("make the ESP larger"));

  std::vector<PartitionSpec> parts = {
      {"ESP", *parse_guid(gpt_type::kEsp), info.ids.esp_partition, o.esp_size_bytes, 0},
      {o.root_label, *parse_guid(gpt_type::kLinuxRootX86_64), info.ids.root_partition, 0, 0},
  };
  info.layout = FOUNDRY_TRY_CTX(plan_gpt_layout(o.size_bytes, info.ids.disk, parts), "{}", ctx);
  const Partition& esp = info.layout.partitions[0];
  const Partition& rootp = info.layout.partitions[1];
  info.tree_bytes = detail::tree_allocated_bytes(o.rootfs);
  // ext4 metadata (inode tables at one inode per 16 KiB, journal, reserved
  // blocks) takes about 10% plus the journal; 5% more leaves room to boot.
  uint64_t need = info.tree_bytes + info.tree_bytes / 5 + 128 * kMiB;
  if (need > rootp.size_bytes())
    return fail(Error(ErrorKind::Validation,
                      fmt::format("{}: the tree ({} MiB) does not fit a {} MiB root partition", ctx,
                                  info.tree_bytes / kMiB, rootp.size_bytes() / kMiB))
                    .with_hint(fmt::format("make the disk at least {} MiB (--size)",
                                           (need + o.esp_size_bytes) / kMiB + 4)));
  emit(o.progress, ProgressEvent::Kind::End, "layout",
       fmt::format("GPT {}: ESP {} MiB at {} MiB, root {} MiB ({} MiB of files)", info.ids.disk.to_string(),
                   esp.size_bytes() / kMiB, esp.offset_bytes() / kMiB, rootp.size_bytes() / kMiB,
                   info.tree_bytes / kMiB),
       since(t));

  // Scratch next to the output so the final rename stays on one file system.
  fs::path out_abs = fs::absolute(o.output, ec);
  std::string work_parent = o.work_dir.empty() ? out_abs.parent_path().string() : o.work_dir;
  auto work = FOUNDRY_TRY_CTX(detail::TempDir::create(work_parent, ".foundry-disk-"), "{}", ctx);
  const std::string raw = work.path() + "/disk.raw";
  {
    UniqueFd fd(::open(raw.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(ErrorKind::Storage, "{}: cannot create {}", ctx, raw);
    if (::ftruncate(fd.get(), static_cast<off_t>(o.size_bytes)) != 0)
      return fail_errno(ErrorKind::Storage, "{}: cannot size {} to {} bytes", ctx, raw, o.size_bytes);
  }

  // The tree's fstab must name this disk's UUIDs before mkfs copies it.
  // Rewritten only when it differs: a new inode is a new ctime, and two
  // disks assembled from one tree with one seed must be identical.
  if (read_file(o.rootfs + "/etc/fstab").value_or("") != fstab_for(info.ids))
    FOUNDRY_TRY_CTX(detail::write_in_root(o.rootfs, "etc/fstab", fstab_for(info.ids), 0644, epoch), "{}: fstab",
                    ctx);

  // Stage: ESP. mtools addresses the partition inside the image file with
  // the "@@offset" suffix, so nothing is mounted and nothing is copied twice.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "esp", "FAT32 ESP with systemd-boot, kernel and initramfs");
  RunOptions mt;
  mt.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.tool_timeout);
  // MTOOLSRC: an empty config so a user's ~/.mtoolsrc cannot change names
  // or case; SOURCE_DATE_EPOCH: mtools then stamps every entry with it.
  const std::string mtoolsrc = work.path() + "/mtoolsrc";
  FOUNDRY_TRY_CTX(write_file_atomic(mtoolsrc, ""), "{}", ctx);
  mt.extra_env = {"MTOOLS_SKIP_CHECK=1", "MTOOLSRC=" + mtoolsrc};
  if (epoch) mt.extra_env.push_back(fmt::format("SOURCE_DATE_EPOCH={}", *epoch));
  const std::string img = fmt::format("{}@@{}", raw, esp.offset_bytes());
  auto esp_step = [&](std::vector<std::string> argv) -> Status {
    FOUNDRY_TRY_CTX(run_checked(argv, mt), "{}: ESP", ctx);
    return ok();
  };
  // -H: hidden sectors = the partition's start, as firmware expects of a
  // partitioned volume; -N: the serial fstab names.
  FOUNDRY_TRY(esp_step({"mformat", "-i", img, "-F", "-T", std::to_string(esp.size_bytes() / kSectorSize), "-h", "64",
                        "-s", "32", "-H", std::to_string(esp.first_lba), "-N",
                        fmt::format("{:08x}", info.ids.esp_serial), "-v", o.esp_label, "::"}));
  FOUNDRY_TRY(esp_step({"mmd", "-i", img, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries", "::/foundry"}));
  std::vector<std::string> cmdline = {"root=UUID=" + info.ids.root_fs.to_string()};
  cmdline.insert(cmdline.end(), o.kernel_cmdline.begin(), o.kernel_cmdline.end());
  for (const auto& a : cmdline) info.cmdline += (info.cmdline.empty() ? "" : " ") + a;
  const std::string loader_conf_file = work.path() + "/loader.conf";
  const std::string entry_file = work.path() + "/foundry.conf";
  FOUNDRY_TRY_CTX(write_file_atomic(loader_conf_file, loader_conf()), "{}", ctx);
  FOUNDRY_TRY_CTX(write_file_atomic(entry_file,
                                    loader_entry(o.title, tree.kernel_version, info.cmdline)),
                  "{}", ctx);
  // One file per call, in a fixed order: the FAT layout is then the same on
  // every build.
  FOUNDRY_TRY(esp_step({"mcopy", "-i", img, loader, "::/EFI/BOOT/BOOTX64.EFI"}));
  FOUNDRY_TRY(esp_step({"mcopy", "-i", img, loader_conf_file, "::/loader/loader.conf"}));
  FOUNDRY_TRY(esp_step({"mcopy", "-i", img, entry_file, "::/loader/entries/foundry.conf"}));
  FOUNDRY_TRY(esp_step({"mcopy", "-i", img, kernel, "::/foundry/vmlinuz"}));
  FOUNDRY_TRY(esp_step({"mcopy", "-i", img, initrd, "::/foundry/initrd.img"}));
  emit(o.progress, ProgressEvent::Kind::End, "esp",
       fmt::format("ESP {} (serial {}): systemd-boot, kernel {}", o.esp_label, fat_serial_to_string(info.ids.esp_serial),
                   tree.kernel_version),
       since(t));

  // Stage: root file system, written by mke2fs at the partition's offset.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "root-fs",
       fmt::format("ext4 from {} ({} MiB of files)", o.rootfs, info.tree_bytes / kMiB));
  const std::string mke2fs_conf = work.path() + "/mke2fs.conf";
  FOUNDRY_TRY_CTX(write_file_atomic(mke2fs_conf, kMke2fsConf), "{}", ctx);
  RunOptions mk;
  mk.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.tool_timeout);
  mk.extra_env = {"MKE2FS_CONFIG=" + mke2fs_conf};
  // E2FSPROGS_FAKE_TIME fixes the superblock times (mkfs time, last write).
  if (epoch) mk.extra_env.push_back(fmt::format("E2FSPROGS_FAKE_TIME={}", *epoch));
  const uint64_t block = 4096;
  FOUNDRY_TRY_CTX(
      run_checked({"mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", std::to_string(block), "-L", o.root_label, "-U",
                   info.ids.root_fs.to_string(), "-E",
                   fmt::format("root_owner=0:0,hash_seed={},offset={},nodiscard,lazy_itable_init=0,lazy_journal_init=0",
                               info.ids.root_hash_seed.to_string(), rootp.offset_bytes()),
                   "-d", o.rootfs, raw, std::to_string(rootp.size_bytes() / block)},
                  mk),
      "{}: root file system", ctx);
  emit(o.progress, ProgressEvent::Kind::End, "root-fs",
       fmt::format("ext4 {} UUID {}", o.root_label, info.ids.root_fs.to_string()), since(t));

  if (epoch) {
    t = Clock::now();
    emit(o.progress, ProgressEvent::Kind::Begin, "times", "fixing inode times for a reproducible file system");
    auto n = FOUNDRY_TRY_CTX(clamp_inode_times(o.rootfs, raw, rootp.offset_bytes(), *epoch, work.path(), mk),
                             "{}: root file system times", ctx);
    emit(o.progress, ProgressEvent::Kind::End, "times", fmt::format("{} inodes set to SOURCE_DATE_EPOCH {}", n, *epoch),
         since(t));
  }

  // Stage: partition table, written last: neither mkfs touches it then.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "gpt", "writing the partition table");
  FOUNDRY_TRY_CTX(detail::write_partition_table(raw, info.layout), "{}: GPT", ctx);
  emit(o.progress, ProgressEvent::Kind::End, "gpt", fmt::format("GPT disk {}", info.ids.disk.to_string()), since(t));

  // Stage: the output format, then one rename into place.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "convert", fmt::format("writing {} image", to_string(o.format)));
  std::string final_tmp = raw;
  if (o.format != ImageFormat::Raw) {
    final_tmp = work.path() + "/disk." + std::string(to_string(o.format));
    FOUNDRY_TRY_CTX(convert_image(raw, final_tmp, o.format, o.compress, o.tool_timeout), "{}", ctx);
    // qemu's vpc driver stamps the footer with the current time and a random
    // UUID: the same normalization as the cluster build's VHD (the VHD epoch,
    // 2000-01-01, when no SOURCE_DATE_EPOCH is set).
    if (o.format == ImageFormat::Vpc)
      FOUNDRY_TRY_CTX(normalize_vhd_footer(final_tmp, epoch.value_or(946684800), derive_guid(o.seed, "vhd-unique-id")),
                      "{}", ctx);
  }
  if (::rename(final_tmp.c_str(), out_abs.c_str()) != 0)
    return fail_errno(ErrorKind::Storage, "{}: cannot move the image to {}", ctx, out_abs.string());
  emit(o.progress, ProgressEvent::Kind::End, "convert",
       fmt::format("{} ({}, {} GiB virtual)", o.output, to_string(o.format), static_cast<double>(o.size_bytes) / (1 << 30)),
       since(t));
  info.elapsed = since(t0);
  return info;
}

std::string describe_disk_inputs(const DiskOptions& o) {
  std::string d;
  d += fmt::format("disk-format: {}\n", to_string(o.format));
  d += fmt::format("disk-size: {}\n", o.size_bytes);
  d += fmt::format("esp-size: {}\n", o.esp_size_bytes);
  d += fmt::format("seed: {}\n", o.seed);
  d += fmt::format("labels: {} {}\n", o.root_label, o.esp_label);
  d += fmt::format("title: {}\n", o.title);
  d += fmt::format("compress: {}\n", o.compress);
  d += fmt::format("boot-loader: {}\n", o.boot_loader.empty() ? "from the tree" : o.boot_loader);
  std::string cmdline;
  for (const auto& a : o.kernel_cmdline) cmdline += " " + a;
  d += "cmdline:" + cmdline + "\n";
  if (auto e = effective_epoch(o)) d += fmt::format("source-date-epoch: {}\n", *e);
  d += "loader.conf:\n" + loader_conf();
  d += "entry:\n" + loader_entry(o.title, "VERSION", "CMDLINE");
  d += "fstab:\n" + fstab_for(DiskIdentity::derive(o.seed));
  d += std::string("mke2fs.conf:\n") + kMke2fsConf;
  return d;
}

}  // namespace foundry::platform
