// The configuration `foundry-oci spec` writes. It must validate against the
// runtime-spec's config-schema.json and run as is on a busybox rootfs.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "foundry/container/spec.h"

namespace foundry::container {

std::string default_spec_json(bool rootless) {
  using json = nlohmann::json;
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  json spec = {
      {"ociVersion", kOciVersion},
      {"process",
       {
           {"terminal", false},
           {"user", {{"uid", 0}, {"gid", 0}}},
           {"args", json::array({"sh"})},
           {"env", json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"})},
           {"cwd", "/"},
           {"capabilities",
            {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
           {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
           {"noNewPrivileges", true},
       }},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "foundry"},
      {"mounts", json::array({
                     {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                     {{"destination", "/dev"},
                      {"type", "tmpfs"},
                      {"source", "tmpfs"},
                      {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
                     {{"destination", "/dev/pts"},
                      {"type", "devpts"},
                      {"source", "devpts"},
                      {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
                     {{"destination", "/dev/shm"},
                      {"type", "tmpfs"},
                      {"source", "shm"},
                      {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
                     {{"destination", "/dev/mqueue"},
                      {"type", "mqueue"},
                      {"source", "mqueue"},
                      {"options", {"nosuid", "noexec", "nodev"}}},
                     {{"destination", "/sys"},
                      {"type", "sysfs"},
                      {"source", "sysfs"},
                      {"options", {"nosuid", "noexec", "nodev", "ro"}}},
                     {{"destination", "/sys/fs/cgroup"},
                      {"type", "cgroup"},
                      {"source", "cgroup"},
                      {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
                 })},
      {"linux",
       {
           {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
           {"namespaces",
            json::array({{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}},
                         {{"type", "mount"}}, {{"type", "cgroup"}}})},
           {"maskedPaths",
            {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
             "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
           {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
       }},
  };
  if (rootless) {
    spec["linux"]["namespaces"].push_back({{"type", "user"}});
    // The caller's own ids become root inside, as `runc spec --rootless` does.
    spec["linux"]["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", ::getuid()}, {"size", 1}}});
    spec["linux"]["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", ::getgid()}, {"size", 1}}});
    spec["linux"].erase("resources");
  }
  return spec.dump(4) + "\n";
}

}  // namespace foundry::container
