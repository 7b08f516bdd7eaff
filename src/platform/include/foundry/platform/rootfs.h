// A Debian root file system from a package list, made with mmdebstrap.
//
// The result is a directory ready for assemble_disk (disk_image.h): kernel and
// initramfs in /boot, cloud-init set up for NoCloud with the networkd
// renderer, an empty /etc/machine-id and no SSH host keys (each VM makes its
// own), a serial console, and an initramfs that can find the root file system
// on virtio, SCSI, SATA and NVMe disks.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/platform/apt_sources.h"
#include "foundry/platform/progress.h"

namespace foundry::platform {

// Bumped whenever the recipe changes in a way its text does not show (the
// text of every file the recipe writes is part of describe_inputs already).
// 2: directory mtimes set to the epoch at the end of build_rootfs.
inline constexpr int kRecipeVersion = 2;

// What the initramfs carries. Virtual: only the drivers listed in
// RootfsOptions::initramfs_modules (small, generated in seconds, fast to load
// under emulation). Most: Debian's default MODULES=most, for bare metal.
enum class InitramfsPolicy { Virtual, Most };

// The VM base image: a kernel, systemd, cloud-init with an SSH server, and
// the tools cloud-init's disk growing needs.
std::vector<std::string> default_base_packages();
// What any bootable Foundry image needs whatever else the user lists.
std::vector<std::string> required_boot_packages();
// Drivers always put into the initramfs.
std::vector<std::string> default_initramfs_modules();

struct RootfsOptions {
  std::string target;  // directory to create; must not exist or be empty
  std::string suite = "bookworm";
  std::vector<std::string> packages = default_base_packages();
  // Apt sources for the build and for the image. Empty: the build machine's
  // configured sources (read_apt_sources), narrowed to `suite`.
  std::vector<AptSource> sources;
  std::string etc_apt = "/etc/apt";  // where the machine's sources are read from
  // .deb files kept between runs; empty = no cache. Other versions of the
  // packages a build installed are dropped from it afterwards.
  std::string apt_cache_dir;
  // Timestamps for reproducible output; default $SOURCE_DATE_EPOCH if set.
  std::optional<int64_t> source_date_epoch;
  InitramfsPolicy initramfs = InitramfsPolicy::Virtual;
  std::vector<std::string> initramfs_modules = default_initramfs_modules();
  // cloud-init's datasource_list (None is appended).
  std::vector<std::string> cloud_init_datasources = {"NoCloud", "ConfigDrive"};
  bool minimize = true;  // leave out man pages, info, locales and docs (copyright files stay)
  std::string work_dir;  // scratch space; default: a directory next to target
  std::chrono::seconds timeout{1800};
  ProgressFn progress;
};

struct InstalledPackage {
  std::string name;
  std::string version;
  std::string arch;
};

struct RootfsInfo {
  std::string path;
  std::string kernel_version;  // e.g. "6.1.0-37-amd64"
  std::string kernel;          // relative to path: "boot/vmlinuz-6.1.0-37-amd64"
  std::string initrd;          // relative to path: "boot/initrd.img-6.1.0-37-amd64"
  std::vector<InstalledPackage> packages;
  std::vector<std::string> initramfs_files;  // what lsinitramfs listed (empty for inspect_rootfs)
  std::chrono::milliseconds elapsed{0};
};

// Runs mmdebstrap (as root; its mounts live in a private mount namespace and
// vanish with it) and finishes the tree. On failure nothing is left at
// target and the error names the stage and carries mmdebstrap's log tail.
Result<RootfsInfo> build_rootfs(const RootfsOptions& opts);

// Kernel and initramfs of an existing tree (newest kernel version wins).
Result<RootfsInfo> inspect_rootfs(const std::string& dir);

// Debian package names, optionally with =version or /release.
Status validate_package_names(const std::vector<std::string>& names);

// Canonical text of everything that decides what build_rootfs produces: the
// recipe version and the text of every file it writes, the suite, the sorted
// package list, the sources, the options. A cache keyed on its hash is
// rebuilt exactly when an input changes (new package versions on the mirror
// aside).
Result<std::string> describe_inputs(const RootfsOptions& opts);

}  // namespace foundry::platform
