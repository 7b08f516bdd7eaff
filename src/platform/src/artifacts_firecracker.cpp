// The Firecracker kit. Firecracker on x86_64 boots an uncompressed ELF
// kernel only, so the vmlinux is taken out of the tree's bzImage here; the
// tree's initramfs gets Foundry's layer, because Debian builds virtio_mmio
// (Firecracker's only transport), virtio_blk and ext4 as modules.
#include <lzma.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "artifacts_util.h"
#include "foundry/common/file.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/gpt.h"
#include "foundry/platform/rootfs.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::emit;
using detail::since;

namespace {

uint32_t le32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3])) << 24;
}

Result<std::string> unxz(std::string_view in, size_t expect) {
  lzma_stream strm = LZMA_STREAM_INIT;
  // No LZMA_CONCATENATED: the decoder stops at the end of the first stream
  // (the kernel's payload is followed by its 4-byte uncompressed size).
  if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK)
    return fail(ErrorKind::Operation, "cannot start the xz decoder");
  std::string out(expect ? expect : in.size() * 4, '\0');
  strm.next_in = reinterpret_cast<const uint8_t*>(in.data());
  strm.avail_in = in.size();
  size_t done = 0;
  lzma_ret r = LZMA_OK;
  while (r == LZMA_OK) {
    if (done == out.size()) out.resize(out.size() * 2);
    strm.next_out = reinterpret_cast<uint8_t*>(out.data() + done);
    strm.avail_out = out.size() - done;
    r = lzma_code(&strm, LZMA_FINISH);
    done = out.size() - strm.avail_out;
  }
  lzma_end(&strm);
  if (r != LZMA_STREAM_END) return fail(ErrorKind::Operation, "xz payload is corrupt (liblzma error {})", static_cast<int>(r));
  out.resize(done);
  return out;
}

Result<std::string> ungzip(std::string_view in, size_t expect) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return fail(ErrorKind::Operation, "cannot start the gzip decoder");
  std::string out(expect ? expect : in.size() * 4, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  size_t done = 0;
  int r = Z_OK;
  while (r == Z_OK) {
    if (done == out.size()) out.resize(out.size() * 2);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + done);
    z.avail_out = static_cast<uInt>(out.size() - done);
    r = inflate(&z, Z_NO_FLUSH);
    done = out.size() - z.avail_out;
    if (r == Z_BUF_ERROR && z.avail_out != 0) break;
  }
  inflateEnd(&z);
  if (r != Z_STREAM_END) return fail(ErrorKind::Operation, "gzip payload is corrupt (zlib error {})", r);
  out.resize(done);
  return out;
}

}  // namespace

Result<std::string> extract_vmlinux(std::string_view bz) {
  // Linux x86 boot protocol (Documentation/arch/x86/boot.rst): "HdrS" at
  // 0x202, protocol version at 0x206, setup_sects at 0x1f1 (0 means 4);
  // from 2.08 on payload_offset/payload_length at 0x248/0x24c, relative to
  // the protected-mode code after the setup sectors.
  if (bz.size() < 0x250 || bz.substr(0x202, 4) != "HdrS")
    return fail(Error(ErrorKind::Validation, "not an x86 bzImage (no 'HdrS' boot header)")
                    .with_hint("give the tree's boot/vmlinuz-VERSION"));
  uint16_t version = static_cast<uint16_t>(static_cast<uint8_t>(bz[0x206]) | static_cast<uint8_t>(bz[0x207]) << 8);
  if (version < 0x208)
    return fail(ErrorKind::Validation, "bzImage boot protocol {}.{:02} has no payload fields (2.08+ needed)",
                version >> 8, version & 0xff);
  unsigned setup_sects = static_cast<uint8_t>(bz[0x1f1]);
  if (setup_sects == 0) setup_sects = 4;
  const size_t pm_start = (setup_sects + 1) * 512ull;
  const size_t off = pm_start + le32(bz, 0x248);
  const size_t len = le32(bz, 0x24c);
  if (len < 8 || off + len > bz.size())
    return fail(ErrorKind::Validation, "bzImage payload ({} bytes at {}) lies outside the file ({} bytes)", len, off,
                bz.size());
  std::string_view payload = bz.substr(off, len);
  // The build appends the uncompressed size, little endian, to the payload.
  const size_t expect = le32(payload, len - 4);
  std::string elf;
  if (payload.substr(0, 6) == std::string_view("\xfd" "7zXZ\0", 6)) {
    elf = FOUNDRY_TRY_CTX(unxz(payload, expect), "extract vmlinux");
  } else if (static_cast<uint8_t>(payload[0]) == 0x1f && static_cast<uint8_t>(payload[1]) == 0x8b) {
    elf = FOUNDRY_TRY_CTX(ungzip(payload, expect), "extract vmlinux");
  } else {
    const char* what = "an unknown format";
    if (payload.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) what = "zstd";
    else if (payload.substr(0, 3) == "BZh") what = "bzip2";
    else if (payload.substr(0, 4) == std::string_view("\x02\x21\x4c\x18", 4)) what = "lz4";
    else if (payload.substr(0, 3) == std::string_view("\x5d\x00\x00", 3)) what = "lzma";
    return fail(Error(ErrorKind::Operation, fmt::format("the bzImage payload is compressed with {}", what))
                    .with_hint("use a kernel built with CONFIG_KERNEL_XZ or CONFIG_KERNEL_GZIP (Debian: xz)"));
  }
  if (elf.size() < 64 || elf.substr(0, 4) != "\x7f" "ELF")
    return fail(ErrorKind::Operation, "the decompressed bzImage payload is not an ELF file");
  if (expect && elf.size() != expect)
    return fail(ErrorKind::Operation, "the decompressed kernel has {} bytes, the bzImage says {}", elf.size(), expect);
  return elf;
}

std::vector<std::string> firecracker_boot_args() {
  // Firecracker's recommended arguments (reboot=k: a guest reboot ends the
  // VMM; panic=1; pci=off: no PCI bus; i8042.*: skip probing the absent
  // keyboard controller, seconds at boot), then Foundry's initramfs layer
  // (boot=foundry loads virtio_mmio) and the root drive.
  return {"console=ttyS0", "reboot=k",  "panic=1",      "pci=off",  "i8042.noaux", "i8042.nomux",
          "i8042.nopnp",   "i8042.dumbkbd", "boot=foundry", "root=/dev/vda", "rw"};
}

std::string firecracker_config_json(const FirecrackerVm& vm, const std::string& kernel, const std::string& initrd,
                                    const std::string& rootfs_image) {
  using nlohmann::ordered_json;
  auto args = firecracker_boot_args();
  args.insert(args.end(), vm.extra_boot_args.begin(), vm.extra_boot_args.end());
  ordered_json j;
  j["boot-source"] = {{"kernel_image_path", kernel}, {"initrd_path", initrd}, {"boot_args", detail::join_args(args)}};
  j["drives"] = ordered_json::array({ordered_json{{"drive_id", "rootfs"},
                                                  {"path_on_host", rootfs_image},
                                                  {"is_root_device", true},
                                                  {"is_read_only", false},
                                                  {"cache_type", "Unsafe"},
                                                  {"io_engine", "Sync"}}});
  j["machine-config"] = {{"vcpu_count", vm.vcpus}, {"mem_size_mib", vm.memory_mib}, {"smt", false}};
  j["network-interfaces"] = ordered_json::array();
  if (!vm.tap.empty()) {
    ordered_json nic = {{"iface_id", "eth0"}, {"host_dev_name", vm.tap}};
    if (!vm.guest_mac.empty()) nic["guest_mac"] = vm.guest_mac;
    j["network-interfaces"].push_back(nic);
  }
  return j.dump(2) + "\n";
}

Result<FirecrackerKitInfo> write_firecracker_kit(const FirecrackerKitOptions& o) {
  const auto t0 = Clock::now();
  const std::string ctx = fmt::format("write Firecracker kit {}", o.output_dir);
  FirecrackerKitInfo info;
  std::error_code ec;
  if (o.output_dir.empty()) return fail(ErrorKind::Config, "write Firecracker kit: no output directory given");
  if (!fs::is_directory(o.rootfs, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: root tree {} is not a directory", ctx, o.rootfs))
                    .with_hint("build one with build_rootfs"));
  const fs::path out_abs = fs::absolute(o.output_dir, ec).lexically_normal();
  if (fs::exists(out_abs, ec))
    return fail(Error(ErrorKind::Validation, fmt::format("{}: {} already exists", ctx, out_abs.string()))
                    .with_hint("remove it or choose another directory; a kit is replaced whole, never merged"));
  if (o.vms.empty()) return fail(ErrorKind::Config, "{}: no VM given", ctx);
  for (const auto& vm : o.vms) {
    if (vm.name.empty() || vm.name.find('/') != std::string::npos || vm.name[0] == '.')
      return fail(ErrorKind::Config, "{}: '{}' is not usable as a config file name", ctx, vm.name);
    if (vm.vcpus < 1 || vm.vcpus > 32)
      return fail(Error(ErrorKind::Validation, fmt::format("{}: VM {} has {} vCPUs", ctx, vm.name, vm.vcpus))
                      .with_hint("Firecracker takes 1 to 32 vCPUs"));
    if (vm.memory_mib < 128)
      return fail(Error(ErrorKind::Validation, fmt::format("{}: VM {} has {} MiB of memory", ctx, vm.name,
                                                           vm.memory_mib))
                      .with_hint("give the VM at least 128 MiB"));
  }
  FOUNDRY_TRY(detail::require_tools(ctx, {{"mkfs.ext4", "e2fsprogs"}, {"debugfs", "e2fsprogs"}}));
  const auto epoch = detail::epoch_or_env(o.common.source_date_epoch);
  const auto& progress = o.common.progress;
  auto tree = FOUNDRY_TRY_CTX(inspect_rootfs(o.rootfs), "{}", ctx);
  info.kernel_version = tree.kernel_version;

  auto work = FOUNDRY_TRY_CTX(detail::scratch_for(out_abs.string(), o.common, ".foundry-firecracker-"), "{}", ctx);
  const std::string kit = work.path() + "/kit";
  FOUNDRY_TRY_CTX(make_dirs(kit), "{}", ctx);

  // Stage: kernel.
  auto t = Clock::now();
  emit(progress, ProgressEvent::Kind::Begin, "vmlinux", fmt::format("uncompressed kernel from {}", tree.kernel));
  {
    auto bz = FOUNDRY_TRY_CTX(read_file(o.rootfs + "/" + tree.kernel), "{}", ctx);
    auto elf = FOUNDRY_TRY_CTX(extract_vmlinux(bz), "{}: {}", ctx, tree.kernel);
    FOUNDRY_TRY_CTX(write_file_atomic(kit + "/vmlinux", elf, 0644), "{}", ctx);
  }
  auto layer = FOUNDRY_TRY_CTX(make_initramfs_layer(o.rootfs, tree.kernel_version, firecracker_initramfs_modules(),
                                                    {"virtio_mmio", "virtio_blk", "ext4"}, epoch.value_or(0)),
                               "{}", ctx);
  FOUNDRY_TRY_CTX(detail::write_layered_initrd(o.rootfs + "/" + tree.initrd, layer, kit + "/initrd.img"), "{}", ctx);
  emit(progress, ProgressEvent::Kind::End, "vmlinux",
       fmt::format("vmlinux {} MiB, initramfs layer with {}", fs::file_size(kit + "/vmlinux", ec) / kMiB,
                   detail::join_args(layer.modules)),
       since(t));

  // Stage: root file system image.
  t = Clock::now();
  const uint64_t tree_bytes = detail::tree_allocated_bytes(o.rootfs);
  const uint64_t bytes = o.rootfs_image_bytes ? o.rootfs_image_bytes
                                              : detail::ext4_size_for(tree_bytes, detail::count_entries(o.rootfs));
  if (bytes % 4096 != 0) return fail(ErrorKind::Validation, "{}: root image size {} is not a multiple of 4 KiB", ctx, bytes);
  emit(progress, ProgressEvent::Kind::Begin, "firecracker-rootfs",
       fmt::format("ext4 root image, {} MiB for {} MiB of files", bytes / kMiB, tree_bytes / kMiB));
  detail::Ext4Spec spec;
  spec.label = "root";
  spec.uuid = derive_guid(o.common.seed, "firecracker-rootfs");
  spec.hash_seed = derive_guid(o.common.seed, "firecracker-rootfs-hash-seed");
  spec.bytes = bytes;
  // Firecracker's first drive is /dev/vda; the tree's fstab names the disk
  // image's root by UUID, which this file system does not have.
  spec.replace = {{"/etc/fstab",
                   "# Written by foundry write_firecracker_kit: the root drive of a Firecracker microVM.\n"
                   "/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n"}};
  FOUNDRY_TRY_CTX(detail::make_ext4_image(o.rootfs, kit + "/rootfs.ext4", spec, epoch, work.path(),
                                          detail::tool_options(o.common, epoch)),
                  "{}", ctx);
  emit(progress, ProgressEvent::Kind::End, "firecracker-rootfs", fmt::format("UUID {}", spec.uuid.to_string()),
       since(t));

  // Stage: configs, then the whole kit into place.
  for (const auto& vm : o.vms)
    FOUNDRY_TRY_CTX(write_file_atomic(kit + "/" + vm.name + ".json",
                                      firecracker_config_json(vm, "vmlinux", "initrd.img", "rootfs.ext4")),
                    "{}", ctx);
  if (epoch)
    for (const auto& e : fs::directory_iterator(kit, ec)) (void)detail::set_times(e.path().string(), *epoch);
  FOUNDRY_TRY(detail::rename_into_place(kit, out_abs.string(), ctx));
  info.dir = out_abs.string();
  info.vmlinux = info.dir + "/vmlinux";
  info.initrd = info.dir + "/initrd.img";
  info.rootfs_image = info.dir + "/rootfs.ext4";
  for (const auto& vm : o.vms) info.configs.push_back(info.dir + "/" + vm.name + ".json");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(info.dir, ec)) names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) info.files.push_back(detail::artifact_file(n));
  info.elapsed = since(t0);
  return info;
}

}  // namespace foundry::platform
