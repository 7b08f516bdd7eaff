// OCI runtime-spec 1.x bundle configuration (config.json) as typed structs.
//
// parse_spec() turns the JSON text into a Spec and checks every rule the
// runtime relies on later, so that container creation never meets a value it
// cannot apply. Every problem becomes a Diagnostic whose field is the JSON
// path of the offending value ("process.args[0]",
// "linux.resources.memory.limit") with a hint on how to fix it. Unknown
// properties are ignored, as the specification requires.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"

namespace foundry::container {

// The runtime-spec version Foundry implements (reported in state and features).
inline constexpr const char* kOciVersion = "1.2.0";

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

// Capability sets as kernel capability numbers (CAP_*). An absent set is
// empty, as in the specification.
struct Capabilities {
  std::vector<int> bounding;
  std::vector<int> effective;
  std::vector<int> inheritable;
  std::vector<int> permitted;
  std::vector<int> ambient;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  std::string name;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct ConsoleSize {
  unsigned height = 0;
  unsigned width = 0;
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<Capabilities> capabilities;  // absent: keep what the runtime has
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;  // accepted, not applied (see docs/container.md)
  std::string selinux_label;     // accepted, not applied
};

struct Root {
  std::string path;
  bool readonly = false;
};

// Mount options split the way mount(2) and mount_setattr(2) need them.
struct MountFlags {
  unsigned long set = 0;          // MS_* to set
  unsigned long clear = 0;        // MS_* explicitly cleared (rw, suid, dev, exec, ...)
  unsigned long propagation = 0;  // MS_PRIVATE/MS_SHARED/MS_SLAVE/MS_UNBINDABLE (+MS_REC)
  bool bind = false;
  bool recursive_bind = false;    // rbind
  std::string data;               // filesystem options (mode=755,size=64k)
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
  MountFlags flags;  // derived from options
};

enum class NamespaceType { Pid, Network, Mount, Ipc, Uts, User, Cgroup, Time };
std::string_view to_string(NamespaceType t);  // the spec's spelling: "pid", "network", ...
int clone_flag(NamespaceType t);               // CLONE_NEW*
std::string_view proc_ns_name(NamespaceType t);  // name under /proc/<pid>/ns/

struct Namespace {
  NamespaceType type = NamespaceType::Pid;
  std::string path;  // empty: create a new one; else join this one
};

struct Device {
  char type = 'c';  // c, b, u, p
  std::string path;
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct DeviceRule {
  bool allow = false;
  char type = 'a';       // a, c, b
  int64_t major = -1;    // -1: any
  int64_t minor = -1;
  std::string access = "rwm";
};

struct MemoryResources {
  std::optional<int64_t> limit;        // bytes; -1 unlimited
  std::optional<int64_t> reservation;  // soft limit
  std::optional<int64_t> swap;         // memory+swap
  std::optional<int64_t> kernel;       // deprecated, ignored with a debug note
  std::optional<int64_t> kernel_tcp;
  std::optional<uint64_t> swappiness;
  bool disable_oom_killer = false;
};

struct CpuResources {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;
  std::optional<uint64_t> burst;
  std::optional<uint64_t> period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus;
  std::string mems;
  std::optional<int64_t> idle;
};

struct BlockIoDevice {
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  uint64_t rate = 0;  // for throttle entries
};

struct BlockIoResources {
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  std::vector<BlockIoDevice> weight_device;
  std::vector<BlockIoDevice> throttle_read_bps;
  std::vector<BlockIoDevice> throttle_write_bps;
  std::vector<BlockIoDevice> throttle_read_iops;
  std::vector<BlockIoDevice> throttle_write_iops;
};

struct Resources {
  std::vector<DeviceRule> devices;
  std::optional<MemoryResources> memory;
  std::optional<CpuResources> cpu;
  std::optional<int64_t> pids_limit;
  std::optional<BlockIoResources> block_io;
  std::map<std::string, std::string> unified;  // cgroup v2 file -> value
};

enum class SeccompAction { Kill, KillProcess, KillThread, Trap, Errno, Trace, Allow, Log, Notify };
enum class SeccompOp { NotEqual, LessThan, LessEqual, EqualTo, GreaterEqual, GreaterThan, MaskedEqual };

struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  SeccompOp op = SeccompOp::EqualTo;
};

struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action = SeccompAction::Allow;
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  SeccompAction default_action = SeccompAction::Allow;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // SCMP_ARCH_X86_64, ...
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_*
  std::vector<SeccompRule> syscalls;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
};

struct Hooks {
  std::vector<Hook> prestart;  // deprecated by the spec; run with createRuntime
  std::vector<Hook> create_runtime;
  std::vector<Hook> create_container;
  std::vector<Hook> start_container;
  std::vector<Hook> poststart;
  std::vector<Hook> poststop;
  bool empty() const {
    return prestart.empty() && create_runtime.empty() && create_container.empty() &&
           start_container.empty() && poststart.empty() && poststop.empty();
  }
};

struct LinuxSpec {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings;
  std::vector<IdMapping> gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;
  std::optional<Resources> resources;
  std::string rootfs_propagation;  // "", private, rprivate, slave, rslave, shared, rshared, unbindable
  std::optional<Seccomp> seccomp;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string mount_label;

  const Namespace* find_namespace(NamespaceType t) const;
  // True when the container gets a namespace of this type of its own
  // (listed without a path).
  bool new_namespace(NamespaceType t) const;
};

struct Spec {
  std::string oci_version;
  std::optional<Process> process;
  std::optional<Root> root;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  LinuxSpec linux_spec;  // "linux" (the name is a predefined macro in GNU C++)
};

// Parses config.json text. `source` names the file in diagnostics. Syntax
// errors are ErrorKind::Config (with line:column); rule violations are
// ErrorKind::Validation with one Diagnostic per problem.
Result<Spec> parse_spec(std::string_view json_text, const std::string& source = "config.json");

// Parses a process description on its own (what `runc exec --process`
// reads): the object config.json has at "process", with the same rules and
// the same field paths in errors ("process.args[0]").
Result<Process> parse_process_spec(std::string_view json_text, const std::string& source = "process.json");

// Reads and parses <bundle>/config.json.
Result<Spec> load_spec(const std::string& bundle_dir);

// Splits mount options into flags; unknown options become filesystem data.
MountFlags parse_mount_options(const std::vector<std::string>& options);

// Kernel capability number for "CAP_SYS_ADMIN"; nullopt when unknown.
std::optional<int> capability_from_name(std::string_view name);
std::string capability_name(int cap);
// RLIMIT_* number for "RLIMIT_NOFILE"; nullopt when unknown.
std::optional<int> rlimit_from_name(std::string_view name);

// The default bundle configuration `foundry-oci spec` writes: a busybox-
// friendly container with its own pid, net, ipc, uts and mount namespaces.
// rootless: add a user namespace mapping the caller's ids to root.
std::string default_spec_json(bool rootless = false);

}  // namespace foundry::container
