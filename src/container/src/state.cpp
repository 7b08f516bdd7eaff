#include "foundry/container/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "foundry/common/file.h"
#include "foundry/container/hooks.h"

namespace foundry::container {

using json = nlohmann::json;

std::string_view to_string(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::Creating: return "creating";
    case ContainerStatus::Created: return "created";
    case ContainerStatus::Running: return "running";
    case ContainerStatus::Stopped: return "stopped";
  }
  return "unknown";
}

namespace {

// The fields after "pid (comm) ": comm may contain spaces and parentheses,
// so parse from the last ')'.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
  auto text = read_file(fmt::format("/proc/{}/stat", pid));
  if (!text) return std::nullopt;
  auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> out;
  size_t i = close + 1;
  while (i < text->size()) {
    while (i < text->size() && (*text)[i] == ' ') ++i;
    size_t j = text->find(' ', i);
    if (j == std::string::npos) j = text->size();
    if (j > i) out.push_back(text->substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::optional<uint64_t> process_start_time(pid_t pid) {
  auto f = stat_fields(pid);
  // Field 3 (state) is f[0]; field 22 (starttime) is f[19].
  if (!f || f->size() < 20) return std::nullopt;
  try {
    return std::stoull((*f)[19]);
  } catch (...) {
    return std::nullopt;
  }
}

char process_state(pid_t pid) {
  auto f = stat_fields(pid);
  if (!f || f->empty() || (*f)[0].empty()) return 0;
  return (*f)[0][0];
}

bool process_alive(const ProcessIdentity& id) {
  if (id.pid <= 0) return false;
  auto f = stat_fields(id.pid);
  if (!f || f->size() < 20) return false;
  char st = (*f)[0].empty() ? 0 : (*f)[0][0];
  if (st == 'Z' || st == 'X') return false;
  try {
    return std::stoull((*f)[19]) == id.start_time;
  } catch (...) {
    return false;
  }
}

Status validate_container_id(const std::string& id) {
  auto bad = [&](std::string why) {
    return fail(Error(ErrorKind::Validation, fmt::format("invalid container id \"{}\": {}", id, why))
                    .with_hint("use letters, digits, and . _ + - (at most 1024 characters)"));
  };
  if (id.empty()) return bad("it is empty");
  if (id == "." || id == "..") return bad("it is a path component");
  if (id.size() > 1024) return bad("it is too long");
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '+';
    if (!ok) return bad(fmt::format("'{}' is not allowed", c));
  }
  return ok();
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns);
}

json ContainerState::to_json() const {
  json j = {
      {"id", id},
      {"bundle", bundle},
      {"rootfs", rootfs},
      {"pid", init.pid},
      {"pidStartTime", init.start_time},
      {"status", std::string(to_string(recorded))},
      {"created", created},
      {"owner", owner},
      {"annotations", annotations},
      {"ownPidNamespace", own_pid_namespace},
      {"hooks", hooks_to_json(hooks)},
  };
  if (cgroup) j["cgroup"] = cgroup->to_json();
  return j;
}

Result<ContainerState> ContainerState::from_json(const json& j) {
  try {
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.value("rootfs", "");
    s.init.pid = j.at("pid").get<pid_t>();
    s.init.start_time = j.at("pidStartTime").get<uint64_t>();
    std::string st = j.value("status", "creating");
    s.recorded = st == "created"   ? ContainerStatus::Created
                 : st == "running" ? ContainerStatus::Running
                 : st == "stopped" ? ContainerStatus::Stopped
                                   : ContainerStatus::Creating;
    s.created = j.value("created", "");
    s.owner = j.value("owner", "");
    if (j.contains("annotations")) s.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    s.own_pid_namespace = j.value("ownPidNamespace", true);
    if (j.contains("hooks")) s.hooks = hooks_from_json(j.at("hooks"));
    if (j.contains("cgroup")) s.cgroup = FOUNDRY_TRY(Cgroup::from_json(j.at("cgroup")));
    return s;
  } catch (const json::exception& e) {
    return fail(ErrorKind::Storage, "malformed container state: {}", e.what());
  }
}

json ContainerState::oci_state(ContainerStatus status) const {
  json j = {
      {"ociVersion", kOciVersion},
      {"id", id},
      {"status", std::string(to_string(status))},
      {"bundle", bundle},
  };
  // The spec: pid is REQUIRED when created or running on Linux. A stopped
  // container reports 0, as runc does.
  j["pid"] = status == ContainerStatus::Stopped ? 0 : init.pid;
  j["rootfs"] = rootfs;
  j["created"] = created;
  j["owner"] = owner;
  j["annotations"] = annotations.empty() ? json::object() : json(annotations);
  return j;
}

Status StateStore::create_dir(const std::string& id) const {
  FOUNDRY_TRY_CTX(make_dirs(root_, 0711), "create the state root");
  std::string d = dir(id);
  if (::mkdir(d.c_str(), 0711) != 0) {
    if (errno == EEXIST)
      return fail(Error(ErrorKind::Validation, fmt::format("container \"{}\" already exists", id))
                      .with_hint(fmt::format("delete it first (foundry-oci delete {}) or pick another id", id)));
    return fail_errno(ErrorKind::Operation, "cannot create state directory {}", d);
  }
  return ok();
}

// Atomic (temporary file + rename) but not fsync'ed: the record only
// describes processes and cgroups that die with the machine, so surviving a
// power loss buys nothing, while an fsync costs 10-90 ms per write on an
// ext4 /run -- more than everything else create does together. A crash of
// the runtime itself (kill -9) cannot tear the file: rename is atomic.
Status write_state_file(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_errno(ErrorKind::Storage, "cannot write {}", tmp);
  std::string_view rest = data;
  while (!rest.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::unlink(tmp.c_str());
      return fail_errno(ErrorKind::Storage, "cannot write {}", tmp);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail_errno(ErrorKind::Storage, "cannot rename {} to {}", tmp, path);
  }
  return ok();
}

Status StateStore::save(const ContainerState& s) const {
  return write_state_file(dir(s.id) + "/state.json", s.to_json().dump(2) + "\n");
}

bool StateStore::exists(const std::string& id) const {
  struct stat st {};
  return ::stat(dir(id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<ContainerState> StateStore::load(const std::string& id) const {
  FOUNDRY_TRY(validate_container_id(id));
  if (!exists(id))
    return fail(Error(ErrorKind::Operation, fmt::format("container \"{}\" does not exist", id))
                    .with_hint(fmt::format("no state in {}; check the id against the container list", dir(id))));
  auto text = read_file(dir(id) + "/state.json");
  if (!text) {
    // A directory without a record: a create that died before its first
    // save. It is a stopped container with nothing running; delete removes it.
    ContainerState s;
    s.id = id;
    s.recorded = ContainerStatus::Stopped;
    return s;
  }
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::exception& e) {
    return fail(Error(ErrorKind::Storage, fmt::format("state of container \"{}\" is unreadable: {}", id, e.what()))
                    .with_hint(fmt::format("remove it with `foundry-oci delete --force {}`", id)));
  }
  return ContainerState::from_json(j);
}

Status StateStore::remove(const std::string& id) const {
  std::error_code ec;
  std::filesystem::remove_all(dir(id), ec);
  if (ec) return fail(Error(ErrorKind::Operation, fmt::format("cannot remove {}: {}", dir(id), ec.message())));
  return ok();
}

std::vector<std::string> StateStore::list() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    if (e.is_directory(ec)) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<UniqueFd> StateStore::lock(const std::string& id) const {
  std::string p = dir(id) + "/lock";
  UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno(ErrorKind::Operation, "cannot open lock {}", p);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return fail_errno(ErrorKind::Operation, "cannot lock {}", p);
  }
  return fd;
}

ContainerStatus StateStore::status(const ContainerState& s) const {
  if (!process_alive(s.init)) return ContainerStatus::Stopped;
  if (s.recorded == ContainerStatus::Creating) return ContainerStatus::Creating;
  struct stat st {};
  if (::stat(fifo_path(s.id).c_str(), &st) == 0) return ContainerStatus::Created;
  return ContainerStatus::Running;
}

}  // namespace foundry::container
