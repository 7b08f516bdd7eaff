#include "foundry/daemon/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <filesystem>
#include <fstream>
#include <utility>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/container/cni.h"

namespace foundry::daemon {

using json = nlohmann::json;
namespace fc = foundry::container;

namespace {

Result<std::string> string_param(const json& p, const char* key) {
  if (!p.is_object() || !p.contains(key) || !p[key].is_string() || p[key].get<std::string>().empty())
    return fail(Error(ErrorKind::Config, fmt::format("parameter \"{}\" is required (a non-empty string)", key)));
  return p[key].get<std::string>();
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions opts) : opts_(std::move(opts)), rt_(opts_.state_root) {}

std::string Supervisor::record_path(const std::string& id) const {
  return rt_.store().dir(id) + "/daemon.json";
}

std::string Supervisor::cni_path(const std::string& id) const { return rt_.store().dir(id) + "/cni.json"; }

namespace {
json read_json(const std::string& path) {
  auto t = read_file(path);
  if (!t) return nullptr;
  try {
    return json::parse(*t);
  } catch (const json::exception&) {
    return nullptr;
  }
}
}  // namespace

Status Supervisor::detach_network(const std::string& id, const json& rec) {
  if (!rec.is_object() || !rec.contains("conflist")) return ok();
  auto net = fc::parse_conflist(rec["conflist"].dump(), rec.value("network", "stored network"));
  if (!net) return fail(std::move(net).error());
  fc::CniRuntime rt;
  rt.container_id = id;
  rt.plugin_dirs = opts_.cni_plugin_dirs;
  return fc::cni_del(*net, rt, rec.value("result", json(nullptr)));
}

void Supervisor::record_exit(const std::string& id, json exit) {
  exit["finishedAt"] = fc::now_rfc3339();
  if (fc::write_state_file(record_path(id), exit.dump() + "\n"))
    spdlog::info("container {} exited: {}", id, exit.dump());
}

std::vector<std::string> Supervisor::recover() {
  std::vector<std::string> out;
  for (const auto& id : rt_.list()) {
    auto st = rt_.store().load(id);
    if (!st) {
      out.push_back(fmt::format("{}: unreadable state ({}); removing it", id, st.error().to_string()));
      (void)rt_.store().remove(id);
      continue;
    }
    if (st->recorded == fc::ContainerStatus::Creating) {
      // The daemon died inside create: the init died with it (parent-death
      // signal); the cgroup, state, log and any CNI address are what is left.
      json cni = read_json(cni_path(id));
      auto r = rt_.remove(id, true);
      if (auto d = detach_network(id, cni); !d) out.push_back(fmt::format("{}: CNI DEL: {}", id, d.error().to_string()));
      ::unlink(log_path(id).c_str());
      out.push_back(r ? fmt::format("{}: removed a half-made container", id)
                      : fmt::format("{}: could not remove a half-made container: {}", id, r.error().to_string()));
      continue;
    }
    if (fc::process_alive(st->init)) {
      UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, st->init.pid, 0)));
      if (fd && fc::process_alive(st->init)) {
        adopted_[id] = std::move(fd);
        out.push_back(fmt::format("{}: adopted ({}, pid {})", id, fc::to_string(rt_.store().status(*st)), st->init.pid));
        continue;
      }
    }
    if (!std::filesystem::exists(record_path(id)))
      record_exit(id, {{"exitCode", nullptr}, {"note", "exited while foundryd was not running"}});
    out.push_back(fmt::format("{}: stopped", id));
  }
  return out;
}

std::vector<std::pair<int, std::string>> Supervisor::adopted_fds() const {
  std::vector<std::pair<int, std::string>> v;
  for (const auto& [id, fd] : adopted_) v.emplace_back(fd.get(), id);
  return v;
}

void Supervisor::adopted_exited(const std::string& id) {
  adopted_.erase(id);
  // Not our child: the kernel gives its status to its real parent.
  if (rt_.store().exists(id))
    record_exit(id, {{"exitCode", nullptr}, {"note", "exit status unknown: the container predates this foundryd"}});
}

void Supervisor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (auto ex = execs_.find(pid); ex != execs_.end()) {
      finish_exec(pid, status);
      continue;
    }
    auto it = children_.find(pid);
    if (it == children_.end()) continue;  // an orphan handed to us as subreaper
    std::string id = it->second;
    children_.erase(it);
    if (!rt_.store().exists(id)) continue;  // deleted meanwhile
    json exit = {{"exitCode", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)}};
    if (WIFSIGNALED(status)) exit["signal"] = WTERMSIG(status);
    record_exit(id, exit);
  }
}

Result<json> Supervisor::handle(const std::string& method, const json& params, bool& method_not_found) {
  method_not_found = false;
  if (method == "create") return create(params);
  if (method == "start") return start(params);
  if (method == "state") return state(params);
  if (method == "kill") return kill(params);
  if (method == "delete") return remove(params);
  if (method == "list") return list();
  if (method == "logs") return logs(params);
  if (method == "version") return json{{"version", "0.1.0"}, {"pid", ::getpid()}, {"ociVersion", fc::kOciVersion}};
  if (method == "exec")  // answered later: the server calls exec_start
    return fail(Error(ErrorKind::Operation, "exec is answered asynchronously; call exec_start"));
  method_not_found = true;
  return fail(Error(ErrorKind::Config, fmt::format("unknown method \"{}\"", method))
                  .with_hint("methods: create, start, state, kill, delete, list, logs, exec, version"));
}

Result<json> Supervisor::describe(const std::string& id) const {
  json s = FOUNDRY_TRY(rt_.state(id));
  auto rec = read_file(record_path(id));
  if (rec) {
    try {
      json r = json::parse(*rec);
      s["exitCode"] = r.value("exitCode", json(nullptr));
      if (r.contains("signal")) s["exitSignal"] = r["signal"];
      s["finishedAt"] = r.value("finishedAt", "");
      if (r.contains("note")) s["note"] = r["note"];
    } catch (const json::exception&) {
    }
  }
  s["log"] = log_path(id);
  json cni = read_json(cni_path(id));
  if (cni.is_object())
    s["network"] = {{"name", cni.value("network", "")}, {"ip", fc::cni_first_ipv4(cni.value("result", json()))}};
  return s;
}

Result<json> Supervisor::create(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  std::string bundle = FOUNDRY_TRY(string_param(p, "bundle"));
  if (bundle.front() != '/')
    return fail(Error(ErrorKind::Config, fmt::format("bundle path \"{}\" must be absolute", bundle))
                    .with_hint("the daemon does not share the client's working directory"));
  FOUNDRY_TRY(fc::validate_container_id(id));
  FOUNDRY_TRY_CTX(make_dirs(opts_.log_dir, 0750), "create the log directory");
  // The log is created only when the id is free: a clash must not truncate
  // a live container's log.
  if (rt_.store().exists(id))
    return fail(Error(ErrorKind::Validation, fmt::format("container \"{}\" already exists", id))
                    .with_hint(fmt::format("delete it first (foundry container delete {}) or pick another id", id)));
  std::string log = log_path(id);
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (!out) return fail_errno(ErrorKind::Operation, "cannot create the log {}", log);
  UniqueFd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  fc::CreateOptions o;
  o.id = id;
  o.bundle = bundle;
  o.stdio[0] = in.get();
  o.stdio[1] = out.get();
  o.stdio[2] = out.get();
  auto spec = fc::load_spec(bundle);
  if (spec && spec->process && spec->process->terminal) {
    ::unlink(log.c_str());
    return fail(Error(ErrorKind::Validation, "process.terminal: containers of foundryd cannot have a terminal yet")
                    .with_hint("set process.terminal to false; output goes to the container's log"));
  }
  std::string network = p.value("network", "");
  if (!network.empty()) {
    auto net = fc::find_network(opts_.cni_conf_dir, network);
    if (!net) {
      ::unlink(log.c_str());
      return fail(std::move(net).error());
    }
    if (spec && !spec->linux_spec.new_namespace(fc::NamespaceType::Network)) {
      ::unlink(log.c_str());
      return fail(Error(ErrorKind::Validation,
                        fmt::format("network \"{}\" needs the container to have its own network namespace", network))
                      .with_hint("add {\"type\": \"network\"} (without a path) to linux.namespaces"));
    }
    // CNI ADD once the init's namespaces exist; the result is kept beside
    // the state for DEL (and survives daemon restarts).
    o.on_namespaces_ready = [this, net = *net, id](const fc::ContainerState& st) -> Status {
      fc::CniRuntime rt;
      rt.container_id = id;
      rt.netns = fmt::format("/proc/{}/ns/net", st.init.pid);
      rt.plugin_dirs = opts_.cni_plugin_dirs;
      json result = FOUNDRY_TRY(fc::cni_add(net, rt));
      json rec = {{"network", net.name}, {"conflist", net.list}, {"result", result}};
      if (auto w = fc::write_state_file(cni_path(id), rec.dump() + "\n"); !w) {
        (void)fc::cni_del(net, rt, result);
        return w;
      }
      spdlog::info("container {} joined network {} as {}", id, net.name, fc::cni_first_ipv4(result));
      return ok();
    };
  }
  auto st = rt_.create(o);
  if (!st) {
    ::unlink(log.c_str());
    return fail(std::move(st).error());
  }
  children_[st->init.pid] = id;
  spdlog::info("container {} created (pid {}, bundle {})", id, st->init.pid, bundle);
  return describe(id);
}

Result<json> Supervisor::start(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  FOUNDRY_TRY(rt_.start(id));
  spdlog::info("container {} started", id);
  return describe(id);
}

Result<json> Supervisor::state(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  return describe(id);
}

Result<json> Supervisor::kill(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  std::string sig = "TERM";
  if (p.contains("signal")) {
    if (p["signal"].is_number_integer()) sig = std::to_string(p["signal"].get<int>());
    else if (p["signal"].is_string()) sig = p["signal"].get<std::string>();
  }
  int n = FOUNDRY_TRY(fc::parse_signal(sig));
  FOUNDRY_TRY(rt_.kill(id, n, p.value("all", false)));
  return describe(id);
}

Result<json> Supervisor::remove(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  json cni = read_json(cni_path(id));
  if (p.value("force", false)) {
    // Exec'd processes are our children: killed with the container they
    // would stay zombies until we reap them, and the container's init (its
    // pid namespace's reaper) cannot finish exiting while they exist.
    std::vector<pid_t> ours;
    for (const auto& [pid, ex] : execs_)
      if (ex.id == id) ours.push_back(pid);
    for (pid_t pid : ours) {
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      finish_exec(pid, status);
    }
  }
  FOUNDRY_TRY(rt_.remove(id, p.value("force", false)));
  ::unlink(log_path(id).c_str());
  json result = {{"id", id}, {"deleted", true}};
  // The container and its namespace are gone; DEL gives back what the
  // plugins hold outside it (IPAM addresses, host-side rules).
  if (auto d = detach_network(id, cni); !d) {
    spdlog::warn("container {}: CNI DEL: {}", id, d.error().to_string());
    result["warnings"] = json::array({d.error().to_string()});
  }
  adopted_.erase(id);
  reap();  // the killed init, if it was ours
  spdlog::info("container {} deleted", id);
  return result;
}

namespace {

// Output of an exec lives in a memfd: no pipe to drain while the daemon
// serves others, and a process that leaves children holding its stdout
// cannot keep the answer from coming.
Result<UniqueFd> memory_file(const char* name) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
  if (!fd) return fail_errno(ErrorKind::Operation, "cannot create a memory file for the exec's {}", name);
  return fd;
}

// At most this much of each stream goes into the answer (a JSON-RPC line).
constexpr size_t kExecOutputLimit = 16u << 20;

std::string read_memory_file(int fd, bool& truncated) {
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return out;
  size_t size = static_cast<size_t>(st.st_size);
  truncated = truncated || size > kExecOutputLimit;
  out.resize(std::min(size, kExecOutputLimit));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

}  // namespace

Result<uint64_t> Supervisor::exec_start(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  fc::ExecOptions o;
  o.id = id;
  if (p.contains("process") && p["process"].is_object()) {
    o.process = FOUNDRY_TRY(fc::parse_process_spec(p["process"].dump(), "params.process"));
  } else {
    fc::ExecChanges c;
    try {
      c.args = p.value("args", std::vector<std::string>{});
      c.env = p.value("env", std::vector<std::string>{});
      c.cwd = p.value("cwd", "");
      c.user = p.value("user", "");
    } catch (const json::exception&) {
      return fail(Error(ErrorKind::Config, "exec parameters: args and env must be arrays of strings, cwd and user strings"));
    }
    fc::Process base = FOUNDRY_TRY(rt_.container_process(id));
    o.process = FOUNDRY_TRY(fc::exec_process(base, c));
  }
  if (o.process.terminal)
    return fail(Error(ErrorKind::Validation, "process.terminal: exec through foundryd cannot have a terminal yet")
                    .with_hint("run without a terminal; the output comes back in the answer"));
  UniqueFd in;
  if (p.contains("stdin") && p["stdin"].is_string()) {
    in = FOUNDRY_TRY(memory_file("stdin"));
    const std::string data = p["stdin"].get<std::string>();
    if (::write(in.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
      return fail_errno(ErrorKind::Operation, "cannot buffer the exec's stdin");
    ::lseek(in.get(), 0, SEEK_SET);
  } else {
    in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  UniqueFd out = FOUNDRY_TRY(memory_file("stdout"));
  UniqueFd err = FOUNDRY_TRY(memory_file("stderr"));
  o.stdio[0] = in.get();
  o.stdio[1] = out.get();
  o.stdio[2] = err.get();
  pid_t pid = FOUNDRY_TRY(rt_.exec(o));
  uint64_t token = next_exec_token_++;
  execs_[pid] = Exec{id, token, std::move(out), std::move(err)};
  spdlog::info("container {}: exec {} (pid {})", id, o.process.args.front(), pid);
  return token;
}

void Supervisor::finish_exec(pid_t pid, int status) {
  auto it = execs_.find(pid);
  if (it == execs_.end()) return;
  bool truncated = false;
  json r = {{"id", it->second.id}, {"pid", pid}};
  r["exitCode"] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (WIFSIGNALED(status)) r["signal"] = WTERMSIG(status);
  r["stdout"] = read_memory_file(it->second.out.get(), truncated);
  r["stderr"] = read_memory_file(it->second.err.get(), truncated);
  if (truncated) r["truncated"] = true;
  finished_execs_.emplace_back(it->second.token, std::move(r));
  execs_.erase(it);
}

std::vector<std::pair<uint64_t, json>> Supervisor::take_finished_execs() {
  return std::exchange(finished_execs_, {});
}

Result<json> Supervisor::list() {
  json out = json::array();
  for (const auto& id : rt_.list()) {
    auto d = describe(id);
    if (d) out.push_back(*d);
  }
  return out;
}

Result<json> Supervisor::logs(const json& p) {
  std::string id = FOUNDRY_TRY(string_param(p, "id"));
  if (!rt_.store().exists(id))
    return fail(Error(ErrorKind::Operation, fmt::format("container \"{}\" does not exist", id)));
  auto text = read_file(log_path(id));
  std::string data = text ? *text : "";
  if (p.contains("tail") && p["tail"].is_number_unsigned()) {
    std::deque<std::string> last;
    size_t n = p["tail"].get<size_t>();
    size_t start = 0;
    while (start < data.size()) {
      size_t nl = data.find('\n', start);
      size_t end = nl == std::string::npos ? data.size() : nl + 1;
      last.push_back(data.substr(start, end - start));
      if (last.size() > n) last.pop_front();
      start = end;
    }
    data.clear();
    for (const auto& l : last) data += l;
  }
  return json{{"id", id}, {"data", data}};
}

}  // namespace foundry::daemon
