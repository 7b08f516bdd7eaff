// Control groups: which layout the host uses, and one container's cgroup in
// every hierarchy that layout offers.
//
// Three layouts exist in the wild and this code handles each:
//   unified  /sys/fs/cgroup is cgroup2; every controller lives there.
//   legacy   every controller is its own cgroup v1 hierarchy.
//   hybrid   v1 controllers as in legacy, plus a cgroup2 mount (usually
//            /sys/fs/cgroup/unified) that carries few or no controllers.
// In hybrid mode resources are applied through the v1 controllers (that is
// where they are) and the container also gets a directory in the unified
// hierarchy, so tools that look there (systemd, cgroup.kill) see it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"
#include "foundry/container/spec.h"

namespace foundry::container {

enum class CgroupLayout { Unified, Legacy, Hybrid };
// "unified (cgroup v2)", "legacy (cgroup v1)", "hybrid (cgroup v1 controllers, cgroup v2 unified mount)".
std::string_view describe(CgroupLayout l);
// "unified", "legacy", "hybrid" (state files, features output).
std::string_view to_string(CgroupLayout l);

struct CgroupHierarchy {
  std::string mountpoint;                // /sys/fs/cgroup/memory
  std::string root;                      // the hierarchy path mounted there (mountinfo field 4)
  std::vector<std::string> controllers;  // v1: from the mount options; v2: cgroup.controllers
  bool v2 = false;
};

struct CgroupSystem {
  CgroupLayout layout = CgroupLayout::Unified;
  std::vector<CgroupHierarchy> v1;         // hierarchies with at least one controller
  std::optional<CgroupHierarchy> unified;  // the cgroup2 mount, if any
  // The process' own cgroup per v1 controller, and "" for the v2 hierarchy
  // (from /proc/self/cgroup), for relative cgroupsPath values.
  std::map<std::string, std::string> own_paths;

  // The hierarchy that carries `controller` (v1 first in legacy/hybrid).
  const CgroupHierarchy* hierarchy_for(std::string_view controller) const;
  bool has_controller(std::string_view controller) const;
  std::string summary() const;  // "hybrid (...): v1 cpu, cpuacct, ...; v2 hugetlb"
};

// Parses /proc/self/mountinfo text (and /proc/self/cgroup text for own
// paths). controllers_of_v2 reads cgroup.controllers of the v2 mount; tests
// pass a fake.
CgroupSystem parse_cgroup_system(std::string_view mountinfo, std::string_view proc_self_cgroup,
                                 const std::string& v2_controllers);
// The host's layout, read from /proc.
Result<CgroupSystem> detect_cgroups();

// What a new process needs to start life in a container's cgroup without
// anyone moving it there. Moving another process (a pid written to
// cgroup.procs) takes the kernel's global threadgroup lock for writing,
// which waits for an RCU grace period: 5-15 ms here, the largest single cost
// of `create`. A thread that moves itself through a v1 "tasks" file ("0")
// and a child cloned with CLONE_INTO_CGROUP (v2) skip that lock.
struct CgroupEntry {
  std::vector<UniqueFd> v1_tasks;  // each v1 directory's "tasks", opened for writing
  UniqueFd v2_dir;                 // the v2 directory, for clone3; invalid when there is none
};

// One container's cgroup: a directory per hierarchy.
class Cgroup {
 public:
  struct Dir {
    std::string controllers;  // "memory", "cpu,cpuacct", "" for v2
    std::string path;         // absolute directory
    bool v2 = false;
  };

  Cgroup() = default;

  // cgroups_path: the spec's linux.cgroupsPath; absolute paths are taken
  // from each hierarchy's root, relative ones from the runtime's own cgroup.
  // Empty: /foundry/<id>. Creates the directories (and for v1 cpuset copies
  // the parent's cpus/mems, which the kernel leaves empty). On failure
  // nothing created stays behind.
  static Result<Cgroup> create(const CgroupSystem& sys, const std::string& cgroups_path, const std::string& id);

  // Applies linux.resources. Errors name the spec field and the file.
  Status apply(const Resources& res) const;
  // Moves a process into every v1 directory (unless !v1) and the v2 one
  // (unless !v2).
  Status add_process(pid_t pid, bool v1 = true, bool v2 = true) const;
  // Opens what a new process needs to join on its own (CgroupEntry).
  Result<CgroupEntry> open_entry() const;
  // In the joining process itself, which must be single-threaded: moves the
  // calling thread (and so the process) into each v1 directory.
  static Status enter_v1(const CgroupEntry& entry);
  // Pids in the container's cgroup (from the first hierarchy that lists any).
  std::vector<pid_t> processes() const;
  // Sends sig to every process in the cgroup (frozen meanwhile where the
  // freezer exists, so nothing forks past the signal).
  Status signal_all(int sig) const;
  // Kills everything left and removes the directories (and parents this
  // container created when they are empty). Retries while tasks drain.
  Status destroy() const;
  // Times the OOM killer acted in this cgroup (memory.oom_control or
  // memory.events); 0 when the controller is absent.
  uint64_t oom_kills() const;

  const std::vector<Dir>& dirs() const { return dirs_; }
  CgroupLayout layout() const { return layout_; }
  const std::string& relative_path() const { return rel_; }  // path inside each hierarchy

  nlohmann::json to_json() const;
  static Result<Cgroup> from_json(const nlohmann::json& j);

 private:
  const Dir* dir_for(std::string_view controller) const;

  CgroupLayout layout_ = CgroupLayout::Unified;
  std::string rel_;
  std::vector<Dir> dirs_;
  std::vector<std::string> created_parents_;  // parents we made, deepest last
};

// The device rules a container gets, in the v1 controller's terms: deny
// everything, then the spec's linux.resources.devices in order, then the
// devices every container needs (null, zero, full, random, urandom, tty,
// console, ptmx, pts, tun), as runc does.
std::vector<DeviceRule> container_device_rules(const std::vector<DeviceRule>& spec_rules);
// cgroup v2 has no devices controller: loads a BPF_PROG_TYPE_CGROUP_DEVICE
// program equivalent to `rules` (the last matching rule decides; nothing
// matching denies) and attaches it to the cgroup directory. The kernel
// keeps it as long as the cgroup exists.
Status attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules);
// Instructions of that program (tests check its size stays linear).
size_t device_filter_size(const std::vector<DeviceRule>& rules);

// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), the conversion
// runc and crun use so both layouts give the same relative share.
uint64_t cpu_shares_to_weight(uint64_t shares);

}  // namespace foundry::container
