#include "recipe.h"

#include <fmt/format.h>

namespace foundry::platform::detail {

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

std::vector<RecipeFile> overlay_files(const RootfsOptions& opts) {
  std::vector<RecipeFile> f;

  // initramfs-tools reads conf.d/* after initramfs.conf; a file here is not a
  // dpkg conffile, so placing it before the package is installed is safe.
  f.push_back({"etc/initramfs-tools/conf.d/foundry.conf",
               fmt::format("# Foundry image recipe (docs/platform.md).\n"
                           "# {}\n"
                           "MODULES={}\n"
                           "COMPRESS=zstd\n",
                           opts.initramfs == InitramfsPolicy::Virtual
                               ? "Only the drivers the hooks/foundry-modules hook adds: a small initramfs that is quick "
                                 "to build and to load under emulation."
                               : "Every storage driver (Debian's default), for unknown hardware.",
                           opts.initramfs == InitramfsPolicy::Virtual ? "list" : "most"),
               0644});

  // A hook rather than /etc/initramfs-tools/modules (a conffile): the root
  // file system's disk and file-system drivers are always in the image,
  // whatever MODULES says. Dependencies come along via modprobe --show-depends.
  f.push_back({"etc/initramfs-tools/hooks/foundry-modules",
               fmt::format("#!/bin/sh\n"
                           "# Foundry image recipe: drivers needed to mount the root file system of a Foundry\n"
                           "# image on virtio, SCSI, SATA or NVMe disks.\n"
                           "PREREQ=\"\"\n"
                           "prereqs() {{ echo \"$PREREQ\"; }}\n"
                           "case \"$1\" in prereqs) prereqs; exit 0 ;; esac\n"
                           ". /usr/share/initramfs-tools/hook-functions\n"
                           "for m in {}; do\n"
                           "  manual_add_modules \"$m\"\n"
                           "done\n",
                           join(opts.initramfs_modules, " ")),
               0755});

  // cloud-init 22.4 (Debian 12) tries the renderers eni, sysconfig, netplan,
  // ..., networkd in that order and takes the first whose tools exist. The
  // image has no ifupdown and no netplan, so networkd is what it would pick;
  // saying so keeps a later "apt install ifupdown" from silently switching
  // renderers. systemd-networkd is enabled by the customize hook: without
  // that the .network files cloud-init writes would never be applied.
  std::vector<std::string> ds = opts.cloud_init_datasources;
  ds.push_back("None");
  f.push_back({"etc/cloud/cloud.cfg.d/90-foundry.cfg",
               fmt::format("# Foundry image recipe (docs/platform.md).\n"
                           "# Only the datasources a Foundry target provides: ds-identify then never waits\n"
                           "# for a cloud metadata service that is not there.\n"
                           "datasource_list: [ {} ]\n"
                           "# fqdn / hostname from the seed resolve locally.\n"
                           "manage_etc_hosts: true\n"
                           "system_info:\n"
                           "  network:\n"
                           "    renderers: [ networkd ]\n",
                           join(ds, ", ")),
               0644});

  // Before the packages: initramfs-tools' fsck hook reads the root file
  // system type from here (no root entry, no e2fsck in the initramfs), and
  // mmdebstrap only writes its "UNCONFIGURED FSTAB" when the file is absent.
  // assemble_disk replaces it with the disk's UUIDs; a tree used without
  // that (a Firecracker root) still mounts by label.
  f.push_back({"etc/fstab",
               "# Foundry image recipe. assemble_disk replaces this with UUIDs.\n"
               "LABEL=root\t/\text4\tdefaults,errors=remount-ro\t0\t1\n",
               0644});

  // ds-identify runs as a systemd generator, before udev has settled. A
  // seed on a late device would make it disable cloud-init for this boot;
  // notfound=enabled lets cloud-init look again itself (and fall back to
  // the None datasource) instead.
  f.push_back({"etc/cloud/ds-identify.cfg",
               "# Foundry image recipe (docs/platform.md).\n"
               "policy: search,found=all,maybe=all,notfound=enabled\n",
               0644});

  // Host keys are removed from the image (every VM must have its own).
  // cloud-init normally makes them before sshd starts; this covers an image
  // booted without a datasource. It must run before Debian's own
  // "sshd -t" check, so the list is reset and rebuilt.
  f.push_back({"etc/systemd/system/ssh.service.d/foundry-host-keys.conf",
               "# Foundry image recipe: create missing SSH host keys before sshd checks its config.\n"
               "[Service]\n"
               "ExecStartPre=\n"
               "ExecStartPre=/usr/bin/ssh-keygen -A\n"
               "ExecStartPre=/usr/sbin/sshd -t\n",
               0644});
  return f;
}

std::vector<RecipeFile> final_files(const RootfsOptions& opts) {
  (void)opts;
  std::vector<RecipeFile> f;
  // mmdebstrap copies the build machine's /etc/hostname; cloud-init sets the
  // real name at first boot.
  f.push_back({"etc/hostname", "localhost\n", 0644});
  // mmdebstrap leaves no /etc/hosts; without one "localhost" does not resolve.
  f.push_back({"etc/hosts",
               "127.0.0.1\tlocalhost\n"
               "::1\tlocalhost ip6-localhost ip6-loopback\n"
               "ff02::1\tip6-allnodes\n"
               "ff02::2\tip6-allrouters\n",
               0644});
  // Empty, not absent: systemd then generates a fresh id at first boot and
  // treats the boot as the first one (ConditionFirstBoot).
  f.push_back({"etc/machine-id", "", 0444});
  return f;
}

std::vector<std::string> removed_paths() {
  return {
      "etc/ssh/ssh_host_rsa_key",     "etc/ssh/ssh_host_rsa_key.pub",     "etc/ssh/ssh_host_ecdsa_key",
      "etc/ssh/ssh_host_ecdsa_key.pub", "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub",
      "var/lib/dbus/machine-id",
  };
}

std::string setup_hook_script() {
  return R"(#!/bin/sh
# Foundry image recipe, mmdebstrap --setup-hook. $1 is the new root.
# Puts the recipe's files in place before any package is installed (so the
# first initramfs already has the right drivers) and seeds apt's archive
# directory from the package cache.
set -eu
root="$1"
cp -a "$FOUNDRY_OVERLAY/." "$root/"
mkdir -p "$root/var/cache/apt/archives"
if [ -n "${FOUNDRY_APT_CACHE:-}" ] && [ -d "$FOUNDRY_APT_CACHE" ]; then
  for f in "$FOUNDRY_APT_CACHE"/*.deb; do
    [ -e "$f" ] || continue
    # A hard link costs nothing; a cache on another file system is copied.
    ln "$f" "$root/var/cache/apt/archives/" 2>/dev/null || cp "$f" "$root/var/cache/apt/archives/"
  done
fi
)";
}

std::string customize_hook_script() {
  return R"(#!/bin/sh
# Foundry image recipe, mmdebstrap --customize-hook. $1 is the finished root,
# with /proc, /sys and /dev mounted by mmdebstrap.
set -eu
root="$1"
export DEBIAN_FRONTEND=noninteractive
if [ -n "${FOUNDRY_KERNEL_PACKAGES:-}" ]; then
  # systemd-resolved, installed by now, has made /etc/resolv.conf a link to
  # its stub, which does not exist in a chroot: apt needs the build
  # machine's resolver to download the kernel. (The library writes the
  # image's final resolv.conf afterwards.)
  if [ -e /etc/resolv.conf ]; then
    rm -f "$root/etc/resolv.conf"
    cat /etc/resolv.conf > "$root/etc/resolv.conf"
  fi
  # The kernel comes last and alone: its postinst then builds the initramfs
  # once, after every package whose trigger would have rebuilt it again.
  # The list is validated package names, split on purpose.
  # shellcheck disable=SC2086
  chroot "$root" apt-get install --yes --no-install-recommends $FOUNDRY_KERNEL_PACKAGES
fi
# cloud-init renders network-config for systemd-networkd (90-foundry.cfg).
chroot "$root" systemctl enable systemd-networkd.service
# What the library checks once mmdebstrap has returned.
for initrd in "$root"/boot/initrd.img-*; do
  [ -e "$initrd" ] || continue
  name=${initrd##*/}
  chroot "$root" lsinitramfs "/boot/$name" > "$FOUNDRY_REPORT/$name.list"
done
if [ -n "${FOUNDRY_APT_CACHE:-}" ]; then
  mkdir -p "$FOUNDRY_APT_CACHE"
  for f in "$root"/var/cache/apt/archives/*.deb; do
    [ -e "$f" ] || continue
    dst="$FOUNDRY_APT_CACHE/${f##*/}"
    if [ "$f" -ef "$dst" ]; then continue; fi
    if ! ln -f "$f" "$dst" 2>/dev/null; then
      cp "$f" "$dst.tmp" && mv -f "$dst.tmp" "$dst"
    fi
  done
fi
)";
}

}  // namespace foundry::platform::detail
