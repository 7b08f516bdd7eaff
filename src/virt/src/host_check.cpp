#include "foundry/virt/host_check.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <fmt/format.h>

namespace foundry::virt {
namespace {

// qemu:///system, qemu:///session, qemu+unix:///system: this machine's
// libvirtd. qemu+ssh://host/system and the test driver are not.
bool local_qemu(const std::string& uri) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return false;
  auto scheme = uri.substr(0, scheme_end);
  if (scheme != "qemu" && scheme != "qemu+unix") return false;
  return uri.compare(scheme_end + 3, 1, "/") == 0;  // empty host part
}

std::string user_name(uid_t uid) {
  if (auto* p = ::getpwuid(uid)) return p->pw_name;
  return std::to_string(uid);
}
std::string group_name(gid_t gid) {
  if (auto* g = ::getgrgid(gid)) return g->gr_name;
  return std::to_string(gid);
}

}  // namespace

KvmNode stat_kvm(const char* path) {
  KvmNode n;
  struct stat st {};
  if (::stat(path, &st) != 0 || !S_ISCHR(st.st_mode)) return n;
  n.exists = true;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  return n;
}

std::optional<std::string> kvm_access_warning(const std::string& uri, const KvmNode& kvm) {
  if (!local_qemu(uri) || !kvm.exists) return std::nullopt;
  // Group or others may read and write: libvirt's QEMU user (root, or
  // libvirt-qemu in group kvm) can open it. Only the owner may: unless the
  // QEMU user is that owner and it is root (qemu.conf user = "root"), it
  // cannot. We cannot read qemu.conf without root, so judge by the node.
  if ((kvm.mode & 0066) != 0) return std::nullopt;
  return fmt::format(
      "/dev/kvm is {:04o} {}:{}, so libvirt's QEMU user cannot open it and libvirt probes QEMU again on every "
      "capability lookup (seconds each; a create makes several). Debian's udev rule makes it root:kvm 0660: "
      "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm",
      static_cast<unsigned>(kvm.mode), user_name(kvm.uid), group_name(kvm.gid));
}

}  // namespace foundry::virt
