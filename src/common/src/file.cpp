#include "foundry/common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "foundry/common/unique_fd.h"

namespace foundry {

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno(ErrorKind::Config, "cannot open {}", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode))
    return fail(ErrorKind::Config, "{} is a directory, not a file", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Config, "cannot read {}", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

static Status write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Operation, "cannot write {}", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  std::string tmpl = dir + "/." + p.filename().string() + ".XXXXXX.tmp";
  int raw = ::mkostemps(tmpl.data(), 4, O_CLOEXEC);
  if (raw < 0) return fail_errno(ErrorKind::Operation, "cannot create a temporary file in {}", dir);
  UniqueFd fd(raw);
  bool keep = false;
  auto drop = [&] {
    if (!keep) ::unlink(tmpl.c_str());
  };
  if (::fchmod(fd.get(), mode) != 0) {
    auto e = fail_errno(ErrorKind::Operation, "cannot set mode of {}", tmpl);
    drop();
    return e;
  }
  if (auto st = write_all(fd.get(), data, path); !st) {
    drop();
    return st;
  }
  if (::fsync(fd.get()) != 0) {
    auto e = fail_errno(ErrorKind::Operation, "cannot sync {}", tmpl);
    drop();
    return e;
  }
  fd.reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    auto e = fail_errno(ErrorKind::Operation, "cannot rename {} to {}", tmpl, path);
    drop();
    return e;
  }
  keep = true;
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());  // best effort: the data is already in place
  return ok();
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::path p(path);
  std::filesystem::path cur;
  for (const auto& part : p) {
    cur /= part;
    if (cur.empty() || std::filesystem::exists(cur, ec)) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return fail_errno(ErrorKind::Operation, "cannot create directory {}", cur.string());
  }
  return ok();
}

}  // namespace foundry
