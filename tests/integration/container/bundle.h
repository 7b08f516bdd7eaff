// Test support for the container integration tests: a busybox-static
// bundle in a private temporary directory, a per-test state root, and a way
// to run foundry-oci with its output in files (the container inherits the
// runtime's stdio, so pipes would stay open as long as the container runs).
// Everything a test makes is removed in the destructor, also when the test
// fails: containers (delete --force), cgroups, the temporary tree.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace foundry::container::testing {

struct OciRun {
  int rc = -1;      // exit code of foundry-oci (128+sig if killed)
  std::string out;  // stdout (container output included when it shares stdio)
  std::string err;
};

// Why the integration tests cannot run here, or "" when they can.
std::string skip_reason();

class Bundle {
 public:
  Bundle();
  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::string& dir() const { return dir_; }         // bundle directory
  std::string rootfs() const { return dir_ + "/rootfs"; }
  const std::string& state_root() const { return state_root_; }
  const std::string& tmp() const { return tmp_; }         // scratch space of the test
  nlohmann::json& config() { return config_; }
  void set_args(const std::vector<std::string>& args);
  void write_config() const;

  // A container id unique across parallel test processes; remembered for cleanup.
  std::string new_id(const std::string& hint);

  // foundry-oci --root <state_root> <args...>; waits for foundry-oci only.
  OciRun oci(const std::vector<std::string>& args, int timeout_s = 60) const;
  // `run` of the current config under a fresh id.
  OciRun run(const std::string& hint);

  // The container's state.json as recorded (cgroup dirs, pid, start time).
  nlohmann::json record(const std::string& id) const;
  // Polls `state` until the status is `want` or timeout; returns the last status.
  std::string wait_status(const std::string& id, const std::string& want, int timeout_ms = 10000) const;

 private:
  std::string tmp_;
  std::string dir_;
  std::string state_root_;
  nlohmann::json config_;
  std::vector<std::string> ids_;
};

std::string oci_binary();
// Reaps any exited children (orphaned container inits come to the test
// process, which is a child subreaper), returning (pid, wait status) pairs.
std::vector<std::pair<pid_t, int>> reap_children();
// Waits for one child; returns its wait status or -1 on timeout.
int wait_child(pid_t pid, int timeout_ms);
// Lines of /proc/self/mountinfo that mention `needle`.
std::vector<std::string> host_mounts_mentioning(const std::string& needle);
// Validates a JSON document against one of the OCI schemas; "" when valid,
// else the validator's complaint. Skips (returns "skip: ...") without python3-jsonschema.
std::string validate_against_schema(const std::string& json_text, const std::string& schema_file);

}  // namespace foundry::container::testing
