// The live system: the tree as a squashfs, and the hybrid ISO that boots it.
//
// ISO layout (xorriso, mkisofs emulation):
//   /isolinux/isolinux.bin, ldlinux.c32, isolinux.cfg   BIOS: El Torito no-emulation
//   /boot/efi.img   UEFI: El Torito EFI image, FAT with systemd-boot, kernel
//                   and initrd (firmware reads only that FAT image)
//   /live/vmlinuz, /live/initrd.img, /live/filesystem.squashfs
// isohdpfx.bin as MBR and -isohybrid-gpt-basdat make the same file boot as
// a disk (dd to a USB key) by BIOS and UEFI too.
#include <filesystem>

#include "artifacts_util.h"
#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/gpt.h"
#include "foundry/platform/rootfs.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::emit;
using detail::since;

std::vector<std::string> live_kernel_cmdline(const std::string& label) {
  return {"boot=foundry", "foundry.live=" + label, "console=tty0", "console=ttyS0,115200n8"};
}

std::string default_volume_id(std::string_view seed) {
  return fmt::format("FOUNDRY_{:08X}", derive_fat_serial(seed, "iso-volume-id"));
}

Result<ArtifactFile> write_live_squashfs(const LiveSquashfsOptions& o) {
  const auto t0 = Clock::now();
  const std::string ctx = fmt::format("write live squashfs {}", o.output);
  if (o.output.empty()) return fail(ErrorKind::Config, "write live squashfs: no output path given");
  std::error_code ec;
  if (!fs::is_directory(o.rootfs, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: root tree {} is not a directory", ctx, o.rootfs))
                    .with_hint("build one with build_rootfs"));
  FOUNDRY_TRY(detail::require_tools(ctx, {{"mksquashfs", "squashfs-tools"}}));
  const auto epoch = detail::epoch_or_env(o.common.source_date_epoch);
  emit(o.common.progress, ProgressEvent::Kind::Begin, "squashfs", fmt::format("squashfs of {}", o.rootfs));
  auto work = FOUNDRY_TRY_CTX(detail::scratch_for(o.output, o.common, ".foundry-squashfs-"), "{}", ctx);
  const std::string tmp = work.path() + "/filesystem.squashfs";
  FOUNDRY_TRY_CTX(detail::make_squashfs(o.rootfs, tmp, o.compression, o.compression_level, epoch,
                                        detail::tool_options(o.common, epoch)),
                  "{}", ctx);
  FOUNDRY_TRY(detail::rename_into_place(tmp, fs::absolute(o.output, ec).string(), ctx));
  auto f = detail::artifact_file(o.output);
  emit(o.common.progress, ProgressEvent::Kind::End, "squashfs", fmt::format("{} ({} MiB)", o.output, f.size / kMiB),
       since(t0));
  return f;
}

namespace {

bool valid_volume_id(const std::string& v) {
  if (v.empty() || v.size() > 32) return false;
  for (char c : v)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string isolinux_cfg(const std::string& title, const std::string& cmdline) {
  // SERIAL first: the menu and messages also go to the first serial port,
  // where a headless machine (and the tests) can see them.
  return fmt::format(
      "SERIAL 0 115200\n"
      "DEFAULT foundry\n"
      "PROMPT 0\n"
      "TIMEOUT 0\n"
      "LABEL foundry\n"
      "  MENU LABEL {}\n"
      "  LINUX /live/vmlinuz\n"
      "  INITRD /live/initrd.img\n"
      "  APPEND {}\n",
      title, cmdline);
}

}  // namespace

namespace detail {

Result<LiveBoot> prepare_live_boot(const std::string& rootfs, const std::string& efi_loader,
                                   const std::string& scratch, std::optional<int64_t> epoch) {
  auto tree = FOUNDRY_TRY(inspect_rootfs(rootfs));
  LiveBoot b;
  b.kernel = rootfs + "/" + tree.kernel;
  b.kernel_version = tree.kernel_version;
  b.loader = find_efi_boot_loader(efi_loader, rootfs);
  if (b.loader.empty())
    return fail(Error(ErrorKind::Operation, "no systemd-bootx64.efi in the tree or on this machine")
                    .with_hint("include the package systemd-boot-efi in the image"));
  auto mods = live_initramfs_modules();
  auto layer = FOUNDRY_TRY(make_initramfs_layer(rootfs, tree.kernel_version, mods,
                                                {"loop", "squashfs", "overlay", "isofs"}, epoch.value_or(0)));
  b.initrd = scratch + "/initrd.img";
  FOUNDRY_TRY(write_layered_initrd(rootfs + "/" + tree.initrd, layer, b.initrd));
  return b;
}

}  // namespace detail

Result<LiveIsoInfo> write_live_iso(const LiveIsoOptions& o) {
  const auto t0 = Clock::now();
  const std::string ctx = fmt::format("write live ISO {}", o.output);
  LiveIsoInfo info;
  if (o.output.empty()) return fail(ErrorKind::Config, "write live ISO: no output path given");
  std::error_code ec;
  if (!fs::is_directory(o.rootfs, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: root tree {} is not a directory", ctx, o.rootfs))
                    .with_hint("build one with build_rootfs"));
  info.volume_id = o.volume_id.empty() ? default_volume_id(o.common.seed) : o.volume_id;
  if (!valid_volume_id(info.volume_id))
    return fail(Error(ErrorKind::Validation, fmt::format("{}: '{}' is not a usable ISO volume id", ctx, info.volume_id))
                    .with_hint("use 1 to 32 characters of A-Z, 0-9 and _"));
  const std::string isolinux_bin = o.isolinux_bin.empty() ? "/usr/lib/ISOLINUX/isolinux.bin" : o.isolinux_bin;
  const std::string isohybrid_mbr = o.isohybrid_mbr.empty() ? "/usr/lib/ISOLINUX/isohdpfx.bin" : o.isohybrid_mbr;
  const std::string ldlinux =
      o.ldlinux_c32.empty() ? "/usr/lib/syslinux/modules/bios/ldlinux.c32" : o.ldlinux_c32;
  for (const auto& [f, pkg] : {std::pair{isolinux_bin, "isolinux"}, std::pair{isohybrid_mbr, "isolinux"},
                               std::pair{ldlinux, "syslinux-common"}})
    if (!fs::exists(f, ec))
      return fail(Error(ErrorKind::Operation, fmt::format("{}: {} is missing", ctx, f))
                      .with_hint(fmt::format("install the Debian package {} (scripts/install-deps)", pkg)));
  FOUNDRY_TRY(detail::require_tools(ctx, {{"xorriso", "xorriso"},
                                          {"mksquashfs", "squashfs-tools"},
                                          {"mformat", "mtools"},
                                          {"mcopy", "mtools"},
                                          {"mmd", "mtools"}}));
  const auto epoch = detail::epoch_or_env(o.common.source_date_epoch);
  auto work = FOUNDRY_TRY_CTX(detail::scratch_for(o.output, o.common, ".foundry-iso-"), "{}", ctx);
  const auto& progress = o.common.progress;

  // Stage: kernel, initrd with the live layer.
  auto t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "live-boot", "kernel and initramfs with the live layer");
  auto boot = FOUNDRY_TRY_CTX(detail::prepare_live_boot(o.rootfs, o.efi_boot_loader, work.path(), epoch), "{}", ctx);
  info.kernel_version = boot.kernel_version;
  auto args = live_kernel_cmdline(info.volume_id);
  args.insert(args.end(), o.extra_kernel_args.begin(), o.extra_kernel_args.end());
  info.cmdline = detail::join_args(args);
  emit(progress, ProgressEvent::Kind::End, "live-boot", fmt::format("kernel {}", boot.kernel_version), since(t));

  // Stage: the root squashfs (unless given).
  std::string squashfs = o.squashfs;
  if (squashfs.empty()) {
    t = Clock::now();
    emit(progress, ProgressEvent::Kind::Begin, "squashfs", fmt::format("squashfs of {}", o.rootfs));
    squashfs = work.path() + "/filesystem.squashfs";
    FOUNDRY_TRY_CTX(detail::make_squashfs(o.rootfs, squashfs, o.compression, o.compression_level, epoch,
                                          detail::tool_options(o.common, epoch)),
                    "{}", ctx);
    emit(progress, ProgressEvent::Kind::End, "squashfs",
         fmt::format("{} MiB", fs::file_size(squashfs, ec) / kMiB), since(t));
  } else if (!fs::is_regular_file(squashfs, ec)) {
    return fail(Error(ErrorKind::Config, fmt::format("{}: squashfs {} does not exist", ctx, squashfs))
                    .with_hint("make it with write_live_squashfs or leave the option empty"));
  }

  // Stage: the EFI El Torito image.
  t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "efi-image", "FAT image with systemd-boot, kernel and initramfs");
  const std::string loader_conf_file = work.path() + "/loader.conf";
  const std::string entry_file = work.path() + "/foundry.conf";
  FOUNDRY_TRY_CTX(write_file_atomic(loader_conf_file, loader_conf()), "{}", ctx);
  std::string entry = fmt::format(
      "title   {}\n"
      "version {}\n"
      "linux   /live/vmlinuz\n"
      "initrd  /live/initrd.img\n"
      "options {}\n",
      o.title, boot.kernel_version, info.cmdline);
  FOUNDRY_TRY_CTX(write_file_atomic(entry_file, entry), "{}", ctx);
  uint64_t payload = fs::file_size(boot.kernel, ec) + fs::file_size(boot.initrd, ec) + fs::file_size(boot.loader, ec);
  uint64_t efi_bytes = (payload + payload / 16 + 2 * kMiB + kMiB - 1) / kMiB * kMiB;
  // El Torito counts an image's 512-byte sectors in 16 bits: firmware
  // reading the CD sees at most 32 MiB of it.
  if (efi_bytes > 32 * kMiB)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("{}: kernel, initramfs and boot loader ({} MiB) exceed the 32 MiB an El Torito EFI "
                                  "image can hold",
                                  ctx, payload / kMiB + 1))
                    .with_hint("use a smaller initramfs (initramfs policy 'virtual', COMPRESS=zstd)"));
  const std::string efi_img = work.path() + "/efi.img";
  auto mt = FOUNDRY_TRY_CTX(detail::mtools_options(o.common, epoch, work.path()), "{}", ctx);
  FOUNDRY_TRY_CTX(detail::make_fat_image(efi_img, efi_bytes, "FOUNDRY_EFI",
                                         derive_fat_serial(o.common.seed, "iso-efi-image"), 0,
                                         {"/EFI", "/EFI/BOOT", "/loader", "/loader/entries", "/live"},
                                         {{boot.loader, "/EFI/BOOT/BOOTX64.EFI"},
                                          {loader_conf_file, "/loader/loader.conf"},
                                          {entry_file, "/loader/entries/foundry.conf"},
                                          {boot.kernel, "/live/vmlinuz"},
                                          {boot.initrd, "/live/initrd.img"}},
                                         mt),
                  "{}", ctx);
  emit(progress, ProgressEvent::Kind::End, "efi-image", fmt::format("{} MiB", efi_bytes / kMiB), since(t));

  // Stage: the ISO.
  t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "iso", fmt::format("hybrid ISO {} (BIOS + UEFI)", info.volume_id));
  const std::string cfg = work.path() + "/isolinux.cfg";
  FOUNDRY_TRY_CTX(write_file_atomic(cfg, isolinux_cfg(o.title, info.cmdline)), "{}", ctx);
  // xorriso patches the boot info table into its copy of isolinux.bin,
  // never into the source: still, give it a private copy.
  const std::string isolinux_copy = work.path() + "/isolinux.bin";
  fs::copy_file(isolinux_bin, isolinux_copy, ec);
  if (ec) return fail(ErrorKind::Storage, "{}: cannot copy {}: {}", ctx, isolinux_bin, ec.message());
  const std::string tmp_iso = work.path() + "/live.iso";
  // With SOURCE_DATE_EPOCH set, xorriso uses it for every volume and file
  // time and derives the GPT/MBR identifiers from it (xorriso(1),
  // "SOURCE_DATE_EPOCH"); -r makes owners root and modes uniform.
  std::vector<std::string> argv = {
      "xorriso", "-as", "mkisofs", "-o", tmp_iso, "-V", info.volume_id, "-r", "-iso-level", "3",
      "-isohybrid-mbr", isohybrid_mbr,
      "-c", "isolinux/boot.cat", "-b", "isolinux/isolinux.bin", "-no-emul-boot", "-boot-load-size", "4",
      "-boot-info-table",
      "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
  };
  // SOURCE_DATE_EPOCH alone keeps each file's mtime ("set_to_mtime"), and
  // the files made in scratch are new on every build.
  if (epoch) argv.insert(argv.end(), {"--set_all_file_dates", fmt::format("={}", *epoch)});
  argv.insert(argv.end(), {
      "-graft-points",
      "isolinux/isolinux.bin=" + isolinux_copy,
      "isolinux/ldlinux.c32=" + ldlinux,
      "isolinux/isolinux.cfg=" + cfg,
      "boot/efi.img=" + efi_img,
      "live/vmlinuz=" + boot.kernel,
      "live/initrd.img=" + boot.initrd,
      "live/filesystem.squashfs=" + squashfs,
  });
  FOUNDRY_TRY_CTX(run_checked(argv, detail::tool_options(o.common, epoch)), "{}: xorriso", ctx);
  fs::path out_abs = fs::absolute(o.output, ec);
  FOUNDRY_TRY(detail::rename_into_place(tmp_iso, out_abs.string(), ctx));
  info.iso = detail::artifact_file(out_abs.string());
  emit(progress, ProgressEvent::Kind::End, "iso", fmt::format("{} ({} MiB)", o.output, info.iso.size / kMiB),
       since(t));
  info.elapsed = since(t0);
  return info;
}

}  // namespace foundry::platform
