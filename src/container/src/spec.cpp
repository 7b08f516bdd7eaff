// config.json -> Spec. The Reader walks the document with the JSON path of
// every value at hand, so each problem is reported where it is and the parse
// goes on to find the next one: a user fixes a broken bundle in one round.
#include "foundry/container/spec.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "foundry/common/file.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace foundry::container {

using json = nlohmann::json;

std::string_view to_string(NamespaceType t) {
  switch (t) {
    case NamespaceType::Pid: return "pid";
    case NamespaceType::Network: return "network";
    case NamespaceType::Mount: return "mount";
    case NamespaceType::Ipc: return "ipc";
    case NamespaceType::Uts: return "uts";
    case NamespaceType::User: return "user";
    case NamespaceType::Cgroup: return "cgroup";
    case NamespaceType::Time: return "time";
  }
  return "?";
}

int clone_flag(NamespaceType t) {
  switch (t) {
    case NamespaceType::Pid: return CLONE_NEWPID;
    case NamespaceType::Network: return CLONE_NEWNET;
    case NamespaceType::Mount: return CLONE_NEWNS;
    case NamespaceType::Ipc: return CLONE_NEWIPC;
    case NamespaceType::Uts: return CLONE_NEWUTS;
    case NamespaceType::User: return CLONE_NEWUSER;
    case NamespaceType::Cgroup: return CLONE_NEWCGROUP;
    case NamespaceType::Time: return CLONE_NEWTIME;
  }
  return 0;
}

std::string_view proc_ns_name(NamespaceType t) {
  switch (t) {
    case NamespaceType::Pid: return "pid";
    case NamespaceType::Network: return "net";
    case NamespaceType::Mount: return "mnt";
    case NamespaceType::Ipc: return "ipc";
    case NamespaceType::Uts: return "uts";
    case NamespaceType::User: return "user";
    case NamespaceType::Cgroup: return "cgroup";
    case NamespaceType::Time: return "time";
  }
  return "?";
}

const Namespace* LinuxSpec::find_namespace(NamespaceType t) const {
  for (const auto& ns : namespaces)
    if (ns.type == t) return &ns;
  return nullptr;
}

bool LinuxSpec::new_namespace(NamespaceType t) const {
  const Namespace* ns = find_namespace(t);
  return ns && ns->path.empty();
}

namespace {

// Capability names in kernel order (include/uapi/linux/capability.h). Kept
// here rather than asked from libcap so that parsing needs no library state
// and the spelling in errors is the specification's.
constexpr const char* kCapNames[] = {
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",    "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",          "CAP_KILL",            "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",       "CAP_NET_RAW",         "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",       "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",        "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",           "CAP_AUDIT_WRITE",     "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",       "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",      "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

std::string key_path(const std::string& base, std::string_view key) {
  if (base.empty()) return std::string(key);
  return base + "." + std::string(key);
}

std::string index_path(const std::string& base, size_t i) { return fmt::format("{}[{}]", base, i); }

std::string_view type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a fractional number";
    default: return "an unsupported value";
  }
}

bool is_absolute(std::string_view p) { return !p.empty() && p.front() == '/'; }

bool has_dotdot(std::string_view p) {
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    if (p.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

// "0-3,5,7-8": the cpuset list syntax of the kernel.
bool valid_cpu_list(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view part = s.substr(start, end - start);
    size_t dash = part.find('-');
    auto digits = [](std::string_view d) {
      return !d.empty() && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (dash == std::string_view::npos) {
      if (!digits(part)) return false;
    } else {
      auto a = part.substr(0, dash), b = part.substr(dash + 1);
      if (!digits(a) || !digits(b)) return false;
      if (std::stoul(std::string(a)) > std::stoul(std::string(b))) return false;
    }
    start = end + 1;
  }
  return true;
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  void problem(const std::string& path, std::string message, std::string hint = "") {
    diags_.push_back(Diagnostic{source_, 0, 0, path.empty() ? std::string("(document)") : path,
                                std::move(message), std::move(hint)});
  }
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }

  // The member `key` of obj, or nullptr when absent or null (the spec treats
  // null like absence for optional fields).
  const json* member(const json& obj, std::string_view key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool expect_object(const json& j, const std::string& path) {
    if (j.is_object()) return true;
    problem(path, fmt::format("must be an object, found {}", type_name(j)));
    return false;
  }
  bool expect_array(const json& j, const std::string& path) {
    if (j.is_array()) return true;
    problem(path, fmt::format("must be an array, found {}", type_name(j)));
    return false;
  }

  std::optional<std::string> string_value(const json& j, const std::string& path) {
    if (j.is_string()) return j.get<std::string>();
    problem(path, fmt::format("must be a string, found {}", type_name(j)));
    return std::nullopt;
  }
  std::optional<std::string> string_member(const json& obj, std::string_view key, const std::string& base) {
    const json* v = member(obj, key);
    if (!v) return std::nullopt;
    return string_value(*v, key_path(base, key));
  }

  std::optional<bool> bool_member(const json& obj, std::string_view key, const std::string& base) {
    const json* v = member(obj, key);
    if (!v) return std::nullopt;
    if (v->is_boolean()) return v->get<bool>();
    problem(key_path(base, key), fmt::format("must be true or false, found {}", type_name(*v)));
    return std::nullopt;
  }

  // Integer in [lo, hi]. Fractions, strings and out-of-range numbers are
  // reported with the range the field accepts.
  std::optional<int64_t> int_value(const json& j, const std::string& path, int64_t lo, int64_t hi) {
    if (j.is_number_unsigned()) {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) {
        problem(path, fmt::format("{} is out of range", u), fmt::format("use a value from {} to {}", lo, hi));
        return std::nullopt;
      }
      return static_cast<int64_t>(u);
    }
    if (j.is_number_integer()) {
      int64_t v = j.get<int64_t>();
      if (v < lo || v > hi) {
        problem(path, fmt::format("{} is out of range", v), fmt::format("use a value from {} to {}", lo, hi));
        return std::nullopt;
      }
      return v;
    }
    problem(path, fmt::format("must be an integer, found {}", type_name(j)),
            j.is_string() ? "write the number without quotes" : "");
    return std::nullopt;
  }
  std::optional<uint64_t> uint64_value(const json& j, const std::string& path) {
    if (j.is_number_unsigned()) return j.get<uint64_t>();
    if (j.is_number_integer()) {
      problem(path, fmt::format("{} is negative", j.get<int64_t>()), "use a value of 0 or more");
      return std::nullopt;
    }
    problem(path, fmt::format("must be a non-negative integer, found {}", type_name(j)),
            j.is_string() ? "write the number without quotes" : "");
    return std::nullopt;
  }

  template <typename T>
  std::optional<T> int_member(const json& obj, std::string_view key, const std::string& base,
                              int64_t lo = std::numeric_limits<T>::min(),
                              int64_t hi = static_cast<int64_t>(std::numeric_limits<T>::max())) {
    const json* v = member(obj, key);
    if (!v) return std::nullopt;
    auto r = int_value(*v, key_path(base, key), lo, hi);
    if (!r) return std::nullopt;
    return static_cast<T>(*r);
  }
  std::optional<uint64_t> uint64_member(const json& obj, std::string_view key, const std::string& base) {
    const json* v = member(obj, key);
    if (!v) return std::nullopt;
    return uint64_value(*v, key_path(base, key));
  }

  std::vector<std::string> string_array(const json& obj, std::string_view key, const std::string& base) {
    std::vector<std::string> out;
    const json* v = member(obj, key);
    if (!v) return out;
    std::string path = key_path(base, key);
    if (!expect_array(*v, path)) return out;
    for (size_t i = 0; i < v->size(); ++i) {
      if (auto s = string_value((*v)[i], index_path(path, i))) out.push_back(*s);
    }
    return out;
  }

  std::map<std::string, std::string> string_map(const json& obj, std::string_view key, const std::string& base) {
    std::map<std::string, std::string> out;
    const json* v = member(obj, key);
    if (!v) return out;
    std::string path = key_path(base, key);
    if (!expect_object(*v, path)) return out;
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (auto s = string_value(it.value(), key_path(path, it.key()))) out[it.key()] = *s;
    }
    return out;
  }

 private:
  std::string source_;
  std::vector<Diagnostic> diags_;
};

void parse_user(Reader& r, const json& j, const std::string& path, User& u) {
  if (!r.expect_object(j, path)) return;
  if (!r.member(j, "uid")) r.problem(key_path(path, "uid"), "is required", "add \"uid\": 0 for root");
  if (!r.member(j, "gid")) r.problem(key_path(path, "gid"), "is required", "add \"gid\": 0 for root");
  if (auto v = r.int_member<uint32_t>(j, "uid", path)) u.uid = *v;
  if (auto v = r.int_member<uint32_t>(j, "gid", path)) u.gid = *v;
  if (auto v = r.int_member<uint32_t>(j, "umask", path, 0, 0777)) u.umask = *v;
  if (const json* a = r.member(j, "additionalGids")) {
    std::string ap = key_path(path, "additionalGids");
    if (r.expect_array(*a, ap)) {
      for (size_t i = 0; i < a->size(); ++i)
        if (auto g = r.int_value((*a)[i], index_path(ap, i), 0, std::numeric_limits<uint32_t>::max()))
          u.additional_gids.push_back(static_cast<uint32_t>(*g));
    }
  }
  if (r.member(j, "username"))
    (void)r.string_member(j, "username", path);  // Windows only; accepted and ignored
}

void parse_caps(Reader& r, const json& j, const std::string& path, Capabilities& c) {
  if (!r.expect_object(j, path)) return;
  auto one = [&](std::string_view key, std::vector<int>& out) {
    const json* v = r.member(j, key);
    if (!v) return;
    std::string p = key_path(path, key);
    if (!r.expect_array(*v, p)) return;
    for (size_t i = 0; i < v->size(); ++i) {
      auto name = r.string_value((*v)[i], index_path(p, i));
      if (!name) continue;
      auto cap = capability_from_name(*name);
      if (!cap) {
        r.problem(index_path(p, i), fmt::format("unknown capability \"{}\"", *name),
                  "capability names look like CAP_NET_BIND_SERVICE (see capabilities(7))");
        continue;
      }
      if (std::find(out.begin(), out.end(), *cap) == out.end()) out.push_back(*cap);
    }
  };
  one("bounding", c.bounding);
  one("effective", c.effective);
  one("inheritable", c.inheritable);
  one("permitted", c.permitted);
  one("ambient", c.ambient);
}

void parse_process(Reader& r, const json& j, const std::string& path, Process& p) {
  if (!r.expect_object(j, path)) return;
  if (auto v = r.bool_member(j, "terminal", path)) p.terminal = *v;
  if (const json* cs = r.member(j, "consoleSize")) {
    std::string cp = key_path(path, "consoleSize");
    if (r.expect_object(*cs, cp)) {
      ConsoleSize size;
      if (auto h = r.int_member<uint32_t>(*cs, "height", cp)) size.height = *h;
      else if (!r.member(*cs, "height")) r.problem(key_path(cp, "height"), "is required");
      if (auto w = r.int_member<uint32_t>(*cs, "width", cp)) size.width = *w;
      else if (!r.member(*cs, "width")) r.problem(key_path(cp, "width"), "is required");
      p.console_size = size;
    }
  }
  if (const json* u = r.member(j, "user")) parse_user(r, *u, key_path(path, "user"), p.user);
  else r.problem(key_path(path, "user"), "is required", "add \"user\": {\"uid\": 0, \"gid\": 0}");

  const json* args = r.member(j, "args");
  std::string args_path = key_path(path, "args");
  if (!args) {
    if (!r.member(j, "commandLine"))
      r.problem(args_path, "is required", "give the program and its arguments, e.g. [\"sh\", \"-c\", \"echo hi\"]");
  } else if (r.expect_array(*args, args_path)) {
    if (args->empty())
      r.problem(args_path, "is empty", "give at least the program to run, e.g. [\"sh\"]");
    p.args = r.string_array(j, "args", path);
    if (!p.args.empty() && p.args.size() == args->size() && p.args[0].empty())
      r.problem(index_path(args_path, 0), "the program name is empty", "name the executable, e.g. \"sh\" or \"/bin/sh\"");
  }

  p.env = r.string_array(j, "env", path);
  if (const json* env = r.member(j, "env"); env && env->is_array()) {
    for (size_t i = 0; i < env->size(); ++i) {
      if (!(*env)[i].is_string()) continue;
      auto s = (*env)[i].get<std::string>();
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0)
        r.problem(index_path(key_path(path, "env"), i), fmt::format("\"{}\" is not of the form KEY=value", s),
                  "write environment entries as \"NAME=value\"");
    }
  }
  if (auto cwd = r.string_member(j, "cwd", path)) {
    p.cwd = *cwd;
    if (!is_absolute(*cwd))
      r.problem(key_path(path, "cwd"), fmt::format("\"{}\" is not an absolute path", *cwd),
                "the working directory is a path inside the container, e.g. \"/\"");
  } else if (!r.member(j, "cwd")) {
    r.problem(key_path(path, "cwd"), "is required", "add \"cwd\": \"/\"");
  }
  if (const json* c = r.member(j, "capabilities")) {
    Capabilities caps;
    parse_caps(r, *c, key_path(path, "capabilities"), caps);
    p.capabilities = std::move(caps);
  }
  if (const json* rl = r.member(j, "rlimits")) {
    std::string rp = key_path(path, "rlimits");
    if (r.expect_array(*rl, rp)) {
      std::set<int> seen;
      for (size_t i = 0; i < rl->size(); ++i) {
        std::string ip = index_path(rp, i);
        const json& e = (*rl)[i];
        if (!r.expect_object(e, ip)) continue;
        Rlimit lim;
        auto type = r.string_member(e, "type", ip);
        if (!type) {
          if (!r.member(e, "type")) r.problem(key_path(ip, "type"), "is required", "e.g. \"RLIMIT_NOFILE\"");
          continue;
        }
        auto res = rlimit_from_name(*type);
        if (!res) {
          r.problem(key_path(ip, "type"), fmt::format("unknown resource limit \"{}\"", *type),
                    "use a name from getrlimit(2), e.g. RLIMIT_NOFILE");
          continue;
        }
        lim.resource = *res;
        lim.name = *type;
        auto soft = r.uint64_member(e, "soft", ip);
        auto hard = r.uint64_member(e, "hard", ip);
        if (!r.member(e, "soft")) r.problem(key_path(ip, "soft"), "is required");
        if (!r.member(e, "hard")) r.problem(key_path(ip, "hard"), "is required");
        if (!soft || !hard) continue;
        lim.soft = *soft;
        lim.hard = *hard;
        if (lim.soft > lim.hard)
          r.problem(key_path(ip, "soft"), fmt::format("soft limit {} is above the hard limit {}", lim.soft, lim.hard),
                    "make soft at most hard");
        if (!seen.insert(lim.resource).second)
          r.problem(key_path(ip, "type"), fmt::format("{} is given twice", *type), "keep one entry per type");
        p.rlimits.push_back(lim);
      }
    }
  }
  if (auto v = r.bool_member(j, "noNewPrivileges", path)) p.no_new_privileges = *v;
  if (auto v = r.int_member<int>(j, "oomScoreAdj", path, -1000, 1000)) p.oom_score_adj = *v;
  if (auto v = r.string_member(j, "apparmorProfile", path)) p.apparmor_profile = *v;
  if (auto v = r.string_member(j, "selinuxLabel", path)) p.selinux_label = *v;
}

void parse_hooks(Reader& r, const json& j, const std::string& path, Hooks& h) {
  if (!r.expect_object(j, path)) return;
  auto list = [&](std::string_view key, std::vector<Hook>& out) {
    const json* v = r.member(j, key);
    if (!v) return;
    std::string lp = key_path(path, key);
    if (!r.expect_array(*v, lp)) return;
    for (size_t i = 0; i < v->size(); ++i) {
      std::string ip = index_path(lp, i);
      const json& e = (*v)[i];
      if (!r.expect_object(e, ip)) continue;
      Hook hook;
      if (auto p = r.string_member(e, "path", ip)) {
        hook.path = *p;
        if (!is_absolute(*p))
          r.problem(key_path(ip, "path"), fmt::format("\"{}\" is not an absolute path", *p),
                    "hooks run outside any shell; give the full path, e.g. /usr/bin/true");
      } else if (!r.member(e, "path")) {
        r.problem(key_path(ip, "path"), "is required", "give the absolute path of the hook program");
      }
      hook.args = r.string_array(e, "args", ip);
      hook.env = r.string_array(e, "env", ip);
      if (auto t = r.int_member<int>(e, "timeout", ip, std::numeric_limits<int>::min(), 86400)) {
        if (*t <= 0)
          r.problem(key_path(ip, "timeout"), fmt::format("{} is not a positive number of seconds", *t),
                    "leave it out for no timeout, or give seconds > 0");
        else
          hook.timeout = *t;
      }
      out.push_back(std::move(hook));
    }
  };
  list("prestart", h.prestart);
  list("createRuntime", h.create_runtime);
  list("createContainer", h.create_container);
  list("startContainer", h.start_container);
  list("poststart", h.poststart);
  list("poststop", h.poststop);
}

void parse_mounts(Reader& r, const json& j, const std::string& path, std::vector<Mount>& out) {
  if (!r.expect_array(j, path)) return;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string ip = index_path(path, i);
    const json& e = j[i];
    if (!r.expect_object(e, ip)) continue;
    Mount m;
    if (auto d = r.string_member(e, "destination", ip)) {
      m.destination = *d;
      if (!is_absolute(*d))
        r.problem(key_path(ip, "destination"), fmt::format("\"{}\" is not an absolute path", *d),
                  "mount destinations are paths inside the container, e.g. \"/proc\"");
      else if (has_dotdot(*d))
        r.problem(key_path(ip, "destination"), fmt::format("\"{}\" contains \"..\"", *d),
                  "write the destination without \"..\" components");
    } else if (!r.member(e, "destination")) {
      r.problem(key_path(ip, "destination"), "is required");
    }
    if (auto t = r.string_member(e, "type", ip)) m.type = *t;
    if (auto s = r.string_member(e, "source", ip)) m.source = *s;
    m.options = r.string_array(e, "options", ip);
    m.flags = parse_mount_options(m.options);
    if (m.flags.bind && m.source.empty())
      r.problem(key_path(ip, "source"), "a bind mount needs a source", "name the host path to bind");
    if (!m.flags.bind && m.type.empty())
      r.problem(key_path(ip, "type"), "is required unless the options contain \"bind\" or \"rbind\"",
                "e.g. \"tmpfs\", \"proc\", or add \"bind\" to the options");
    if (r.member(e, "uidMappings") || r.member(e, "gidMappings"))
      r.problem(ip, "idmapped mounts (uidMappings/gidMappings on a mount) are not supported yet",
                "remove the mappings from this mount");
    out.push_back(std::move(m));
  }
}

std::vector<IdMapping> parse_mappings(Reader& r, const json& obj, std::string_view key, const std::string& base) {
  std::vector<IdMapping> out;
  const json* v = r.member(obj, key);
  if (!v) return out;
  std::string path = key_path(base, key);
  if (!r.expect_array(*v, path)) return out;
  for (size_t i = 0; i < v->size(); ++i) {
    std::string ip = index_path(path, i);
    const json& e = (*v)[i];
    if (!r.expect_object(e, ip)) continue;
    IdMapping m;
    bool okc = false, okh = false, oks = false;
    if (auto c = r.int_member<uint32_t>(e, "containerID", ip)) m.container_id = *c, okc = true;
    else if (!r.member(e, "containerID")) r.problem(key_path(ip, "containerID"), "is required");
    if (auto h = r.int_member<uint32_t>(e, "hostID", ip)) m.host_id = *h, okh = true;
    else if (!r.member(e, "hostID")) r.problem(key_path(ip, "hostID"), "is required");
    if (auto s = r.int_member<uint32_t>(e, "size", ip)) m.size = *s, oks = true;
    else if (!r.member(e, "size")) r.problem(key_path(ip, "size"), "is required");
    if (oks && m.size == 0) r.problem(key_path(ip, "size"), "is 0", "map at least one id");
    if (okc && okh && oks) out.push_back(m);
  }
  return out;
}

void parse_devices(Reader& r, const json& j, const std::string& path, std::vector<Device>& out) {
  if (!r.expect_array(j, path)) return;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string ip = index_path(path, i);
    const json& e = j[i];
    if (!r.expect_object(e, ip)) continue;
    Device d;
    if (auto t = r.string_member(e, "type", ip)) {
      if (*t != "c" && *t != "b" && *t != "u" && *t != "p")
        r.problem(key_path(ip, "type"), fmt::format("\"{}\" is not a device type", *t),
                  "use \"c\" (character), \"b\" (block), \"u\" (unbuffered character) or \"p\" (FIFO)");
      else
        d.type = (*t)[0];
    } else if (!r.member(e, "type")) {
      r.problem(key_path(ip, "type"), "is required", "e.g. \"c\" for a character device");
    }
    if (auto p = r.string_member(e, "path", ip)) {
      d.path = *p;
      if (!is_absolute(*p) || has_dotdot(*p))
        r.problem(key_path(ip, "path"), fmt::format("\"{}\" is not an absolute path without \"..\"", *p),
                  "e.g. \"/dev/fuse\"");
    } else if (!r.member(e, "path")) {
      r.problem(key_path(ip, "path"), "is required");
    }
    bool need_numbers = d.type != 'p';
    if (auto v = r.int_member<int64_t>(e, "major", ip, 0, 0xfff)) d.major = *v;
    else if (need_numbers && !r.member(e, "major")) r.problem(key_path(ip, "major"), "is required for this device type");
    if (auto v = r.int_member<int64_t>(e, "minor", ip, 0, 0xfffff)) d.minor = *v;
    else if (need_numbers && !r.member(e, "minor")) r.problem(key_path(ip, "minor"), "is required for this device type");
    if (auto v = r.int_member<uint32_t>(e, "fileMode", ip, 0, 07777)) d.file_mode = *v;
    if (auto v = r.int_member<uint32_t>(e, "uid", ip)) d.uid = *v;
    if (auto v = r.int_member<uint32_t>(e, "gid", ip)) d.gid = *v;
    out.push_back(std::move(d));
  }
}

std::vector<BlockIoDevice> parse_blkio_list(Reader& r, const json& obj, std::string_view key, const std::string& base,
                                            bool throttle) {
  std::vector<BlockIoDevice> out;
  const json* v = r.member(obj, key);
  if (!v) return out;
  std::string path = key_path(base, key);
  if (!r.expect_array(*v, path)) return out;
  for (size_t i = 0; i < v->size(); ++i) {
    std::string ip = index_path(path, i);
    const json& e = (*v)[i];
    if (!r.expect_object(e, ip)) continue;
    BlockIoDevice d;
    if (auto m = r.int_member<int64_t>(e, "major", ip, 0, 0xfff)) d.major = *m;
    else if (!r.member(e, "major")) r.problem(key_path(ip, "major"), "is required");
    if (auto m = r.int_member<int64_t>(e, "minor", ip, 0, 0xfffff)) d.minor = *m;
    else if (!r.member(e, "minor")) r.problem(key_path(ip, "minor"), "is required");
    if (throttle) {
      if (auto rate = r.uint64_member(e, "rate", ip)) d.rate = *rate;
      else if (!r.member(e, "rate")) r.problem(key_path(ip, "rate"), "is required");
    } else {
      if (auto w = r.int_member<uint16_t>(e, "weight", ip, 10, 1000)) d.weight = *w;
      if (auto w = r.int_member<uint16_t>(e, "leafWeight", ip, 10, 1000)) d.leaf_weight = *w;
    }
    out.push_back(d);
  }
  return out;
}

void parse_resources(Reader& r, const json& j, const std::string& path, Resources& res) {
  if (!r.expect_object(j, path)) return;
  if (const json* devs = r.member(j, "devices")) {
    std::string dp = key_path(path, "devices");
    if (r.expect_array(*devs, dp)) {
      for (size_t i = 0; i < devs->size(); ++i) {
        std::string ip = index_path(dp, i);
        const json& e = (*devs)[i];
        if (!r.expect_object(e, ip)) continue;
        DeviceRule rule;
        if (auto a = r.bool_member(e, "allow", ip)) rule.allow = *a;
        else if (!r.member(e, "allow")) r.problem(key_path(ip, "allow"), "is required", "true to allow, false to deny");
        if (auto t = r.string_member(e, "type", ip)) {
          if (*t != "a" && *t != "c" && *t != "b")
            r.problem(key_path(ip, "type"), fmt::format("\"{}\" is not a device rule type", *t),
                      "use \"a\" (all), \"c\" (character) or \"b\" (block)");
          else
            rule.type = (*t)[0];
        }
        if (auto m = r.int_member<int64_t>(e, "major", ip, -1, 0xfff)) rule.major = *m;
        if (auto m = r.int_member<int64_t>(e, "minor", ip, -1, 0xfffff)) rule.minor = *m;
        if (auto a = r.string_member(e, "access", ip)) {
          bool good = !a->empty() && a->size() <= 3 &&
                      std::all_of(a->begin(), a->end(), [](char c) { return c == 'r' || c == 'w' || c == 'm'; });
          if (!good)
            r.problem(key_path(ip, "access"), fmt::format("\"{}\" is not a device access", *a),
                      "combine r (read), w (write) and m (mknod), e.g. \"rwm\"");
          else
            rule.access = *a;
        }
        res.devices.push_back(rule);
      }
    }
  }
  if (const json* m = r.member(j, "memory")) {
    std::string mp = key_path(path, "memory");
    if (r.expect_object(*m, mp)) {
      MemoryResources mem;
      auto limit_field = [&](std::string_view key, std::optional<int64_t>& out) {
        if (auto v = r.int_member<int64_t>(*m, key, mp)) {
          if (*v < -1)
            r.problem(key_path(mp, key), fmt::format("{} is negative", *v), "give bytes, or -1 for unlimited");
          else
            out = *v;
        }
      };
      limit_field("limit", mem.limit);
      limit_field("reservation", mem.reservation);
      limit_field("swap", mem.swap);
      limit_field("kernel", mem.kernel);
      limit_field("kernelTCP", mem.kernel_tcp);
      if (auto s = r.uint64_member(*m, "swappiness", mp)) {
        if (*s > 100)
          r.problem(key_path(mp, "swappiness"), fmt::format("{} is above 100", *s), "use a value from 0 to 100");
        else
          mem.swappiness = *s;
      }
      if (auto d = r.bool_member(*m, "disableOOMKiller", mp)) mem.disable_oom_killer = *d;
      (void)r.bool_member(*m, "useHierarchy", mp);
      (void)r.bool_member(*m, "checkBeforeUpdate", mp);
      if (mem.limit && *mem.limit == 0)
        r.problem(key_path(mp, "limit"), "0 bytes leaves no memory at all", "give a limit in bytes, or -1 for unlimited");
      else if (mem.limit && *mem.limit > 0 && *mem.limit < 256 * 1024)
        r.problem(key_path(mp, "limit"), fmt::format("{} bytes is too small to start any process", *mem.limit),
                  "give at least 256 KiB (262144)");
      if (mem.limit && mem.swap && *mem.limit > 0 && *mem.swap > 0 && *mem.swap < *mem.limit)
        r.problem(key_path(mp, "swap"),
                  fmt::format("memory+swap limit {} is below the memory limit {}", *mem.swap, *mem.limit),
                  "swap is the total of memory and swap; make it at least the memory limit");
      res.memory = mem;
    }
  }
  if (const json* c = r.member(j, "cpu")) {
    std::string cp = key_path(path, "cpu");
    if (r.expect_object(*c, cp)) {
      CpuResources cpu;
      if (auto v = r.uint64_member(*c, "shares", cp)) cpu.shares = *v;
      if (auto v = r.int_member<int64_t>(*c, "quota", cp)) cpu.quota = *v;
      if (auto v = r.uint64_member(*c, "burst", cp)) cpu.burst = *v;
      if (auto v = r.uint64_member(*c, "period", cp)) {
        if (*v != 0 && (*v < 1000 || *v > 1000000))
          r.problem(key_path(cp, "period"), fmt::format("{} microseconds is out of range", *v),
                    "the kernel accepts a period from 1000 to 1000000 microseconds");
        else
          cpu.period = *v;
      }
      if (auto v = r.int_member<int64_t>(*c, "realtimeRuntime", cp)) cpu.realtime_runtime = *v;
      if (auto v = r.uint64_member(*c, "realtimePeriod", cp)) cpu.realtime_period = *v;
      if (auto v = r.string_member(*c, "cpus", cp)) {
        if (!v->empty() && !valid_cpu_list(*v))
          r.problem(key_path(cp, "cpus"), fmt::format("\"{}\" is not a CPU list", *v), "write it like \"0-3,5\"");
        else
          cpu.cpus = *v;
      }
      if (auto v = r.string_member(*c, "mems", cp)) {
        if (!v->empty() && !valid_cpu_list(*v))
          r.problem(key_path(cp, "mems"), fmt::format("\"{}\" is not a memory node list", *v), "write it like \"0\"");
        else
          cpu.mems = *v;
      }
      if (auto v = r.int_member<int64_t>(*c, "idle", cp, 0, 1)) cpu.idle = *v;
      if (cpu.quota && *cpu.quota > 0 && *cpu.quota < 1000)
        r.problem(key_path(cp, "quota"), fmt::format("{} microseconds is below the kernel's minimum", *cpu.quota),
                  "give at least 1000, or -1 for no quota");
      res.cpu = cpu;
    }
  }
  if (const json* p = r.member(j, "pids")) {
    std::string pp = key_path(path, "pids");
    if (r.expect_object(*p, pp)) {
      if (auto v = r.int_member<int64_t>(*p, "limit", pp)) {
        if (*v == 0 || *v < -1)
          r.problem(key_path(pp, "limit"), fmt::format("{} would not even allow the container's first process", *v),
                    "give a positive number of processes, or -1 for unlimited");
        else
          res.pids_limit = *v;
      } else if (!r.member(*p, "limit")) {
        r.problem(key_path(pp, "limit"), "is required", "give the maximum number of processes, or -1");
      }
    }
  }
  if (const json* b = r.member(j, "blockIO")) {
    std::string bp = key_path(path, "blockIO");
    if (r.expect_object(*b, bp)) {
      BlockIoResources blk;
      if (auto w = r.int_member<uint16_t>(*b, "weight", bp, 10, 1000)) blk.weight = *w;
      if (auto w = r.int_member<uint16_t>(*b, "leafWeight", bp, 10, 1000)) blk.leaf_weight = *w;
      blk.weight_device = parse_blkio_list(r, *b, "weightDevice", bp, false);
      blk.throttle_read_bps = parse_blkio_list(r, *b, "throttleReadBpsDevice", bp, true);
      blk.throttle_write_bps = parse_blkio_list(r, *b, "throttleWriteBpsDevice", bp, true);
      blk.throttle_read_iops = parse_blkio_list(r, *b, "throttleReadIOPSDevice", bp, true);
      blk.throttle_write_iops = parse_blkio_list(r, *b, "throttleWriteIOPSDevice", bp, true);
      res.block_io = std::move(blk);
    }
  }
  if (const json* h = r.member(j, "hugepageLimits")) {
    std::string hp = key_path(path, "hugepageLimits");
    if (r.expect_array(*h, hp) && !h->empty())
      r.problem(hp, "hugepage limits are not supported yet", "remove linux.resources.hugepageLimits");
  }
  if (const json* n = r.member(j, "network")) {
    std::string np = key_path(path, "network");
    if (r.expect_object(*n, np) && !n->empty())
      r.problem(np, "network classID/priorities are not supported yet", "remove linux.resources.network");
  }
  if (const json* rd = r.member(j, "rdma")) {
    std::string rp = key_path(path, "rdma");
    if (r.expect_object(*rd, rp) && !rd->empty())
      r.problem(rp, "RDMA limits are not supported yet", "remove linux.resources.rdma");
  }
  res.unified = r.string_map(j, "unified", path);
  for (const auto& [k, v] : res.unified) {
    if (k.find('/') != std::string::npos || k.find('.') == std::string::npos || k.rfind("cgroup.", 0) == 0)
      r.problem(key_path(key_path(path, "unified"), k), fmt::format("\"{}\" is not a controller file", k),
                "name a cgroup v2 interface file such as \"memory.high\"");
  }
}

std::optional<SeccompAction> seccomp_action(std::string_view s) {
  static const std::pair<std::string_view, SeccompAction> t[] = {
      {"SCMP_ACT_KILL", SeccompAction::Kill},           {"SCMP_ACT_KILL_PROCESS", SeccompAction::KillProcess},
      {"SCMP_ACT_KILL_THREAD", SeccompAction::KillThread}, {"SCMP_ACT_TRAP", SeccompAction::Trap},
      {"SCMP_ACT_ERRNO", SeccompAction::Errno},         {"SCMP_ACT_TRACE", SeccompAction::Trace},
      {"SCMP_ACT_ALLOW", SeccompAction::Allow},         {"SCMP_ACT_LOG", SeccompAction::Log},
      {"SCMP_ACT_NOTIFY", SeccompAction::Notify},
  };
  for (auto& [n, a] : t)
    if (n == s) return a;
  return std::nullopt;
}

std::optional<SeccompOp> seccomp_op(std::string_view s) {
  static const std::pair<std::string_view, SeccompOp> t[] = {
      {"SCMP_CMP_NE", SeccompOp::NotEqual},     {"SCMP_CMP_LT", SeccompOp::LessThan},
      {"SCMP_CMP_LE", SeccompOp::LessEqual},    {"SCMP_CMP_EQ", SeccompOp::EqualTo},
      {"SCMP_CMP_GE", SeccompOp::GreaterEqual}, {"SCMP_CMP_GT", SeccompOp::GreaterThan},
      {"SCMP_CMP_MASKED_EQ", SeccompOp::MaskedEqual},
  };
  for (auto& [n, o] : t)
    if (n == s) return o;
  return std::nullopt;
}

void parse_seccomp(Reader& r, const json& j, const std::string& path, Seccomp& sc) {
  if (!r.expect_object(j, path)) return;
  const char* action_hint = "use one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
                            "SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG";
  if (auto a = r.string_member(j, "defaultAction", path)) {
    auto act = seccomp_action(*a);
    if (!act) r.problem(key_path(path, "defaultAction"), fmt::format("unknown action \"{}\"", *a), action_hint);
    else if (*act == SeccompAction::Notify)
      r.problem(key_path(path, "defaultAction"), "SCMP_ACT_NOTIFY is not supported yet", action_hint);
    else sc.default_action = *act;
  } else if (!r.member(j, "defaultAction")) {
    r.problem(key_path(path, "defaultAction"), "is required", "e.g. \"SCMP_ACT_ERRNO\"");
  }
  if (auto e = r.int_member<uint32_t>(j, "defaultErrnoRet", path)) sc.default_errno_ret = *e;
  sc.architectures = r.string_array(j, "architectures", path);
  for (size_t i = 0; i < sc.architectures.size(); ++i)
    if (sc.architectures[i].rfind("SCMP_ARCH_", 0) != 0)
      r.problem(index_path(key_path(path, "architectures"), i),
                fmt::format("\"{}\" is not an architecture name", sc.architectures[i]), "e.g. \"SCMP_ARCH_X86_64\"");
  sc.flags = r.string_array(j, "flags", path);
  for (size_t i = 0; i < sc.flags.size(); ++i) {
    static const std::set<std::string> known = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
    if (!known.count(sc.flags[i]))
      r.problem(index_path(key_path(path, "flags"), i), fmt::format("unknown seccomp flag \"{}\"", sc.flags[i]),
                "use SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW or SECCOMP_FILTER_FLAG_TSYNC");
  }
  if (r.member(j, "listenerPath"))
    r.problem(key_path(path, "listenerPath"), "seccomp notification listeners are not supported yet",
              "remove listenerPath and SCMP_ACT_NOTIFY rules");
  const json* calls = r.member(j, "syscalls");
  if (!calls) return;
  std::string cp = key_path(path, "syscalls");
  if (!r.expect_array(*calls, cp)) return;
  for (size_t i = 0; i < calls->size(); ++i) {
    std::string ip = index_path(cp, i);
    const json& e = (*calls)[i];
    if (!r.expect_object(e, ip)) continue;
    SeccompRule rule;
    rule.names = r.string_array(e, "names", ip);
    if (!r.member(e, "names")) r.problem(key_path(ip, "names"), "is required", "list the system calls, e.g. [\"mount\"]");
    else if (rule.names.empty() && r.member(e, "names")->is_array())
      r.problem(key_path(ip, "names"), "is empty", "list at least one system call");
    if (auto a = r.string_member(e, "action", ip)) {
      auto act = seccomp_action(*a);
      if (!act) r.problem(key_path(ip, "action"), fmt::format("unknown action \"{}\"", *a), action_hint);
      else if (*act == SeccompAction::Notify)
        r.problem(key_path(ip, "action"), "SCMP_ACT_NOTIFY is not supported yet", action_hint);
      else rule.action = *act;
    } else if (!r.member(e, "action")) {
      r.problem(key_path(ip, "action"), "is required", "e.g. \"SCMP_ACT_ALLOW\"");
    }
    if (auto er = r.int_member<uint32_t>(e, "errnoRet", ip)) rule.errno_ret = *er;
    if (const json* args = r.member(e, "args")) {
      std::string ap = key_path(ip, "args");
      if (r.expect_array(*args, ap)) {
        for (size_t k = 0; k < args->size(); ++k) {
          std::string kp = index_path(ap, k);
          const json& a = (*args)[k];
          if (!r.expect_object(a, kp)) continue;
          SeccompArg arg;
          if (auto idx = r.int_member<unsigned>(a, "index", kp, 0, 5)) arg.index = *idx;
          else if (!r.member(a, "index")) r.problem(key_path(kp, "index"), "is required", "0 to 5");
          if (auto v = r.uint64_member(a, "value", kp)) arg.value = *v;
          else if (!r.member(a, "value")) r.problem(key_path(kp, "value"), "is required");
          if (auto v = r.uint64_member(a, "valueTwo", kp)) arg.value_two = *v;
          if (auto op = r.string_member(a, "op", kp)) {
            auto o = seccomp_op(*op);
            if (!o)
              r.problem(key_path(kp, "op"), fmt::format("unknown operator \"{}\"", *op),
                        "use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or "
                        "SCMP_CMP_MASKED_EQ");
            else
              arg.op = *o;
          } else if (!r.member(a, "op")) {
            r.problem(key_path(kp, "op"), "is required", "e.g. \"SCMP_CMP_EQ\"");
          }
          rule.args.push_back(arg);
        }
      }
    }
    sc.syscalls.push_back(std::move(rule));
  }
}

std::optional<NamespaceType> namespace_type(std::string_view s) {
  static const std::pair<std::string_view, NamespaceType> t[] = {
      {"pid", NamespaceType::Pid}, {"network", NamespaceType::Network}, {"mount", NamespaceType::Mount},
      {"ipc", NamespaceType::Ipc}, {"uts", NamespaceType::Uts},         {"user", NamespaceType::User},
      {"cgroup", NamespaceType::Cgroup}, {"time", NamespaceType::Time},
  };
  for (auto& [n, v] : t)
    if (n == s) return v;
  return std::nullopt;
}

void parse_linux(Reader& r, const json& j, const std::string& path, LinuxSpec& l) {
  if (!r.expect_object(j, path)) return;
  if (const json* nss = r.member(j, "namespaces")) {
    std::string np = key_path(path, "namespaces");
    if (r.expect_array(*nss, np)) {
      std::set<NamespaceType> seen;
      for (size_t i = 0; i < nss->size(); ++i) {
        std::string ip = index_path(np, i);
        const json& e = (*nss)[i];
        if (!r.expect_object(e, ip)) continue;
        Namespace ns;
        auto t = r.string_member(e, "type", ip);
        if (!t) {
          if (!r.member(e, "type")) r.problem(key_path(ip, "type"), "is required", "e.g. \"pid\"");
          continue;
        }
        auto type = namespace_type(*t);
        if (!type) {
          r.problem(key_path(ip, "type"), fmt::format("unknown namespace type \"{}\"", *t),
                    "use pid, network, mount, ipc, uts, user, cgroup or time");
          continue;
        }
        ns.type = *type;
        if (*type == NamespaceType::Time)
          r.problem(key_path(ip, "type"), "time namespaces are not supported yet", "remove this namespace");
        if (auto p = r.string_member(e, "path", ip)) {
          ns.path = *p;
          if (!is_absolute(*p))
            r.problem(key_path(ip, "path"), fmt::format("\"{}\" is not an absolute path", *p),
                      "give the namespace file to join, e.g. /proc/1234/ns/net or /run/netns/name");
        }
        if (!seen.insert(*type).second)
          r.problem(key_path(ip, "type"), fmt::format("the {} namespace is listed twice", *t), "keep one entry per type");
        l.namespaces.push_back(std::move(ns));
      }
    }
  }
  l.uid_mappings = parse_mappings(r, j, "uidMappings", path);
  l.gid_mappings = parse_mappings(r, j, "gidMappings", path);
  if (const json* d = r.member(j, "devices")) parse_devices(r, *d, key_path(path, "devices"), l.devices);
  if (auto cg = r.string_member(j, "cgroupsPath", path)) {
    l.cgroups_path = *cg;
    if (has_dotdot(*cg))
      r.problem(key_path(path, "cgroupsPath"), fmt::format("\"{}\" contains \"..\"", *cg),
                "give a path below the cgroup root, e.g. \"/foundry/web\"");
  }
  if (const json* res = r.member(j, "resources")) {
    Resources resources;
    parse_resources(r, *res, key_path(path, "resources"), resources);
    l.resources = std::move(resources);
  }
  if (auto p = r.string_member(j, "rootfsPropagation", path)) {
    static const std::set<std::string> ok = {"private", "rprivate", "slave", "rslave",
                                             "shared",  "rshared",  "unbindable", "runbindable"};
    if (!p->empty() && !ok.count(*p))
      r.problem(key_path(path, "rootfsPropagation"), fmt::format("\"{}\" is not a propagation mode", *p),
                "use private, rprivate, slave, rslave, shared, rshared, unbindable or runbindable");
    else
      l.rootfs_propagation = *p;
  }
  if (const json* s = r.member(j, "seccomp")) {
    Seccomp sc;
    parse_seccomp(r, *s, key_path(path, "seccomp"), sc);
    l.seccomp = std::move(sc);
  }
  l.sysctl = r.string_map(j, "sysctl", path);
  l.masked_paths = r.string_array(j, "maskedPaths", path);
  l.readonly_paths = r.string_array(j, "readonlyPaths", path);
  auto check_paths = [&](std::string_view key, const std::vector<std::string>& v) {
    for (size_t i = 0; i < v.size(); ++i)
      if (!is_absolute(v[i]))
        r.problem(index_path(key_path(path, key), i), fmt::format("\"{}\" is not an absolute path", v[i]),
                  "paths are inside the container, e.g. \"/proc/kcore\"");
  };
  check_paths("maskedPaths", l.masked_paths);
  check_paths("readonlyPaths", l.readonly_paths);
  if (auto ml = r.string_member(j, "mountLabel", path)) l.mount_label = *ml;
  if (const json* rdt = r.member(j, "intelRdt"))
    if (r.expect_object(*rdt, key_path(path, "intelRdt")) && !rdt->empty())
      r.problem(key_path(path, "intelRdt"), "Intel RDT is not supported", "remove linux.intelRdt");
  if (const json* pers = r.member(j, "personality"))
    if (r.expect_object(*pers, key_path(path, "personality")) && !pers->empty())
      r.problem(key_path(path, "personality"), "personality is not supported yet", "remove linux.personality");
}

// Rules across sections: these are what runc and the spec require of a
// runnable Linux container.
void cross_checks(Reader& r, const Spec& s) {
  const LinuxSpec& l = s.linux_spec;
  bool userns = l.find_namespace(NamespaceType::User) != nullptr;
  bool new_userns = l.new_namespace(NamespaceType::User);
  if (new_userns) {
    if (l.uid_mappings.empty())
      r.problem("linux.uidMappings", "a new user namespace needs uid mappings",
                "add e.g. [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]");
    if (l.gid_mappings.empty())
      r.problem("linux.gidMappings", "a new user namespace needs gid mappings",
                "add e.g. [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]");
  } else if (!l.uid_mappings.empty() || !l.gid_mappings.empty()) {
    r.problem(l.uid_mappings.empty() ? "linux.gidMappings" : "linux.uidMappings",
              userns ? "mappings cannot be applied to a user namespace that is joined by path"
                     : "id mappings need a user namespace",
              userns ? "remove the mappings or the namespace path" : "add {\"type\": \"user\"} to linux.namespaces");
  }
  auto mapped = [](const std::vector<IdMapping>& maps, uint32_t id) {
    for (const auto& m : maps)
      if (id >= m.container_id && id - m.container_id < m.size) return true;
    return false;
  };
  if (new_userns && s.process) {
    if (!l.uid_mappings.empty() && !mapped(l.uid_mappings, s.process->user.uid))
      r.problem("process.user.uid", fmt::format("uid {} is not mapped into the user namespace", s.process->user.uid),
                "add a linux.uidMappings entry that covers it");
    if (!l.gid_mappings.empty() && !mapped(l.gid_mappings, s.process->user.gid))
      r.problem("process.user.gid", fmt::format("gid {} is not mapped into the user namespace", s.process->user.gid),
                "add a linux.gidMappings entry that covers it");
  }
  if (!s.hostname.empty() && !l.new_namespace(NamespaceType::Uts))
    r.problem("hostname", "setting the hostname needs a new UTS namespace",
              "add {\"type\": \"uts\"} to linux.namespaces, or remove hostname");
  if (!s.domainname.empty() && !l.new_namespace(NamespaceType::Uts))
    r.problem("domainname", "setting the domain name needs a new UTS namespace",
              "add {\"type\": \"uts\"} to linux.namespaces, or remove domainname");
  if (!l.new_namespace(NamespaceType::Mount) && !l.find_namespace(NamespaceType::Mount))
    r.problem("linux.namespaces", "a container needs a mount namespace",
              "add {\"type\": \"mount\"} to linux.namespaces");
  // Namespaced sysctls only: a sysctl outside a namespace the container owns
  // would change the host.
  for (const auto& [k, v] : l.sysctl) {
    std::string p = "linux.sysctl." + k;
    bool ipc = k.rfind("kernel.msg", 0) == 0 || k.rfind("kernel.sem", 0) == 0 || k.rfind("kernel.shm", 0) == 0 ||
               k.rfind("fs.mqueue.", 0) == 0;
    // A namespace joined by path is the container's too; create() refuses a
    // path that turns out to be the runtime's own namespace.
    if (ipc) {
      if (!l.find_namespace(NamespaceType::Ipc))
        r.problem(p, "this sysctl belongs to the IPC namespace, which the container shares with the host",
                  "add {\"type\": \"ipc\"} to linux.namespaces");
    } else if (k.rfind("net.", 0) == 0) {
      if (!l.find_namespace(NamespaceType::Network))
        r.problem(p, "this sysctl belongs to the network namespace, which the container shares with the host",
                  "add {\"type\": \"network\"} to linux.namespaces");
    } else if (k == "kernel.hostname" || k == "kernel.domainname") {
      r.problem(p, "set the host or domain name with the hostname/domainname fields", "remove this sysctl");
    } else {
      r.problem(p, "is not a namespaced sysctl; it would change the host",
                "only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.* can be set per container");
    }
  }
}

}  // namespace

std::optional<int> capability_from_name(std::string_view name) {
  std::string up;
  for (char c : name) up.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
  for (size_t i = 0; i < std::size(kCapNames); ++i)
    if (up == kCapNames[i]) return static_cast<int>(i);
  return std::nullopt;
}

std::string capability_name(int cap) {
  if (cap >= 0 && static_cast<size_t>(cap) < std::size(kCapNames)) return kCapNames[cap];
  return fmt::format("CAP_{}", cap);
}

std::optional<int> rlimit_from_name(std::string_view name) {
  for (const auto& r : kRlimits)
    if (name == r.name) return r.resource;
  return std::nullopt;
}

MountFlags parse_mount_options(const std::vector<std::string>& options) {
  struct Opt {
    const char* name;
    bool clear;
    unsigned long flag;
  };
  static const Opt table[] = {
      {"defaults", false, 0},       {"ro", false, MS_RDONLY},        {"rw", true, MS_RDONLY},
      {"suid", true, MS_NOSUID},    {"nosuid", false, MS_NOSUID},    {"dev", true, MS_NODEV},
      {"nodev", false, MS_NODEV},   {"exec", true, MS_NOEXEC},       {"noexec", false, MS_NOEXEC},
      {"sync", false, MS_SYNCHRONOUS}, {"async", true, MS_SYNCHRONOUS}, {"dirsync", false, MS_DIRSYNC},
      {"remount", false, MS_REMOUNT}, {"mand", false, MS_MANDLOCK},  {"nomand", true, MS_MANDLOCK},
      {"atime", true, MS_NOATIME},  {"noatime", false, MS_NOATIME},  {"diratime", true, MS_NODIRATIME},
      {"nodiratime", false, MS_NODIRATIME}, {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
      {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
      {"lazytime", false, MS_LAZYTIME}, {"nolazytime", true, MS_LAZYTIME}, {"silent", false, MS_SILENT},
      {"loud", true, MS_SILENT},
  };
  static const std::pair<const char*, unsigned long> prop[] = {
      {"private", MS_PRIVATE},          {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},            {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},              {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE},    {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  MountFlags f;
  for (const auto& o : options) {
    if (o == "bind") {
      f.bind = true;
      continue;
    }
    if (o == "rbind") {
      f.bind = true;
      f.recursive_bind = true;
      continue;
    }
    bool known = false;
    for (const auto& t : table) {
      if (o == t.name) {
        if (t.clear) {
          f.set &= ~t.flag;
          f.clear |= t.flag;
        } else {
          f.set |= t.flag;
          f.clear &= ~t.flag;
        }
        known = true;
        break;
      }
    }
    if (known) continue;
    for (const auto& [n, v] : prop) {
      if (o == n) {
        f.propagation = v;
        known = true;
        break;
      }
    }
    if (known) continue;
    // Recursive attributes (rro, rnosuid, ...) and idmap are mount_setattr(2)
    // features; tmpcopyup is crun's. Neither is filesystem data: drop them
    // rather than pass them to the kernel as options it would reject.
    if (o == "idmap" || o == "ridmap" || o == "tmpcopyup" || o == "nocopyup" || o == "copyup") continue;
    if (!f.data.empty()) f.data += ',';
    f.data += o;
  }
  return f;
}

namespace {

// A JSON syntax error as an Error with line:column (nlohmann reports the
// byte offset; editors want line and column).
Error syntax_error(std::string_view json_text, const std::string& source, const json::parse_error& e,
                   const char* what_it_must_be) {
  size_t off = e.byte > 0 ? e.byte - 1 : 0;
  int line = 1, col = 1;
  for (size_t i = 0; i < off && i < json_text.size(); ++i) {
    if (json_text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  std::string what = e.what();
  // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while parsing ..."
  auto pos = what.find("syntax error");
  if (pos == std::string::npos) pos = what.find(": ") == std::string::npos ? 0 : what.find(": ") + 2;
  Diagnostic d{source, line, col, "(document)", what.substr(pos), what_it_must_be};
  return Error(ErrorKind::Config, fmt::format("{} is not valid JSON (line {}, column {})", source, line, col))
      .add_diagnostic(std::move(d))
      .with_hint("check the quoting and commas near that position");
}

Error validation_error(const Reader& r, const std::string& source) {
  const auto& ds = r.diagnostics();
  Error e(ErrorKind::Validation,
          ds.size() == 1 ? fmt::format("{}: {}: {}", source, ds[0].field, ds[0].message)
                         : fmt::format("{} has {} problems; the first: {}: {}", source, ds.size(), ds[0].field,
                                       ds[0].message));
  for (const auto& d : ds) e.add_diagnostic(d);
  if (!ds[0].hint.empty()) e.with_hint(ds[0].hint);
  return e;
}

}  // namespace

Result<Process> parse_process_spec(std::string_view json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return fail(syntax_error(json_text, source, e, "a process description must be valid JSON"));
  }
  Reader r(source);
  Process p;
  // Field paths as in config.json: the same object sits at "process" there.
  parse_process(r, doc, "process", p);
  if (r.diagnostics().empty() && p.args.empty())
    r.problem("process.args", "is required", "give the program and its arguments, e.g. [\"sh\", \"-c\", \"echo hi\"]");
  if (!r.diagnostics().empty()) return fail(validation_error(r, source));
  return p;
}

Result<Spec> parse_spec(std::string_view json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return fail(syntax_error(json_text, source, e, "config.json must be valid JSON"));
  }

  Reader r(source);
  Spec s;
  if (!doc.is_object()) {
    r.problem("", fmt::format("the document must be a JSON object, found {}", type_name(doc)));
  } else {
    if (auto v = r.string_member(doc, "ociVersion", "")) {
      s.oci_version = *v;
      // Any 1.x release: the format is backwards compatible within a major.
      bool ok = v->size() >= 5 && v->rfind("1.", 0) == 0 && (*v)[2] >= '0' && (*v)[2] <= '9';
      if (!ok)
        r.problem("ociVersion", fmt::format("\"{}\" is not an OCI runtime-spec 1.x version", *v),
                  fmt::format("use a 1.x.y version such as \"{}\"", kOciVersion));
    } else if (!r.member(doc, "ociVersion")) {
      r.problem("ociVersion", "is required", fmt::format("add \"ociVersion\": \"{}\"", kOciVersion));
    }
    if (const json* p = r.member(doc, "process")) {
      Process proc;
      parse_process(r, *p, "process", proc);
      s.process = std::move(proc);
    }
    if (const json* root = r.member(doc, "root")) {
      if (r.expect_object(*root, "root")) {
        Root rt;
        if (auto p = r.string_member(*root, "path", "root")) {
          rt.path = *p;
          if (p->empty()) r.problem("root.path", "is empty", "name the root filesystem directory, e.g. \"rootfs\"");
        } else if (!r.member(*root, "path")) {
          r.problem("root.path", "is required", "name the root filesystem directory, e.g. \"rootfs\"");
        }
        if (auto ro = r.bool_member(*root, "readonly", "root")) rt.readonly = *ro;
        s.root = rt;
      }
    } else {
      r.problem("root", "is required on Linux", "add \"root\": {\"path\": \"rootfs\"}");
    }
    if (auto h = r.string_member(doc, "hostname", "")) s.hostname = *h;
    if (s.hostname.size() > 64)
      r.problem("hostname", "is longer than 64 characters", "the kernel limits host names to 64 bytes");
    if (auto d = r.string_member(doc, "domainname", "")) s.domainname = *d;
    if (const json* m = r.member(doc, "mounts")) parse_mounts(r, *m, "mounts", s.mounts);
    if (const json* h = r.member(doc, "hooks")) parse_hooks(r, *h, "hooks", s.hooks);
    s.annotations = r.string_map(doc, "annotations", "");
    if (const json* l = r.member(doc, "linux")) parse_linux(r, *l, "linux", s.linux_spec);
    else r.problem("linux", "is required for a Linux container", "add \"linux\": {\"namespaces\": [...]}");
    cross_checks(r, s);
  }
  if (!r.diagnostics().empty()) return fail(validation_error(r, source));
  return s;
}

Result<Spec> load_spec(const std::string& bundle_dir) {
  std::string path = bundle_dir + "/config.json";
  auto text = read_file(path);
  if (!text) {
    Error e = std::move(text).error();
    if (e.sys_errno() == ENOENT)
      return fail(Error(ErrorKind::Config, fmt::format("bundle {} has no config.json", bundle_dir))
                      .with_errno(ENOENT)
                      .with_hint("create one with `foundry-oci spec` in the bundle directory"));
    return fail(std::move(e).wrap(fmt::format("read the bundle configuration of {}", bundle_dir)));
  }
  return parse_spec(*text, path);
}

}  // namespace foundry::container
