#include "fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"
#include "foundry/platform/gpt.h"

namespace foundry::platform::detail {

namespace {

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return "";
  return buf;
}

bool is_within(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// Opens the (resolved) parent directory of root/rel, creating it, and checks
// that it lies inside root.
Result<UniqueFd> open_parent_in_root(const std::string& root, const std::string& rel, std::string& leaf) {
  std::filesystem::path r(rel);
  if (rel.empty() || r.is_absolute() || rel.find("..") != std::string::npos)
    return fail(ErrorKind::Operation, "'{}' is not a plain relative path inside the image tree", rel);
  leaf = r.filename().string();
  std::string parent = root + "/" + r.parent_path().string();
  FOUNDRY_TRY(make_dirs(parent));
  std::string rroot = real_path(root);
  std::string rparent = real_path(parent);
  if (rroot.empty() || rparent.empty() || !is_within(rparent, rroot))
    return fail(Error(ErrorKind::Operation,
                      fmt::format("{} resolves to {}, outside the image tree {}", parent, rparent, rroot))
                    .with_hint("a symlink in the tree points at the build machine; remove it"));
  UniqueFd dfd(::open(rparent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return fail_errno(ErrorKind::Operation, "cannot open {}", rparent);
  return dfd;
}

Status unlink_entry(int dfd, const std::string& leaf, const std::string& what) {
  if (::unlinkat(dfd, leaf.c_str(), 0) != 0 && errno != ENOENT) {
    if (errno == EISDIR) return fail(ErrorKind::Operation, "{} is a directory; expected a file", what);
    return fail_errno(ErrorKind::Operation, "cannot remove {}", what);
  }
  return ok();
}

Status remove_children(int dfd, dev_t dev, const std::string& where) {
  int dup = ::fcntl(dfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno(ErrorKind::Operation, "dup {}", where);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return fail_errno(ErrorKind::Operation, "cannot read directory {}", where);
  }
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& n : names) {
    struct stat st {};
    if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return fail_errno(ErrorKind::Operation, "cannot stat {}/{}", where, n);
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev)
        return fail(Error(ErrorKind::Operation, fmt::format("{}/{} is on another file system (a mount?)", where, n))
                        .with_hint("unmount it first; nothing was removed below it"));
      UniqueFd sub(::openat(dfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return fail_errno(ErrorKind::Operation, "cannot open {}/{}", where, n);
      FOUNDRY_TRY(remove_children(sub.get(), dev, where + "/" + n));
      if (::unlinkat(dfd, n.c_str(), AT_REMOVEDIR) != 0)
        return fail_errno(ErrorKind::Operation, "cannot remove {}/{}", where, n);
    } else if (::unlinkat(dfd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return fail_errno(ErrorKind::Operation, "cannot remove {}/{}", where, n);
    }
  }
  return ok();
}

std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Status write_in_root(const std::string& root, const std::string& rel, std::string_view data, mode_t mode,
                     std::optional<int64_t> mtime) {
  std::string leaf;
  auto dfd = FOUNDRY_TRY(open_parent_in_root(root, rel, leaf));
  std::string what = root + "/" + rel;
  FOUNDRY_TRY(unlink_entry(dfd.get(), leaf, what));
  UniqueFd fd(::openat(dfd.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return fail_errno(ErrorKind::Operation, "cannot create {}", what);
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Operation, "cannot write {}", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (::fchmod(fd.get(), mode) != 0) return fail_errno(ErrorKind::Operation, "cannot chmod {}", what);
  if (mtime) {
    struct timespec ts[2] = {{*mtime, 0}, {*mtime, 0}};
    if (::futimens(fd.get(), ts) != 0) return fail_errno(ErrorKind::Operation, "cannot set times of {}", what);
  }
  return ok();
}

Status symlink_in_root(const std::string& root, const std::string& rel, const std::string& target) {
  std::string leaf;
  auto dfd = FOUNDRY_TRY(open_parent_in_root(root, rel, leaf));
  std::string what = root + "/" + rel;
  FOUNDRY_TRY(unlink_entry(dfd.get(), leaf, what));
  if (::symlinkat(target.c_str(), dfd.get(), leaf.c_str()) != 0)
    return fail_errno(ErrorKind::Operation, "cannot create symlink {}", what);
  return ok();
}

Status remove_in_root(const std::string& root, const std::string& rel) {
  std::string leaf;
  auto dfd = FOUNDRY_TRY(open_parent_in_root(root, rel, leaf));
  return unlink_entry(dfd.get(), leaf, root + "/" + rel);
}

std::vector<std::string> mounts_under(const std::string& path) {
  std::vector<std::string> out;
  std::string rp = real_path(path);
  if (rp.empty()) return out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, devno, mroot, mpoint;
    if (!(ss >> id >> parent >> devno >> mroot >> mpoint)) continue;
    mpoint = unescape_mountinfo(mpoint);
    if (rp != "/" && is_within(mpoint, rp)) out.push_back(mpoint);
  }
  return out;
}

Status remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok();
    return fail_errno(ErrorKind::Operation, "cannot stat {}", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno(ErrorKind::Operation, "cannot remove {}", path);
    return ok();
  }
  if (auto m = mounts_under(path); !m.empty())
    return fail(Error(ErrorKind::Operation, fmt::format("refusing to remove {}: {} is mounted below it", path, m.front()))
                    .with_hint(fmt::format("unmount it (umount -R {}) and remove the directory by hand", m.front())));
  UniqueFd dfd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dfd) return fail_errno(ErrorKind::Operation, "cannot open {}", path);
  FOUNDRY_TRY(remove_children(dfd.get(), st.st_dev, path));
  dfd.reset();
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return fail_errno(ErrorKind::Operation, "cannot remove {}", path);
  return ok();
}

uint64_t tree_allocated_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  struct stat top {};
  if (::lstat(path.c_str(), &top) != 0) return 0;
  uint64_t total = 0;
  std::error_code ec;
  std::deque<std::string> dirs{path};
  while (!dirs.empty()) {
    std::string d = dirs.front();
    dirs.pop_front();
    for (const auto& e : fs::directory_iterator(d, ec)) {
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (st.st_dev == top.st_dev) dirs.push_back(e.path().string());
      } else if (S_ISREG(st.st_mode)) {
        total += static_cast<uint64_t>(st.st_blocks) * 512;
      }
    }
  }
  return total;
}

Result<TempDir> TempDir::create(const std::string& parent, const std::string& prefix) {
  FOUNDRY_TRY(make_dirs(parent));
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return fail_errno(ErrorKind::Operation, "cannot create a temporary directory in {}", parent);
  return TempDir(tmpl);
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty() && !keep_) (void)remove_tree(path_);
    path_ = std::move(o.path_);
    keep_ = o.keep_;
    o.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty() && !keep_) {
    if (auto st = remove_tree(path_); !st) SPDLOG_DEBUG("leaving {}: {}", path_, st.error().to_string());
  }
}

Status set_times(const std::string& path, int64_t epoch) {
  struct timespec ts[2] = {{epoch, 0}, {epoch, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(ErrorKind::Operation, "cannot set times of {}", path);
  return ok();
}

std::string tail_file(const std::string& path, size_t max_lines) {
  auto text = read_file(path);
  if (!text) return "";
  const std::string& t = *text;
  size_t pos = t.size();
  if (pos > 0 && t[pos - 1] == '\n') --pos;
  size_t lines = 0;
  while (pos > 0) {
    if (t[pos - 1] == '\n' && ++lines == max_lines) break;
    --pos;
  }
  return t.substr(pos);
}

std::string debugfs_path(const std::string& rel) {
  if (rel.find_first_of("\n\r\t") != std::string::npos) return "";
  std::string q = "\"/";
  for (char c : rel) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

Result<size_t> append_ext4_time_commands(const std::string& tree, int64_t epoch, std::string& cmds) {
  namespace fs = std::filesystem;
  size_t count = 0;
  struct stat top {};
  if (::lstat(tree.c_str(), &top) != 0) return fail_errno(ErrorKind::Operation, "cannot stat {}", tree);
  auto add = [&](const std::string& rel, const struct stat& st) -> Status {
    std::string q = debugfs_path(rel);
    if (q.empty())
      return fail(Error(ErrorKind::Operation,
                        fmt::format("cannot fix the times of {}/{}: debugfs cannot take a name with a newline, CR "
                                    "or tab",
                                    tree, rel))
                      .with_hint("rename or remove that file in the tree; its times would differ between builds"));
    cmds += fmt::format("sif {} atime @{}\nsif {} ctime @{}\n", q, epoch, q, epoch);
    if (st.st_mtime > epoch) cmds += fmt::format("sif {} mtime @{}\n", q, epoch);
    ++count;
    return ok();
  };
  FOUNDRY_TRY(add("", top));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(ErrorKind::Operation, "cannot walk {}: {}", tree, ec.message());
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) && st.st_dev != top.st_dev) {
      it.disable_recursion_pending();  // mke2fs did not descend there either
      continue;
    }
    // lexically: fs::relative resolves symlinks, and an absolute link in the
    // tree (etc/alternatives/pager -> /usr/bin/less) would then name a path
    // on the build machine ("../../usr/bin/less").
    FOUNDRY_TRY(add(it->path().lexically_relative(tree).string(), st));
  }
  return count;
}

Status run_debugfs(const std::string& target, const std::string& cmds, const std::string& cmd_file,
                   const RunOptions& ro) {
  FOUNDRY_TRY(write_file_atomic(cmd_file, cmds));
  auto r = FOUNDRY_TRY(run_checked({"debugfs", "-w", "-f", cmd_file, target}, ro));
  std::string err;
  for (size_t pos = 0; pos < r.err.size();) {
    size_t nl = r.err.find('\n', pos);
    if (nl == std::string::npos) nl = r.err.size();
    std::string line = r.err.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.rfind("debugfs ", 0) != 0) err += line + "\n";
  }
  if (!err.empty())
    return fail(Error(ErrorKind::Operation, fmt::format("debugfs failed on {}", target))
                    .with_detail(err)
                    .with_hint("the detail lists the commands debugfs refused"));
  return ok();
}

Status write_partition_table(const std::string& image, const GptLayout& layout) {
  auto gpt = encode_gpt(layout);
  UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno(ErrorKind::Storage, "cannot open {} to write its partition table", image);
  auto put = [&](const std::vector<uint8_t>& data, uint64_t offset) -> Status {
    for (size_t done = 0; done < data.size();) {
      ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno(ErrorKind::Storage, "cannot write the partition table of {}", image);
      }
      done += static_cast<size_t>(n);
    }
    return ok();
  };
  FOUNDRY_TRY(put(gpt.primary, 0));
  FOUNDRY_TRY(put(gpt.backup, gpt.backup_offset));
  if (::fsync(fd.get()) != 0) return fail_errno(ErrorKind::Storage, "cannot sync {}", image);
  return ok();
}

}  // namespace foundry::platform::detail
