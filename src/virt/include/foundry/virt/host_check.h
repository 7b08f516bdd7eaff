// Host conditions that do not stop libvirt but make every call slow, found
// before they cost the user minutes, with the fix.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace foundry::virt {

// What stat(2) says of /dev/kvm; exists=false when there is none.
struct KvmNode {
  bool exists = false;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

KvmNode stat_kvm(const char* path = "/dev/kvm");

// A warning when libvirt on this machine (uri without a host part) cannot
// let its QEMU user open /dev/kvm: libvirt 9 then treats its cached QEMU
// capabilities as stale and probes QEMU again on every lookup (seconds
// each; a domain define does one per device). Debian's udev rule makes the
// node root:kvm 0660 and libvirt-qemu is in group kvm; machines without
// udev keep the kernel's 0600 root:root. Empty when there is nothing to say.
std::optional<std::string> kvm_access_warning(const std::string& uri, const KvmNode& kvm);

}  // namespace foundry::virt
