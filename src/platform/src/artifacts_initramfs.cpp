// Foundry's initramfs layer: a newc cpio archive appended to the tree's own
// initramfs. Linux unpacks concatenated archives in order (a later file
// replaces an earlier one), so the layer adds a boot script and modules to
// Debian's initramfs without rebuilding it inside the tree (which would need
// a chroot and change the input). initramfs-tools' /init sources
// /scripts/$BOOT after /scripts/local; boot=foundry selects ours.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "artifacts_util.h"
#include "foundry/common/file.h"
#include "foundry/platform/artifacts.h"

namespace foundry::platform {

namespace fs = std::filesystem;

std::vector<std::string> live_initramfs_modules() {
  // The live root (loop + squashfs + overlay on the ISO's iso9660 or the
  // recovery key's ext4) and the controllers an ISO or USB key sits on,
  // which a MODULES=list initramfs made for virtual disks does not carry.
  return {"loop",     "squashfs", "overlay",  "isofs",    "ext4",        "cdrom",    "sr_mod",
          "sd_mod",   "ahci",     "ata_piix", "usb_storage", "uas",     "xhci_pci", "ehci_pci",
          "virtio_scsi", "virtio_blk", "nvme"};
}

std::vector<std::string> firecracker_initramfs_modules() {
  // Firecracker's devices are virtio over MMIO, announced on the kernel
  // command line (virtio_mmio.device=...), which Debian builds as a module.
  return {"virtio_mmio", "virtio_blk", "ext4"};
}

std::string initramfs_boot_script() {
  return R"SH(# Foundry initramfs layer, selected by boot=foundry (docs/platform.md, "Artifacts").
# Sourced by initramfs-tools' /init after /scripts/local: local_mount_root,
# wait_for_udev and panic exist. Only the shell and klibc tools are used.
#
#   foundry.live=LABEL   the root is live/filesystem.squashfs on the file
#                        system labelled LABEL (ISO or recovery key), under
#                        a tmpfs overlay
#   (otherwise)          the root is root= as usual (Firecracker)
#   foundry.wait=N       seconds to wait for the live medium (default 60)

foundry_module_args()
{
	_args=""
	for _w in $(cat /proc/cmdline); do
		case "$_w" in
		"$1".*) _args="$_args ${_w#"$1".}" ;;
		esac
	done
	echo "$_args"
}

foundry_load_modules()
{
	[ -f /foundry/modules.order ] || return 0
	while read -r _name _file; do
		[ -n "$_name" ] || continue
		[ -d "/sys/module/$_name" ] && continue
		# Module parameters from the command line (virtio_mmio.device=...):
		# modprobe would read them, insmod needs them spelled out.
		# shellcheck disable=SC2046
		# udev may load the same module meanwhile (its alias is in the
		# initramfs): only a module that is still absent is worth a warning.
		insmod "/foundry/modules/$_file" $(foundry_module_args "$_name") 2>/dev/null || \
			[ -d "/sys/module/$_name" ] || log_warning_msg "foundry: cannot load $_name"
	done < /foundry/modules.order
}

foundry_cmdline_value()
{
	for _w in $(cat /proc/cmdline); do
		case "$_w" in
		"$1"=*) echo "${_w#"$1"=}"; return 0 ;;
		esac
	done
	return 1
}

foundry_find_medium()
{
	_label="$1"
	_mnt="$2"
	for _dev in /dev/sr* /dev/vd* /dev/sd* /dev/nvme* /dev/xvd* /dev/mmcblk*; do
		[ -b "$_dev" ] || continue
		[ "$(blkid -p -s LABEL -o value "$_dev" 2>/dev/null)" = "$_label" ] || continue
		_type=$(blkid -p -s TYPE -o value "$_dev" 2>/dev/null)
		[ -n "$_type" ] || continue
		mount -t "$_type" -o ro "$_dev" "$_mnt" 2>/dev/null || continue
		if [ -f "$_mnt/live/filesystem.squashfs" ]; then
			echo "$_dev"
			return 0
		fi
		umount "$_mnt"
	done
	return 1
}

foundry_live_mount()
{
	_label="$1"
	_run=/run/foundry
	mkdir -p "$_run/medium" "$_run/ro" "$_run/rw"
	_wait=$(foundry_cmdline_value foundry.wait) || _wait=60
	_i=0
	while ! _medium=$(foundry_find_medium "$_label" "$_run/medium"); do
		_i=$((_i + 1))
		if [ "$_i" -gt "$_wait" ]; then
			panic "foundry: no file system labelled $_label holds live/filesystem.squashfs"
			return 1
		fi
		wait_for_udev 1
		sleep 1
	done
	log_success_msg "foundry: live medium $_medium ($_label)"
	_loop=$(losetup -f) || panic "foundry: no free loop device"
	losetup "$_loop" "$_run/medium/live/filesystem.squashfs" || panic "foundry: losetup $_loop failed"
	mount -t squashfs -o ro "$_loop" "$_run/ro" || panic "foundry: cannot mount the squashfs"
	mount -t tmpfs -o mode=0755 tmpfs "$_run/rw" || panic "foundry: cannot mount the tmpfs"
	mkdir -p "$_run/rw/upper" "$_run/rw/work"
	mount -t overlay -o "lowerdir=$_run/ro,upperdir=$_run/rw/upper,workdir=$_run/rw/work" overlay "${rootmnt}" || \
		panic "foundry: cannot mount the overlay root"
	# The tree's fstab names the installed disk's root; a live system has
	# none, and systemd must not wait for it.
	cat > "${rootmnt}/etc/fstab" <<EOF
# Foundry live system: / is an overlay of $_label:/live/filesystem.squashfs
# and a tmpfs (/run/foundry); nothing else is mounted from here.
EOF
}

mountroot()
{
	foundry_load_modules
	if _label=$(foundry_cmdline_value foundry.live); then
		wait_for_udev 10
		foundry_live_mount "$_label"
	else
		local_mount_root
	fi
}
)SH";
}

namespace {

// newc ("070701") cpio: 110-byte header of hex fields, the name with its
// NUL padded to 4 bytes, the data padded to 4 bytes.
class CpioWriter {
 public:
  explicit CpioWriter(int64_t mtime) : mtime_(mtime) {}
  void dir(const std::string& name) { entry(name, S_IFDIR | 0755, 2, ""); }
  void file(const std::string& name, std::string_view data, mode_t mode = 0644) {
    entry(name, S_IFREG | mode, 1, data);
  }
  std::string finish() {
    entry("TRAILER!!!", 0, 1, "", /*ino=*/0);
    // Whole 512-byte blocks, as cpio(1) writes them.
    out_.resize((out_.size() + 511) / 512 * 512, '\0');
    return std::move(out_);
  }

 private:
  void entry(const std::string& name, uint32_t mode, uint32_t nlink, std::string_view data,
             std::optional<uint32_t> ino = std::nullopt) {
    out_ += fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                        ino ? *ino : next_ino_++, mode, 0, 0, nlink, static_cast<uint32_t>(mtime_),
                        static_cast<uint32_t>(data.size()), 0, 0, 0, 0, static_cast<uint32_t>(name.size() + 1), 0);
    out_ += name;
    out_.push_back('\0');
    pad();
    out_.append(data);
    pad();
  }
  void pad() { out_.resize((out_.size() + 3) / 4 * 4, '\0'); }
  std::string out_;
  int64_t mtime_;
  uint32_t next_ino_ = 1;
};

std::string normalize(std::string m) {
  std::replace(m.begin(), m.end(), '-', '_');
  return m;
}

// "kernel/fs/isofs/isofs.ko" -> "isofs"
std::string module_name_of(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  for (const char* ext : {".ko.xz", ".ko.zst", ".ko.gz", ".ko"})
    if (base.ends_with(ext)) {
      base.erase(base.size() - std::string_view(ext).size());
      break;
    }
  return normalize(base);
}

}  // namespace

Result<InitramfsLayer> make_initramfs_layer(const std::string& rootfs, const std::string& kernel_version,
                                            const std::vector<std::string>& modules,
                                            const std::vector<std::string>& required, int64_t mtime) {
  // Debian (merged /usr) keeps modules in usr/lib/modules; lib is a link.
  std::string moddir;
  for (const char* base : {"/usr/lib/modules/", "/lib/modules/"}) {
    std::error_code ec;
    if (fs::is_regular_file(rootfs + base + kernel_version + "/modules.dep", ec)) {
      moddir = rootfs + base + kernel_version;
      break;
    }
  }
  if (moddir.empty())
    return fail(Error(ErrorKind::Operation,
                      fmt::format("no modules.dep for kernel {} in {}", kernel_version, rootfs))
                    .with_hint("the tree's kernel package must be installed completely (depmod ran)"));
  auto dep_text = FOUNDRY_TRY(read_file(moddir + "/modules.dep"));
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> deps;  // name -> (path, dep paths)
  for (size_t pos = 0; pos < dep_text.size();) {
    size_t nl = dep_text.find('\n', pos);
    if (nl == std::string::npos) nl = dep_text.size();
    std::string line = dep_text.substr(pos, nl - pos);
    pos = nl + 1;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string path = line.substr(0, colon);
    std::vector<std::string> d;
    for (size_t p = colon + 1; p < line.size();) {
      while (p < line.size() && line[p] == ' ') ++p;
      size_t e = line.find(' ', p);
      if (e == std::string::npos) e = line.size();
      if (e > p) d.push_back(line.substr(p, e - p));
      p = e;
    }
    deps[module_name_of(path)] = {path, d};
  }
  std::set<std::string> builtin;
  auto builtin_text = read_file(moddir + "/modules.builtin").value_or("");
  for (size_t pos = 0; pos < builtin_text.size();) {
    size_t nl = builtin_text.find('\n', pos);
    if (nl == std::string::npos) nl = builtin_text.size();
    if (nl > pos) builtin.insert(module_name_of(builtin_text.substr(pos, nl - pos)));
    pos = nl + 1;
  }

  // Depth-first: dependencies before the module (modules.dep lists a
  // module's dependencies already in load order, last loaded first).
  InitramfsLayer layer;
  std::vector<std::string> order;  // module paths
  std::set<std::string> seen;
  std::function<void(const std::string&)> visit = [&](const std::string& path) {
    if (!seen.insert(path).second) return;
    auto it = deps.find(module_name_of(path));
    if (it != deps.end())
      for (auto d = it->second.second.rbegin(); d != it->second.second.rend(); ++d) visit(*d);
    order.push_back(path);
  };
  std::vector<std::string> missing;
  for (const auto& m : modules) {
    auto n = normalize(m);
    if (builtin.count(n)) continue;
    auto it = deps.find(n);
    if (it == deps.end()) {
      if (std::find_if(required.begin(), required.end(), [&](const std::string& r) { return normalize(r) == n; }) !=
          required.end())
        missing.push_back(m);
      continue;
    }
    visit(it->second.first);
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return fail(Error(ErrorKind::Operation, fmt::format("kernel {} in {} has no module {} (neither built in nor in "
                                                        "modules.dep)",
                                                        kernel_version, rootfs, list))
                    .with_hint("use a kernel with these drivers (Debian's linux-image-amd64 has them)"));
  }

  CpioWriter cpio(mtime);
  cpio.dir("foundry");
  cpio.dir("foundry/modules");
  std::string order_file;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& rel = order[i];
    if (!rel.ends_with(".ko"))
      return fail(Error(ErrorKind::Operation, fmt::format("{}: compressed module {} cannot be loaded by klibc insmod",
                                                          rootfs, rel))
                      .with_hint("a kernel with uncompressed modules is needed (Debian 12's are)"));
    auto data = FOUNDRY_TRY_CTX(read_file(moddir + "/" + rel), "initramfs layer");
    std::string file = fmt::format("{:02}-{}", i, rel.substr(rel.rfind('/') + 1));
    cpio.file("foundry/modules/" + file, data);
    order_file += module_name_of(rel) + " " + file + "\n";
    layer.modules.push_back(file);
  }
  cpio.file("foundry/modules.order", order_file);
  cpio.dir("scripts");
  cpio.file("scripts/foundry", initramfs_boot_script());
  layer.cpio = cpio.finish();
  return layer;
}

namespace detail {

Status write_layered_initrd(const std::string& initrd, const InitramfsLayer& layer, const std::string& out) {
  auto base = FOUNDRY_TRY_CTX(read_file(initrd), "initramfs");
  // The kernel looks for the next archive's magic at a 4-byte aligned
  // offset and skips zero bytes; a 512-byte boundary is what other tools
  // that append archives use.
  base.resize((base.size() + 511) / 512 * 512, '\0');
  base += layer.cpio;
  FOUNDRY_TRY_CTX(write_file_atomic(out, base, 0644), "initramfs");
  return ok();
}

}  // namespace detail

}  // namespace foundry::platform
