#include "foundry/dataplane/pin.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "foundry/common/file.h"

namespace foundry::dataplane {

bool is_bpffs(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return false;
  return static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

Result<bool> ensure_bpffs(const std::string& mount_point) {
  if (is_bpffs(mount_point)) return false;
  FOUNDRY_TRY_CTX(make_dirs(mount_point, 0755), "prepare BPF filesystem mount point");
  // mode=0700: pinned maps hold the forwarding state; only root reads them.
  if (::mount("bpf", mount_point.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("mount BPF filesystem on {}", mount_point))
                    .with_hint("run as root, or mount it yourself: mount -t bpf bpf /sys/fs/bpf"));
  return true;
}

Status prepare_pin_dir(const std::string& dir) {
  FOUNDRY_TRY_CTX(make_dirs(dir, 0700), "create pin directory");
  if (!is_bpffs(dir))
    return fail(Error(ErrorKind::Operation, fmt::format("pin directory {} is not on a BPF filesystem", dir))
                    .with_hint("mount one (mount -t bpf bpf /sys/fs/bpf) or pick a directory under it"));
  return ok();
}

Result<std::vector<std::string>> list_pinned(const std::string& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT) return names;
    return fail_errno(ErrorKind::Operation, "read pin directory {}", dir);
  }
  while (struct dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  return names;
}

Status remove_pinned(const std::string& dir) {
  auto names = FOUNDRY_TRY(list_pinned(dir));
  for (const auto& n : names) {
    std::string p = dir + "/" + n;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT)
      return fail_errno(ErrorKind::Operation, "unpin {}", p);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return fail_errno(ErrorKind::Operation, "remove pin directory {}", dir);
  return ok();
}

}  // namespace foundry::dataplane
