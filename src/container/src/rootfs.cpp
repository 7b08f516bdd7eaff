// The container's root filesystem: mounts, devices, pivot_root, masking.
//
// Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT):
// a symlink in an image ("/proc -> /etc") then resolves inside the rootfs
// instead of escaping to the host, without string games over the path. The
// mount itself goes through /proc/self/fd/N of the resolved target.
#include <fcntl.h>
#include <linux/openat2.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "linux.h"

namespace foundry::container::detail {

namespace {

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

std::string strip_root(const std::string& p) {
  size_t i = 0;
  while (i < p.size() && p[i] == '/') ++i;
  return i == p.size() ? "." : p.substr(i);
}

Result<UniqueFd> open_in_root(int rootfd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = strip_root(path);
  long fd = ::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how);
  if (fd < 0) return fail_errno(ErrorKind::Operation, "cannot open {} in the rootfs", path);
  return UniqueFd(static_cast<int>(fd));
}

std::vector<std::string> components(const std::string& p) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string c = p.substr(start, end - start);
    if (!c.empty() && c != ".") out.push_back(c);
    start = end + 1;
  }
  return out;
}

// mkdir -p inside the rootfs; returns an O_PATH fd of the directory.
Result<UniqueFd> mkdir_in_root(int rootfd, const std::string& path, mode_t mode = 0755) {
  auto comps = components(path);
  UniqueFd cur = FOUNDRY_TRY(open_in_root(rootfd, "/", O_PATH | O_DIRECTORY));
  std::string prefix;
  for (const auto& c : comps) {
    prefix += "/" + c;
    auto next = open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
    if (!next && next.error().sys_errno() == ENOENT) {
      if (::mkdirat(cur.get(), c.c_str(), mode) != 0 && errno != EEXIST)
        return fail_errno(ErrorKind::Operation, "cannot create directory {} in the rootfs", prefix);
      next = open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
    }
    if (!next) return fail(std::move(next).error());
    cur = std::move(*next);
  }
  return cur;
}

std::pair<std::string, std::string> split_last(const std::string& p) {
  auto comps = components(p);
  if (comps.empty()) return {"/", "."};
  std::string base = comps.back();
  comps.pop_back();
  std::string dir;
  for (auto& c : comps) dir += "/" + c;
  return {dir.empty() ? "/" : dir, base};
}

// Makes sure a regular file exists at path (a bind target for a file source).
Status ensure_file_in_root(int rootfd, const std::string& path) {
  if (open_in_root(rootfd, path, O_PATH)) return ok();
  auto [dir, base] = split_last(path);
  UniqueFd d = FOUNDRY_TRY(mkdir_in_root(rootfd, dir));
  int fd = ::openat(d.get(), base.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno != EEXIST) return fail_errno(ErrorKind::Operation, "cannot create {} in the rootfs", path);
  if (fd >= 0) ::close(fd);
  return ok();
}

// Flags the kernel keeps on a mount that a bind remount must repeat: in a
// user namespace, dropping a locked one (nosuid, nodev, ...) is EPERM.
unsigned long current_mount_flags(const std::string& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

constexpr unsigned long kRemountable =
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

Status remount_bind(const std::string& path, const MountFlags& f) {
  unsigned long flags = (current_mount_flags(path) & ~f.clear) | (f.set & kRemountable);
  if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0)
    return fail_errno(ErrorKind::Operation, "cannot remount {} with its options", path);
  return ok();
}

// rbind + options: the options must hold for every mount of the subtree,
// which only mount_setattr(AT_RECURSIVE) can do in one step.
Status setattr_recursive(int fd, const MountFlags& f) {
  mount_attr attr{};
  auto map = [&](unsigned long ms, uint64_t attr_flag) {
    if (f.set & ms) attr.attr_set |= attr_flag;
    if (f.clear & ms) attr.attr_clr |= attr_flag;
  };
  map(MS_RDONLY, MOUNT_ATTR_RDONLY);
  map(MS_NOSUID, MOUNT_ATTR_NOSUID);
  map(MS_NODEV, MOUNT_ATTR_NODEV);
  map(MS_NOEXEC, MOUNT_ATTR_NOEXEC);
  map(MS_NODIRATIME, MOUNT_ATTR_NODIRATIME);
  if (f.set & MS_NOATIME) attr.attr_set |= MOUNT_ATTR_NOATIME, attr.attr_clr |= MOUNT_ATTR__ATIME;
  if (f.set & MS_STRICTATIME) attr.attr_set |= MOUNT_ATTR_STRICTATIME, attr.attr_clr |= MOUNT_ATTR__ATIME;
  if (f.set & MS_RELATIME) attr.attr_set |= MOUNT_ATTR_RELATIME, attr.attr_clr |= MOUNT_ATTR__ATIME;
  if (attr.attr_set == 0 && attr.attr_clr == 0) return ok();
  if (::mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
    return fail_errno(ErrorKind::Operation, "cannot apply mount options recursively");
  return ok();
}

Status bind_mount(int rootfd, const std::string& src, const std::string& dest, const MountFlags& f) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("bind source {} is not accessible", src))
                    .with_hint("bind sources are host paths, absolute or relative to the bundle"));
  if (S_ISDIR(st.st_mode)) {
    FOUNDRY_TRY(mkdir_in_root(rootfd, dest));
  } else {
    FOUNDRY_TRY(ensure_file_in_root(rootfd, dest));
  }
  {
    UniqueFd target = FOUNDRY_TRY(open_in_root(rootfd, dest, O_PATH));
    unsigned long flags = MS_BIND | (f.recursive_bind ? MS_REC : 0);
    if (::mount(src.c_str(), fd_path(target.get()).c_str(), nullptr, flags, nullptr) != 0)
      return fail_errno(ErrorKind::Operation, "cannot bind {} on {}", src, dest);
  }
  // Reopen: the fd above names the directory under the new mount.
  UniqueFd mounted = FOUNDRY_TRY(open_in_root(rootfd, dest, O_PATH));
  if ((f.set & kRemountable) || (f.clear & kRemountable)) {
    if (f.recursive_bind) {
      FOUNDRY_TRY(setattr_recursive(mounted.get(), f));
    } else {
      FOUNDRY_TRY(remount_bind(fd_path(mounted.get()), f));
    }
  }
  if (f.propagation && ::mount(nullptr, fd_path(mounted.get()).c_str(), nullptr, f.propagation, nullptr) != 0)
    return fail_errno(ErrorKind::Operation, "cannot set the propagation of {}", dest);
  return ok();
}

Status mount_cgroup(const RootfsContext& ctx, int rootfd, const Mount& m) {
  unsigned long base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  unsigned long flags = (m.flags.set & kRemountable) | base;
  UniqueFd dir = FOUNDRY_TRY(mkdir_in_root(rootfd, m.destination));
  const Cgroup* cg = ctx.cgroup;
  bool own_cgroupns = ctx.spec->linux_spec.new_namespace(NamespaceType::Cgroup);
  if (cg && cg->layout() == CgroupLayout::Unified) {
    if (own_cgroupns) {
      if (::mount("cgroup2", fd_path(dir.get()).c_str(), "cgroup2", flags, nullptr) != 0)
        return fail_errno(ErrorKind::Operation, "cannot mount cgroup2 on {}", m.destination);
      return ok();
    }
    MountFlags bf = m.flags;
    bf.set |= base;
    return bind_mount(rootfd, cg->dirs().front().path, m.destination, bf);
  }
  // v1 (legacy or hybrid): a tmpfs with one directory per hierarchy, each a
  // bind of the container's own cgroup there, as runc lays it out.
  if (::mount("tmpfs", fd_path(dir.get()).c_str(), "tmpfs", base, "mode=755") != 0)
    return fail_errno(ErrorKind::Operation, "cannot mount a tmpfs for cgroups on {}", m.destination);
  if (cg) {
    MountFlags bf;
    bf.set = (m.flags.set & kRemountable) | base;
    for (const auto& d : cg->dirs()) {
      std::string name = d.v2 ? "unified" : d.controllers;
      FOUNDRY_TRY(bind_mount(rootfd, d.path, m.destination + "/" + name, bf));
      if (name.find(',') != std::string::npos) {
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
        UniqueFd top = FOUNDRY_TRY(open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY));
        size_t start = 0;
        while (start <= name.size()) {
          size_t end = name.find(',', start);
          if (end == std::string::npos) end = name.size();
          std::string one = name.substr(start, end - start);
          if (::symlinkat(name.c_str(), top.get(), one.c_str()) != 0 && errno != EEXIST)
            return fail_errno(ErrorKind::Operation, "cannot link {}/{}", m.destination, one);
          start = end + 1;
        }
      }
    }
  }
  if (m.flags.set & MS_RDONLY) {
    UniqueFd top = FOUNDRY_TRY(open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY));
    if (::mount(nullptr, fd_path(top.get()).c_str(), nullptr, MS_REMOUNT | MS_RDONLY | base, "mode=755") != 0)
      return fail_errno(ErrorKind::Operation, "cannot make {} read-only", m.destination);
  }
  return ok();
}

Status do_mount(const RootfsContext& ctx, int rootfd, const Mount& m) {
  if ((m.type == "cgroup" || m.type == "cgroup2") && !m.flags.bind) return mount_cgroup(ctx, rootfd, m);
  if (m.flags.bind) {
    std::string src = m.source;
    if (!src.empty() && src.front() != '/') src = ctx.bundle + "/" + src;
    return bind_mount(rootfd, src, m.destination, m.flags);
  }
  UniqueFd dir = FOUNDRY_TRY(mkdir_in_root(rootfd, m.destination));
  std::string target = fd_path(dir.get());
  unsigned long flags = m.flags.set & ~MS_REMOUNT;
  const char* data = m.flags.data.empty() ? nullptr : m.flags.data.c_str();
  std::string source = m.source.empty() ? m.type : m.source;
  if (::mount(source.c_str(), target.c_str(), m.type.c_str(), flags, data) != 0) {
    int e = errno;
    // sysfs and mqueue refuse a fresh instance in a user namespace that does
    // not own the matching network/IPC namespace: fall back to a bind of
    // the host's, as runc does, keeping the requested flags.
    if (e == EPERM && (m.type == "sysfs" || m.type == "mqueue")) {
      MountFlags bf = m.flags;
      bf.recursive_bind = m.type == "sysfs";
      bf.bind = true;
      return bind_mount(rootfd, m.type == "sysfs" ? "/sys" : "/dev/mqueue", m.destination, bf);
    }
    errno = e;
    Error err = sys_error(ErrorKind::Operation, fmt::format("cannot mount {} ({}) on {}", source, m.type, m.destination));
    if (e == ENODEV) err.with_hint(fmt::format("this kernel has no \"{}\" filesystem", m.type));
    else if (e == EINVAL) err.with_hint("check the mount options");
    return fail(std::move(err));
  }
  if (m.flags.propagation) {
    UniqueFd mounted = FOUNDRY_TRY(open_in_root(rootfd, m.destination, O_PATH));
    if (::mount(nullptr, fd_path(mounted.get()).c_str(), nullptr, m.flags.propagation, nullptr) != 0)
      return fail_errno(ErrorKind::Operation, "cannot set the propagation of {}", m.destination);
  }
  return ok();
}

Status make_device(int rootfd, const Device& d, bool userns) {
  auto [dir, base] = split_last(d.path);
  UniqueFd dfd = FOUNDRY_TRY(mkdir_in_root(rootfd, dir));
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t perm = d.file_mode.value_or(0666) & 07777;
  bool made = false;
  if (!userns) {
    ::unlinkat(dfd.get(), base.c_str(), 0);
    if (::mknodat(dfd.get(), base.c_str(), type | perm, makedev(d.major, d.minor)) == 0) {
      made = true;
    } else if (errno != EPERM) {
      return fail_errno(ErrorKind::Operation, "cannot create device {}", d.path);
    }
  }
  if (!made) {
    // No mknod in a user namespace: bind the host's node instead.
    if (d.type == 'p') return fail(ErrorKind::Operation, "cannot create FIFO {} in a user namespace", d.path);
    MountFlags f;
    f.bind = true;
    return bind_mount(rootfd, d.path, d.path, f);
  }
  // mknod applied the umask; the spec's mode and owner are exact.
  if (::fchmodat(dfd.get(), base.c_str(), perm, 0) != 0)
    return fail_errno(ErrorKind::Operation, "cannot set the mode of {}", d.path);
  if ((d.uid || d.gid) &&
      ::fchownat(dfd.get(), base.c_str(), d.uid.value_or(0), d.gid.value_or(0), AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(ErrorKind::Operation, "cannot set the owner of {}", d.path);
  return ok();
}

bool mounts_at(const Spec& s, std::string_view dest) {
  for (const auto& m : s.mounts)
    if (m.destination == dest || (m.destination.size() == dest.size() + 1 && m.destination.back() == '/' &&
                                  m.destination.compare(0, dest.size(), dest) == 0))
      return true;
  return false;
}

Status setup_dev(const RootfsContext& ctx, int rootfd) {
  const Spec& s = *ctx.spec;
  bool own_dev = mounts_at(s, "/dev");
  if (own_dev) {
    static const Device defaults[] = {
        {'c', "/dev/null", 1, 3, 0666, 0, 0},    {'c', "/dev/zero", 1, 5, 0666, 0, 0},
        {'c', "/dev/full", 1, 7, 0666, 0, 0},    {'c', "/dev/random", 1, 8, 0666, 0, 0},
        {'c', "/dev/urandom", 1, 9, 0666, 0, 0}, {'c', "/dev/tty", 5, 0, 0666, 0, 0},
    };
    for (const auto& d : defaults) {
      bool overridden = false;
      for (const auto& sd : s.linux_spec.devices) overridden |= sd.path == d.path;
      if (!overridden) FOUNDRY_TRY_CTX(make_device(rootfd, d, ctx.userns), "default device {}", d.path);
    }
    UniqueFd dev = FOUNDRY_TRY(open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY));
    static const std::pair<const char*, const char*> links[] = {
        {"/proc/self/fd", "fd"},
        {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"},
    };
    for (const auto& [target, name] : links)
      if (::symlinkat(target, dev.get(), name) != 0 && errno != EEXIST)
        return fail_errno(ErrorKind::Operation, "cannot create /dev/{}", name);
    if (mounts_at(s, "/dev/pts")) {
      // With a private devpts instance, /dev/ptmx must be its ptmx.
      ::unlinkat(dev.get(), "ptmx", 0);
      if (::symlinkat("pts/ptmx", dev.get(), "ptmx") != 0)
        return fail_errno(ErrorKind::Operation, "cannot create /dev/ptmx");
    }
  }
  for (size_t i = 0; i < s.linux_spec.devices.size(); ++i)
    FOUNDRY_TRY_CTX(make_device(rootfd, s.linux_spec.devices[i], ctx.userns), "linux.devices[{}] ({})", i,
                    s.linux_spec.devices[i].path);
  return ok();
}

unsigned long propagation_flag(const std::string& p) {
  if (p == "private") return MS_PRIVATE;
  if (p == "rprivate") return MS_PRIVATE | MS_REC;
  if (p == "slave") return MS_SLAVE;
  if (p == "rslave") return MS_SLAVE | MS_REC;
  if (p == "shared") return MS_SHARED;
  if (p == "rshared") return MS_SHARED | MS_REC;
  if (p == "unbindable") return MS_UNBINDABLE;
  if (p == "runbindable") return MS_UNBINDABLE | MS_REC;
  return 0;
}

}  // namespace

Status prepare_rootfs(const RootfsContext& ctx) {
  const Spec& s = *ctx.spec;
  // Nothing mounted below must reach the host: make the whole tree a slave
  // (host unmounts still propagate in, so the host never sees EBUSY). A
  // shared rootfsPropagation is applied after pivot_root.
  unsigned long prop = propagation_flag(s.linux_spec.rootfs_propagation);
  if (prop == 0 || (prop & MS_SHARED)) prop = MS_SLAVE | MS_REC;
  if (::mount(nullptr, "/", nullptr, prop, nullptr) != 0)
    return fail_errno(ErrorKind::Operation, "cannot change the propagation of /");
  // pivot_root needs the new root to be a mount point.
  if (::mount(ctx.rootfs.c_str(), ctx.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("cannot bind the rootfs {} on itself", ctx.rootfs))
                    .with_hint("root.path must be an existing directory"));
  UniqueFd rootfd(::open(ctx.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) return fail_errno(ErrorKind::Operation, "cannot open the rootfs {}", ctx.rootfs);
  for (size_t i = 0; i < s.mounts.size(); ++i) {
    const Mount& m = s.mounts[i];
    FOUNDRY_TRY_CTX(do_mount(ctx, rootfd.get(), m), "mounts[{}] ({} on {})", i, m.type.empty() ? "bind" : m.type,
                    m.destination);
  }
  FOUNDRY_TRY(setup_dev(ctx, rootfd.get()));
  return ok();
}

Result<UniqueFd> create_console(const RootfsContext& ctx, UniqueFd& slave_out) {
  UniqueFd rootfd(::open(ctx.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) return fail_errno(ErrorKind::Operation, "cannot open the rootfs {}", ctx.rootfs);
  UniqueFd master;
  if (mounts_at(*ctx.spec, "/dev/pts")) {
    auto m = open_in_root(rootfd.get(), "/dev/pts/ptmx", O_RDWR | O_NOCTTY);
    if (m) master = std::move(*m);
  }
  if (!master) master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return fail_errno(ErrorKind::Operation, "cannot open a pty master");
  if (::unlockpt(master.get()) != 0) return fail_errno(ErrorKind::Operation, "cannot unlock the pty");
  int slave = ::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return fail_errno(ErrorKind::Operation, "cannot open the pty slave");
  slave_out.reset(slave);
  if (const auto& cs = ctx.spec->process->console_size) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(cs->height);
    ws.ws_col = static_cast<unsigned short>(cs->width);
    ::ioctl(slave, TIOCSWINSZ, &ws);
  }
  if (mounts_at(*ctx.spec, "/dev")) {
    FOUNDRY_TRY(ensure_file_in_root(rootfd.get(), "/dev/console"));
    UniqueFd console = FOUNDRY_TRY(open_in_root(rootfd.get(), "/dev/console", O_PATH));
    if (::mount(fd_path(slave).c_str(), fd_path(console.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
      return fail_errno(ErrorKind::Operation, "cannot bind the pty on /dev/console");
  }
  return master;
}

Status enter_rootfs(const std::string& rootfs, bool no_pivot) {
  if (no_pivot) {
    if (::chdir(rootfs.c_str()) != 0) return fail_errno(ErrorKind::Operation, "cannot enter {}", rootfs);
    if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0)
      return fail_errno(ErrorKind::Operation, "cannot move {} to /", rootfs);
    if (::chroot(".") != 0) return fail_errno(ErrorKind::Operation, "cannot chroot into {}", rootfs);
    if (::chdir("/") != 0) return fail_errno(ErrorKind::Operation, "cannot chdir to /");
    return ok();
  }
  UniqueFd oldroot(::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  UniqueFd newroot(::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!oldroot || !newroot) return fail_errno(ErrorKind::Operation, "cannot open / or {}", rootfs);
  if (::fchdir(newroot.get()) != 0) return fail_errno(ErrorKind::Operation, "cannot enter {}", rootfs);
  // pivot_root(".", ".") stacks the old root on top of the new one; it is
  // then detached from there, without needing a directory for it inside
  // the (possibly read-only) rootfs.
  if (::syscall(SYS_pivot_root, ".", ".") != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("pivot_root into {} failed", rootfs))
                    .with_hint("a rootfs on ramfs cannot be pivoted; pass --no-pivot"));
  if (::fchdir(oldroot.get()) != 0) return fail_errno(ErrorKind::Operation, "cannot enter the old root");
  if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
    return fail_errno(ErrorKind::Operation, "cannot make the old root a slave");
  if (::umount2(".", MNT_DETACH) != 0) return fail_errno(ErrorKind::Operation, "cannot detach the old root");
  if (::chdir("/") != 0) return fail_errno(ErrorKind::Operation, "cannot chdir to /");
  return ok();
}

Status finish_rootfs(const Spec& spec) {
  const LinuxSpec& l = spec.linux_spec;
  for (const auto& [key, value] : l.sysctl) {
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    // /proc/sys files are written in place (no rename into procfs).
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC));
    if (!fd || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
      return fail(sys_error(ErrorKind::Operation, fmt::format("cannot set sysctl {}={}", key, value))
                      .wrap(fmt::format("linux.sysctl.{}", key))
                      .with_hint("the container needs /proc mounted and the key must exist in its namespaces"));
  }
  for (size_t i = 0; i < l.masked_paths.size(); ++i) {
    const std::string& p = l.masked_paths[i];
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return fail_errno(ErrorKind::Operation, "linux.maskedPaths[{}]: cannot inspect {}", i, p);
    }
    int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, nullptr)
                                 : ::mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) return fail_errno(ErrorKind::Operation, "linux.maskedPaths[{}]: cannot mask {}", i, p);
  }
  for (size_t i = 0; i < l.readonly_paths.size(); ++i) {
    const std::string& p = l.readonly_paths[i];
    if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;
      return fail_errno(ErrorKind::Operation, "linux.readonlyPaths[{}]: cannot bind {}", i, p);
    }
    MountFlags f;
    f.set = MS_RDONLY;
    FOUNDRY_TRY_CTX(remount_bind(p, f), "linux.readonlyPaths[{}]", i);
  }
  if (spec.root && spec.root->readonly) {
    MountFlags f;
    f.set = MS_RDONLY;
    FOUNDRY_TRY_CTX(remount_bind("/", f), "root.readonly");
  }
  unsigned long prop = propagation_flag(l.rootfs_propagation);
  if (prop && ::mount(nullptr, "/", nullptr, prop, nullptr) != 0)
    return fail_errno(ErrorKind::Operation, "linux.rootfsPropagation: cannot make / {}", l.rootfs_propagation);
  return ok();
}

}  // namespace foundry::container::detail
