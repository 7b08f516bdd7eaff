#include "foundry/container/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"

namespace foundry::container {

using json = nlohmann::json;

namespace {

const std::set<std::string>& v1_controller_names() {
  static const std::set<std::string> s = {"cpu",     "cpuacct",    "cpuset",  "memory", "devices",
                                          "freezer", "net_cls",    "net_prio", "blkio", "perf_event",
                                          "hugetlb", "pids",       "rdma",    "misc"};
  return s;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.size() - i >= 4 && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// Writes one cgroup interface file. The kernel reports a rejected value as
// EINVAL/EBUSY from write(2), so open and write are separate errors.
Status write_cg(const std::string& dir, const std::string& file, const std::string& value,
                const std::string& field = "", int extra_flags = 0) {
  std::string path = dir + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | extra_flags, 0644));
  if (!fd) {
    Error e = sys_error(ErrorKind::Operation, fmt::format("cannot open {}", path));
    if (!field.empty()) e.wrap(fmt::format("apply {}", field));
    if (e.sys_errno() == ENOENT) e.with_hint("this kernel does not offer that cgroup file; remove the setting");
    return fail(std::move(e));
  }
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0 || static_cast<size_t>(n) != value.size()) {
    Error e = sys_error(ErrorKind::Operation, fmt::format("cannot write \"{}\" to {}", value, path));
    if (!field.empty()) e.wrap(fmt::format("apply {}", field));
    return fail(std::move(e));
  }
  return ok();
}

std::optional<std::string> read_cg(const std::string& dir, const std::string& file) {
  auto r = read_file(dir + "/" + file);
  if (!r) return std::nullopt;
  return *r;
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Path of `abs` (a cgroup path as /proc/self/cgroup shows it) inside a
// hierarchy mounted with `root` at `mountpoint`.
std::optional<std::string> dir_in_hierarchy(const CgroupHierarchy& h, const std::string& abs) {
  std::string root = h.root == "/" ? "" : h.root;
  if (!root.empty()) {
    if (abs.rfind(root, 0) != 0 || (abs.size() > root.size() && abs[root.size()] != '/')) return std::nullopt;
    return h.mountpoint + abs.substr(root.size());
  }
  return h.mountpoint + abs;
}

std::string normalize(const std::string& p) {
  std::vector<std::string> parts;
  for (auto& s : split(p, '/')) {
    if (s.empty() || s == ".") continue;
    parts.push_back(s);
  }
  return "/" + join(parts, "/");
}

}  // namespace

std::string_view describe(CgroupLayout l) {
  switch (l) {
    case CgroupLayout::Unified: return "unified (cgroup v2)";
    case CgroupLayout::Legacy: return "legacy (cgroup v1)";
    case CgroupLayout::Hybrid: return "hybrid (cgroup v1 controllers, cgroup v2 unified mount)";
  }
  return "?";
}

std::string_view to_string(CgroupLayout l) {
  switch (l) {
    case CgroupLayout::Unified: return "unified";
    case CgroupLayout::Legacy: return "legacy";
    case CgroupLayout::Hybrid: return "hybrid";
  }
  return "?";
}

const CgroupHierarchy* CgroupSystem::hierarchy_for(std::string_view controller) const {
  if (layout != CgroupLayout::Unified) {
    for (const auto& h : v1)
      if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end()) return &h;
    return nullptr;
  }
  if (unified &&
      std::find(unified->controllers.begin(), unified->controllers.end(), controller) != unified->controllers.end())
    return &*unified;
  return nullptr;
}

bool CgroupSystem::has_controller(std::string_view controller) const { return hierarchy_for(controller) != nullptr; }

std::string CgroupSystem::summary() const {
  std::string out(describe(layout));
  std::vector<std::string> v1c;
  for (const auto& h : v1)
    for (const auto& c : h.controllers) v1c.push_back(c);
  std::sort(v1c.begin(), v1c.end());
  if (!v1c.empty()) out += "; v1 controllers: " + join(v1c, ", ");
  if (unified)
    out += fmt::format("; v2 at {} with controllers: {}", unified->mountpoint,
                       unified->controllers.empty() ? "(none)" : join(unified->controllers, ", "));
  return out;
}

CgroupSystem parse_cgroup_system(std::string_view mountinfo, std::string_view proc_self_cgroup,
                                 const std::string& v2_controllers) {
  CgroupSystem sys;
  std::set<std::string> seen_sets;
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto left = split(line.substr(0, dash), ' ');
    auto right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    const std::string& fstype = right[0];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupHierarchy h;
    h.root = unescape_mountinfo(left[3]);
    h.mountpoint = unescape_mountinfo(left[4]);
    if (fstype == "cgroup2") {
      h.v2 = true;
      if (!sys.unified || h.mountpoint.rfind("/sys/fs/cgroup", 0) == 0) {
        for (auto& c : split(trim(v2_controllers), ' '))
          if (!c.empty()) h.controllers.push_back(c);
        sys.unified = h;
      }
      continue;
    }
    for (auto& opt : split(right[2], ','))
      if (v1_controller_names().count(opt)) h.controllers.push_back(opt);
    if (h.controllers.empty()) continue;  // named hierarchies (name=systemd) carry no resources
    std::string key = join(h.controllers, ",");
    if (!seen_sets.insert(key).second) continue;  // a second mount of the same hierarchy
    sys.v1.push_back(std::move(h));
  }
  if (sys.v1.empty()) {
    sys.layout = CgroupLayout::Unified;
  } else {
    sys.layout = sys.unified ? CgroupLayout::Hybrid : CgroupLayout::Legacy;
  }
  std::istringstream cin{std::string(proc_self_cgroup)};
  while (std::getline(cin, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (ctrls.empty()) {
      sys.own_paths[""] = path;
      continue;
    }
    for (auto& c : split(ctrls, ',')) sys.own_paths[c] = path;
  }
  return sys;
}

Result<CgroupSystem> detect_cgroups() {
  auto mi = FOUNDRY_TRY_CTX(read_file("/proc/self/mountinfo"), "detect the cgroup layout");
  auto self = read_file("/proc/self/cgroup");
  // cgroup.controllers of the v2 mount: find it first with an empty list.
  CgroupSystem probe = parse_cgroup_system(mi, self ? *self : "", "");
  std::string v2c;
  if (probe.unified) {
    if (auto c = read_cg(probe.unified->mountpoint, "cgroup.controllers")) v2c = *c;
  }
  CgroupSystem sys = parse_cgroup_system(mi, self ? *self : "", v2c);
  if (sys.v1.empty() && !sys.unified)
    return fail(Error(ErrorKind::Operation, "no cgroup filesystem is mounted")
                    .with_hint("mount cgroup2 on /sys/fs/cgroup (or the v1 controllers below it)"));
  spdlog::debug("cgroups: {}", sys.summary());
  return sys;
}

const Cgroup::Dir* Cgroup::dir_for(std::string_view controller) const {
  for (const auto& d : dirs_) {
    if (d.v2) {
      if (layout_ == CgroupLayout::Unified) return &d;
      continue;
    }
    for (auto& c : split(d.controllers, ','))
      if (c == controller) return &d;
  }
  return nullptr;
}

Result<Cgroup> Cgroup::create(const CgroupSystem& sys, const std::string& cgroups_path, const std::string& id) {
  Cgroup cg;
  cg.layout_ = sys.layout;
  bool relative = !cgroups_path.empty() && cgroups_path.front() != '/';
  std::string rel = cgroups_path.empty() ? "/foundry/" + id : cgroups_path;

  struct Target {
    const CgroupHierarchy* h;
    std::string dir;
  };
  std::vector<Target> targets;
  auto add_target = [&](const CgroupHierarchy& h, const std::string& own_key) -> Status {
    std::string abs = rel;
    if (relative) {
      auto it = sys.own_paths.find(own_key);
      std::string base = it == sys.own_paths.end() ? "/" : it->second;
      abs = base + "/" + rel;
    }
    abs = normalize(abs);
    auto dir = dir_in_hierarchy(h, abs);
    if (!dir)
      return fail(Error(ErrorKind::Validation,
                        fmt::format("cgroup path {} is outside the hierarchy mounted at {} (root {})", abs,
                                    h.mountpoint, h.root))
                      .with_hint("use a linux.cgroupsPath below the visible cgroup root"));
    if (cg.rel_.empty()) cg.rel_ = abs;
    targets.push_back({&h, *dir});
    return ok();
  };
  if (sys.layout == CgroupLayout::Unified) {
    if (!sys.unified) return fail(ErrorKind::Operation, "no cgroup2 mount found");
    FOUNDRY_TRY(add_target(*sys.unified, ""));
  } else {
    for (const auto& h : sys.v1) FOUNDRY_TRY(add_target(h, h.controllers.front()));
    if (sys.layout == CgroupLayout::Hybrid && sys.unified) FOUNDRY_TRY(add_target(*sys.unified, ""));
  }

  // Undo on failure: directories we made, deepest first.
  std::vector<std::string> made;
  auto undo = [&] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
  };

  for (const auto& t : targets) {
    const CgroupHierarchy& h = *t.h;
    bool cpuset = !h.v2 && std::find(h.controllers.begin(), h.controllers.end(), "cpuset") != h.controllers.end();
    // Walk from the mountpoint down, creating what is missing.
    std::string cur = h.mountpoint;
    std::string tail = t.dir.substr(h.mountpoint.size());
    auto parts = split(tail, '/');
    std::vector<std::string> comps;
    for (auto& p : parts)
      if (!p.empty()) comps.push_back(p);
    for (size_t i = 0; i < comps.size(); ++i) {
      std::string parent = cur;
      cur += "/" + comps[i];
      bool leaf = i + 1 == comps.size();
      if (h.v2 && sys.layout == CgroupLayout::Unified) {
        // Controllers must be enabled in the parent's subtree_control before
        // the child directory can use them.
        auto avail = read_cg(parent, "cgroup.controllers");
        auto enabled = read_cg(parent, "cgroup.subtree_control");
        if (avail) {
          std::string want;
          for (auto& c : split(trim(*avail), ' ')) {
            if (c != "memory" && c != "pids" && c != "cpu" && c != "cpuset" && c != "io") continue;
            bool on = false;
            if (enabled)
              for (auto& e : split(trim(*enabled), ' ')) on |= e == c;
            if (!on) want += (want.empty() ? "+" : " +") + c;
          }
          if (!want.empty()) {
            auto st = write_cg(parent, "cgroup.subtree_control", want);
            if (!st) spdlog::debug("cgroup: cannot enable {} in {}: {}", want, parent, st.error().to_string());
          }
        }
      }
      if (::mkdir(cur.c_str(), 0755) == 0) {
        made.push_back(cur);
        if (!leaf && std::find(cg.created_parents_.begin(), cg.created_parents_.end(), cur) == cg.created_parents_.end())
          cg.created_parents_.push_back(cur);
        if (cpuset) {
          // A new v1 cpuset group starts with no CPUs and no memory nodes
          // and refuses tasks until both are set: inherit the parent's.
          for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
            auto v = read_cg(parent, f);
            if (v && !trim(*v).empty()) {
              // O_CREAT: a no-op on cgroupfs, where the file always exists,
              // and what lets the unit tests use a plain directory tree.
              if (auto st = write_cg(cur, f, trim(*v), "", O_CREAT); !st) {
                undo();
                return fail(std::move(st).error().wrap(fmt::format("create cgroup {}", cur)));
              }
            }
          }
        }
      } else if (errno != EEXIST) {
        Error e = sys_error(ErrorKind::Operation, fmt::format("cannot create cgroup directory {}", cur));
        undo();
        return fail(std::move(e).with_hint(fmt::format("the {} hierarchy at {} must be writable (are you root?)",
                                                       h.v2 ? "cgroup2" : join(h.controllers, ","), h.mountpoint)));
      } else if (leaf) {
        // An existing leaf is fine only if it is empty: two containers in
        // one cgroup would kill each other on delete.
        auto procs = read_cg(cur, "cgroup.procs");
        if (procs && !trim(*procs).empty()) {
          undo();
          return fail(Error(ErrorKind::Validation, fmt::format("cgroup {} already has processes", cur))
                          .with_hint("give the container its own linux.cgroupsPath"));
        }
      }
    }
    cg.dirs_.push_back(Dir{h.v2 ? "" : join(h.controllers, ","), cur, h.v2});
  }
  return cg;
}

Status Cgroup::apply(const Resources& res) const {
  const std::string base = "linux.resources";
  if (const auto& m = res.memory) {
    const Dir* d = dir_for("memory");
    bool any = m->limit || m->reservation || m->swap || m->swappiness || m->disable_oom_killer || m->kernel_tcp;
    if (any && !d)
      return fail(Error(ErrorKind::Operation, "the memory controller is not available on this host")
                      .wrap(fmt::format("apply {}.memory", base))
                      .with_hint("enable the memory cgroup controller or remove linux.resources.memory"));
    if (d && !d->v2) {
      auto num = [](int64_t v) { return v < 0 ? std::string("-1") : std::to_string(v); };
      if (m->limit && m->swap) {
        // memsw must never be below the memory limit: order the two writes
        // so the pair stays valid whichever way the limits move.
        auto st = write_cg(d->path, "memory.limit_in_bytes", num(*m->limit), base + ".memory.limit");
        if (st) {
          FOUNDRY_TRY(write_cg(d->path, "memory.memsw.limit_in_bytes", num(*m->swap), base + ".memory.swap"));
        } else {
          FOUNDRY_TRY(write_cg(d->path, "memory.memsw.limit_in_bytes", num(*m->swap), base + ".memory.swap"));
          FOUNDRY_TRY(write_cg(d->path, "memory.limit_in_bytes", num(*m->limit), base + ".memory.limit"));
        }
      } else if (m->limit) {
        FOUNDRY_TRY(write_cg(d->path, "memory.limit_in_bytes", num(*m->limit), base + ".memory.limit"));
      } else if (m->swap) {
        FOUNDRY_TRY(write_cg(d->path, "memory.memsw.limit_in_bytes", num(*m->swap), base + ".memory.swap"));
      }
      if (m->reservation)
        FOUNDRY_TRY(write_cg(d->path, "memory.soft_limit_in_bytes", num(*m->reservation), base + ".memory.reservation"));
      if (m->kernel_tcp)
        FOUNDRY_TRY(write_cg(d->path, "memory.kmem.tcp.limit_in_bytes", num(*m->kernel_tcp), base + ".memory.kernelTCP"));
      if (m->swappiness)
        FOUNDRY_TRY(write_cg(d->path, "memory.swappiness", std::to_string(*m->swappiness), base + ".memory.swappiness"));
      if (m->disable_oom_killer)
        FOUNDRY_TRY(write_cg(d->path, "memory.oom_control", "1", base + ".memory.disableOOMKiller"));
      if (m->kernel) spdlog::debug("cgroup: linux.resources.memory.kernel is deprecated by the kernel; ignored");
    } else if (d) {
      auto num = [](int64_t v) { return v < 0 ? std::string("max") : std::to_string(v); };
      if (m->limit) FOUNDRY_TRY(write_cg(d->path, "memory.max", num(*m->limit), base + ".memory.limit"));
      if (m->swap) {
        // v1 swap is memory+swap; v2 swap.max is swap alone.
        std::string v = "max";
        if (*m->swap >= 0) {
          if (!m->limit || *m->limit < 0)
            return fail(Error(ErrorKind::Validation, "a swap limit needs a memory limit on cgroup v2")
                            .wrap(fmt::format("apply {}.memory.swap", base))
                            .with_hint("set linux.resources.memory.limit too"));
          v = std::to_string(*m->swap - *m->limit);
        }
        FOUNDRY_TRY(write_cg(d->path, "memory.swap.max", v, base + ".memory.swap"));
      }
      if (m->reservation)
        FOUNDRY_TRY(write_cg(d->path, "memory.low", num(*m->reservation), base + ".memory.reservation"));
      if (m->disable_oom_killer)
        return fail(Error(ErrorKind::Validation, "cgroup v2 cannot disable the OOM killer")
                        .wrap(fmt::format("apply {}.memory.disableOOMKiller", base)));
    }
  }
  if (const auto& c = res.cpu) {
    const Dir* d = dir_for("cpu");
    bool any_cpu = c->shares || c->quota || c->period || c->burst || c->realtime_period || c->realtime_runtime || c->idle;
    if (any_cpu && !d)
      return fail(Error(ErrorKind::Operation, "the cpu controller is not available on this host")
                      .wrap(fmt::format("apply {}.cpu", base)));
    if (d && !d->v2) {
      if (c->shares) FOUNDRY_TRY(write_cg(d->path, "cpu.shares", std::to_string(*c->shares), base + ".cpu.shares"));
      if (c->period)
        FOUNDRY_TRY(write_cg(d->path, "cpu.cfs_period_us", std::to_string(*c->period), base + ".cpu.period"));
      if (c->quota) FOUNDRY_TRY(write_cg(d->path, "cpu.cfs_quota_us", std::to_string(*c->quota), base + ".cpu.quota"));
      if (c->burst) FOUNDRY_TRY(write_cg(d->path, "cpu.cfs_burst_us", std::to_string(*c->burst), base + ".cpu.burst"));
      if (c->realtime_period)
        FOUNDRY_TRY(write_cg(d->path, "cpu.rt_period_us", std::to_string(*c->realtime_period), base + ".cpu.realtimePeriod"));
      if (c->realtime_runtime)
        FOUNDRY_TRY(
            write_cg(d->path, "cpu.rt_runtime_us", std::to_string(*c->realtime_runtime), base + ".cpu.realtimeRuntime"));
      if (c->idle) FOUNDRY_TRY(write_cg(d->path, "cpu.idle", std::to_string(*c->idle), base + ".cpu.idle"));
    } else if (d) {
      if (c->shares)
        FOUNDRY_TRY(write_cg(d->path, "cpu.weight", std::to_string(cpu_shares_to_weight(*c->shares)), base + ".cpu.shares"));
      if (c->quota || c->period) {
        std::string q = (!c->quota || *c->quota < 0) ? "max" : std::to_string(*c->quota);
        std::string p = c->period ? std::to_string(*c->period) : "100000";
        FOUNDRY_TRY(write_cg(d->path, "cpu.max", q + " " + p, base + ".cpu.quota"));
      }
      if (c->burst) FOUNDRY_TRY(write_cg(d->path, "cpu.max.burst", std::to_string(*c->burst), base + ".cpu.burst"));
      if (c->idle) FOUNDRY_TRY(write_cg(d->path, "cpu.idle", std::to_string(*c->idle), base + ".cpu.idle"));
      if (c->realtime_period || c->realtime_runtime)
        return fail(Error(ErrorKind::Validation, "cgroup v2 has no realtime CPU limits")
                        .wrap(fmt::format("apply {}.cpu.realtimeRuntime", base)));
    }
    if (!c->cpus.empty() || !c->mems.empty()) {
      const Dir* cs = dir_for("cpuset");
      if (!cs)
        return fail(Error(ErrorKind::Operation, "the cpuset controller is not available on this host")
                        .wrap(fmt::format("apply {}.cpu.cpus", base)));
      if (!c->cpus.empty()) FOUNDRY_TRY(write_cg(cs->path, "cpuset.cpus", c->cpus, base + ".cpu.cpus"));
      if (!c->mems.empty()) FOUNDRY_TRY(write_cg(cs->path, "cpuset.mems", c->mems, base + ".cpu.mems"));
    }
  }
  if (res.pids_limit) {
    const Dir* d = dir_for("pids");
    if (!d)
      return fail(Error(ErrorKind::Operation, "the pids controller is not available on this host")
                      .wrap(fmt::format("apply {}.pids.limit", base)));
    std::string v = *res.pids_limit < 0 ? "max" : std::to_string(*res.pids_limit);
    FOUNDRY_TRY(write_cg(d->path, "pids.max", v, base + ".pids.limit"));
  }
  if (const auto& b = res.block_io) {
    const Dir* d = dir_for(layout_ == CgroupLayout::Unified ? "io" : "blkio");
    bool any = b->weight || b->leaf_weight || !b->weight_device.empty() || !b->throttle_read_bps.empty() ||
               !b->throttle_write_bps.empty() || !b->throttle_read_iops.empty() || !b->throttle_write_iops.empty();
    if (any && !d)
      return fail(Error(ErrorKind::Operation, "the block I/O controller is not available on this host")
                      .wrap(fmt::format("apply {}.blockIO", base)));
    if (d && !d->v2) {
      // The proportional weight needs the BFQ (or old CFQ) scheduler; its file
      // name depends on which. Throttling works with any scheduler.
      std::string weight_file = exists(d->path + "/blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
      if (b->weight) FOUNDRY_TRY(write_cg(d->path, weight_file, std::to_string(*b->weight), base + ".blockIO.weight"));
      if (b->leaf_weight)
        FOUNDRY_TRY(write_cg(d->path, "blkio.leaf_weight", std::to_string(*b->leaf_weight), base + ".blockIO.leafWeight"));
      for (const auto& wd : b->weight_device)
        if (wd.weight)
          FOUNDRY_TRY(write_cg(d->path, weight_file, fmt::format("{}:{} {}", wd.major, wd.minor, *wd.weight),
                               base + ".blockIO.weightDevice"));
      auto throttle = [&](const std::vector<BlockIoDevice>& v, const char* file, const char* field) -> Status {
        for (const auto& t : v)
          FOUNDRY_TRY(write_cg(d->path, file, fmt::format("{}:{} {}", t.major, t.minor, t.rate), base + field));
        return ok();
      };
      FOUNDRY_TRY(throttle(b->throttle_read_bps, "blkio.throttle.read_bps_device", ".blockIO.throttleReadBpsDevice"));
      FOUNDRY_TRY(throttle(b->throttle_write_bps, "blkio.throttle.write_bps_device", ".blockIO.throttleWriteBpsDevice"));
      FOUNDRY_TRY(throttle(b->throttle_read_iops, "blkio.throttle.read_iops_device", ".blockIO.throttleReadIOPSDevice"));
      FOUNDRY_TRY(
          throttle(b->throttle_write_iops, "blkio.throttle.write_iops_device", ".blockIO.throttleWriteIOPSDevice"));
    } else if (d) {
      std::string weight_file = exists(d->path + "/io.weight") ? "io.weight" : "io.bfq.weight";
      if (b->weight)
        FOUNDRY_TRY(write_cg(d->path, weight_file, "default " + std::to_string(*b->weight), base + ".blockIO.weight"));
      for (const auto& wd : b->weight_device)
        if (wd.weight)
          FOUNDRY_TRY(write_cg(d->path, weight_file, fmt::format("{}:{} {}", wd.major, wd.minor, *wd.weight),
                               base + ".blockIO.weightDevice"));
      auto throttle = [&](const std::vector<BlockIoDevice>& v, const char* key, const char* field) -> Status {
        for (const auto& t : v)
          FOUNDRY_TRY(write_cg(d->path, "io.max", fmt::format("{}:{} {}={}", t.major, t.minor, key, t.rate), base + field));
        return ok();
      };
      FOUNDRY_TRY(throttle(b->throttle_read_bps, "rbps", ".blockIO.throttleReadBpsDevice"));
      FOUNDRY_TRY(throttle(b->throttle_write_bps, "wbps", ".blockIO.throttleWriteBpsDevice"));
      FOUNDRY_TRY(throttle(b->throttle_read_iops, "riops", ".blockIO.throttleReadIOPSDevice"));
      FOUNDRY_TRY(throttle(b->throttle_write_iops, "wiops", ".blockIO.throttleWriteIOPSDevice"));
    }
  }
  // Device access. cgroup v1 keeps an allow/deny list in the devices
  // controller: start from "deny everything", then the spec's rules in
  // order, then the devices every container needs (runc does the same).
  // Without that controller (cgroup v2) the same list becomes a BPF
  // program on the container's v2 directory.
  std::vector<DeviceRule> rules = container_device_rules(res.devices);
  if (const Dir* d = dir_for("devices"); d && !d->v2 && layout_ != CgroupLayout::Unified) {
    auto line = [](const DeviceRule& r) {
      auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
      if (r.type == 'a' && r.major < 0 && r.minor < 0) return std::string("a");
      return fmt::format("{} {}:{} {}", r.type, num(r.major), num(r.minor), r.access);
    };
    for (size_t i = 0; i < rules.size(); ++i) {
      const auto& r = rules[i];
      // Name the spec's entry for its own rules; the frame ones are ours.
      bool from_spec = i >= 1 && i <= res.devices.size();
      FOUNDRY_TRY(write_cg(d->path, r.allow ? "devices.allow" : "devices.deny", line(r),
                           from_spec ? fmt::format("{}.devices[{}]", base, i - 1) : base + ".devices"));
    }
  } else {
    const Dir* v2 = nullptr;
    for (const auto& x : dirs_)
      if (x.v2) v2 = &x;
    // Only a real cgroup2 directory takes a program (the unit tests' fake
    // trees are plain directories).
    struct statfs sf {};
    if (v2 && ::statfs(v2->path.c_str(), &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
      FOUNDRY_TRY(attach_device_filter(v2->path, rules));
  }
  for (const auto& [file, value] : res.unified) {
    const Dir* d = nullptr;
    for (const auto& x : dirs_)
      if (x.v2) d = &x;
    if (!d || layout_ != CgroupLayout::Unified)
      return fail(Error(ErrorKind::Validation, "linux.resources.unified needs the unified (v2) cgroup layout")
                      .wrap(fmt::format("apply {}.unified.{}", base, file))
                      .with_hint(fmt::format("this host is {}; use the v1 fields instead", describe(layout_))));
    FOUNDRY_TRY(write_cg(d->path, file, value, base + ".unified." + file));
  }
  return ok();
}

Status Cgroup::add_process(pid_t pid, bool v1, bool v2) const {
  for (const auto& d : dirs_) {
    if (d.v2 ? !v2 : !v1) continue;
    // cgroup.procs moves the whole thread group; tasks would move a thread.
    FOUNDRY_TRY_CTX(write_cg(d.path, "cgroup.procs", std::to_string(pid)), "move process {} into its cgroup", pid);
  }
  return ok();
}

Result<CgroupEntry> Cgroup::open_entry() const {
  CgroupEntry e;
  for (const auto& d : dirs_) {
    std::string path = d.v2 ? d.path : d.path + "/tasks";
    UniqueFd fd(::open(path.c_str(), d.v2 ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : O_WRONLY | O_CLOEXEC));
    if (!fd) return fail(sys_error(ErrorKind::Operation, fmt::format("cannot open {}", path)).wrap("join the cgroup"));
    if (d.v2)
      e.v2_dir = std::move(fd);
    else
      e.v1_tasks.push_back(std::move(fd));
  }
  return e;
}

Status Cgroup::enter_v1(const CgroupEntry& entry) {
  for (const auto& fd : entry.v1_tasks)
    if (::write(fd.get(), "0", 1) != 1)
      return fail(sys_error(ErrorKind::Operation, "cannot move the container's init into its v1 cgroup (tasks)")
                      .with_hint("the cgroup may have been removed meanwhile"));
  return ok();
}

std::vector<pid_t> Cgroup::processes() const {
  std::vector<pid_t> out;
  for (const auto& d : dirs_) {
    auto procs = read_cg(d.path, "cgroup.procs");
    if (!procs) continue;
    std::istringstream in(*procs);
    pid_t p;
    while (in >> p) out.push_back(p);
    if (!out.empty()) break;
  }
  return out;
}

Status Cgroup::signal_all(int sig) const {
  const Dir* v2 = nullptr;
  for (const auto& d : dirs_)
    if (d.v2) v2 = &d;
  if (sig == SIGKILL && v2 && exists(v2->path + "/cgroup.kill")) {
    if (write_cg(v2->path, "cgroup.kill", "1")) return ok();
  }
  const Dir* fr = dir_for("freezer");
  bool frozen = false;
  if (fr && !fr->v2) {
    if (write_cg(fr->path, "freezer.state", "FROZEN")) {
      frozen = true;
      for (int i = 0; i < 200; ++i) {
        auto s = read_cg(fr->path, "freezer.state");
        if (!s || trim(*s) == "FROZEN") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  for (pid_t p : processes()) ::kill(p, sig);
  if (frozen) (void)write_cg(fr->path, "freezer.state", "THAWED");
  return ok();
}

Status Cgroup::destroy() const {
  if (!processes().empty()) (void)signal_all(SIGKILL);
  using clock = std::chrono::steady_clock;
  for (const auto& d : dirs_) {
    auto deadline = clock::now() + std::chrono::seconds(5);
    auto delay = std::chrono::microseconds(200);
    for (;;) {
      if (::rmdir(d.path.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || clock::now() >= deadline) {
        Error e = sys_error(ErrorKind::Operation, fmt::format("cannot remove cgroup {}", d.path));
        return fail(std::move(e).with_hint("processes may still be inside; check its cgroup.procs"));
      }
      // Killed tasks leave the cgroup asynchronously; kill anything new too.
      (void)signal_all(SIGKILL);
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::microseconds(20000));
    }
  }
  // Parents this container made, and the default "foundry" parent shared by
  // containers without a cgroupsPath, go when they are empty (EBUSY while
  // other containers still live there).
  std::vector<std::string> parents(created_parents_.rbegin(), created_parents_.rend());
  for (const auto& d : dirs_) {
    auto slash = d.path.rfind('/');
    if (slash != std::string::npos && d.path.substr(0, slash).size() >= 8 &&
        d.path.compare(slash - 8, 8, "/foundry") == 0)
      parents.push_back(d.path.substr(0, slash));
  }
  for (const auto& p : parents) ::rmdir(p.c_str());
  return ok();
}

uint64_t Cgroup::oom_kills() const {
  const Dir* d = dir_for("memory");
  if (!d) return 0;
  auto text = read_cg(d->path, d->v2 ? "memory.events" : "memory.oom_control");
  if (!text) return 0;
  std::istringstream in(*text);
  std::string key;
  uint64_t v;
  while (in >> key >> v)
    if (key == "oom_kill") return v;
  return 0;
}

json Cgroup::to_json() const {
  json dirs = json::array();
  for (const auto& d : dirs_) dirs.push_back({{"controllers", d.controllers}, {"path", d.path}, {"v2", d.v2}});
  return {{"layout", std::string(to_string(layout_))}, {"path", rel_}, {"dirs", dirs},
          {"createdParents", created_parents_}};
}

Result<Cgroup> Cgroup::from_json(const json& j) {
  try {
    Cgroup cg;
    std::string l = j.at("layout").get<std::string>();
    cg.layout_ = l == "legacy" ? CgroupLayout::Legacy : l == "hybrid" ? CgroupLayout::Hybrid : CgroupLayout::Unified;
    cg.rel_ = j.at("path").get<std::string>();
    for (const auto& d : j.at("dirs"))
      cg.dirs_.push_back(Dir{d.at("controllers").get<std::string>(), d.at("path").get<std::string>(),
                             d.at("v2").get<bool>()});
    if (j.contains("createdParents")) cg.created_parents_ = j.at("createdParents").get<std::vector<std::string>>();
    return cg;
  } catch (const json::exception& e) {
    return fail(ErrorKind::Storage, "malformed cgroup record in container state: {}", e.what());
  }
}

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

}  // namespace foundry::container
