// Container state kept on disk between runtime invocations.
//
// Layout under the root directory (default /run/foundry-oci):
//   <root>/<id>/state.json   the record below, written atomically
//   <root>/<id>/exec.fifo    exists while the container is "created": its
//                            init waits on it until `start`
//   <root>/<id>/lock         flock(2)ed by start and delete
// A pid alone is not an identity: pids are reused. The record keeps the
// init's start time (field 22 of /proc/<pid>/stat, clock ticks since boot)
// and a process only counts as the container's when both match.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"
#include "foundry/container/cgroup.h"
#include "foundry/container/spec.h"

namespace foundry::container {

inline constexpr const char* kDefaultStateRoot = "/run/foundry-oci";

enum class ContainerStatus { Creating, Created, Running, Stopped };
std::string_view to_string(ContainerStatus s);

struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;  // clock ticks after boot
};

// Start time of a process from /proc/<pid>/stat; nullopt when it is gone.
std::optional<uint64_t> process_start_time(pid_t pid);
// The process state letter from /proc/<pid>/stat (R, S, Z, ...); 0 if gone.
char process_state(pid_t pid);
// True while `id` names a live (not zombie) process with the same start time.
bool process_alive(const ProcessIdentity& id);

// Container ids: what runc accepts, so clients pass the same ids to both.
Status validate_container_id(const std::string& id);

struct ContainerState {
  std::string id;
  std::string bundle;  // absolute
  std::string rootfs;  // absolute
  ProcessIdentity init;
  ContainerStatus recorded = ContainerStatus::Creating;  // what create last wrote
  std::string created;                                 // RFC 3339, UTC
  std::string owner;                                   // user name of the creator
  std::map<std::string, std::string> annotations;
  std::optional<Cgroup> cgroup;
  bool own_pid_namespace = true;  // killing init then kills everything
  Hooks hooks;                    // poststart/poststop run by later commands

  nlohmann::json to_json() const;
  static Result<ContainerState> from_json(const nlohmann::json& j);
  // The OCI state document (state-schema.json) for this container.
  nlohmann::json oci_state(ContainerStatus status) const;
};

class StateStore {
 public:
  explicit StateStore(std::string root = kDefaultStateRoot) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  std::string fifo_path(const std::string& id) const { return dir(id) + "/exec.fifo"; }

  // Makes <root>/<id>; fails with a clear message if it already exists.
  Status create_dir(const std::string& id) const;
  Status save(const ContainerState& s) const;
  // Unknown ids are ErrorKind::Operation with "container ... does not exist".
  Result<ContainerState> load(const std::string& id) const;
  bool exists(const std::string& id) const;
  Status remove(const std::string& id) const;
  std::vector<std::string> list() const;
  // Exclusive flock on <root>/<id>/lock, held while the fd lives.
  Result<UniqueFd> lock(const std::string& id) const;

  // Status from the record and the live system: a dead init means stopped;
  // a live one waiting on the exec fifo means created.
  ContainerStatus status(const ContainerState& s) const;

 private:
  std::string root_;
};

// Writes a small runtime file atomically (temporary file + rename) without
// fsync: state lives no longer than the machine's processes (see state.cpp).
Status write_state_file(const std::string& path, const std::string& data);

// RFC 3339 timestamp of now, UTC with nanoseconds ("2024-01-02T03:04:05.123456789Z").
std::string now_rfc3339();

}  // namespace foundry::container
