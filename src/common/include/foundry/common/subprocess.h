// Runs an outside program: argv only (never a shell), output captured,
// optional stdin data, a timeout after which the whole process group is
// killed, and the child always reaped.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "foundry/common/error.h"

namespace foundry {

struct RunOptions {
  std::chrono::milliseconds timeout{0};   // 0 = no limit
  std::optional<std::string> stdin_data;  // else stdin is /dev/null
  std::vector<std::string> extra_env;     // "K=V" added to the environment
  std::string cwd;                        // empty = inherit
  bool capture = true;                    // false: child shares our stdout/stderr
};

struct RunResult {
  int exit_code = -1;  // valid when exited
  int signal = 0;      // non-zero when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const { return signal == 0 && !timed_out && exit_code == 0; }
  // "exit 2: <first stderr line>" or "killed by signal 9" or "timed out".
  std::string describe() const;
};

// Fails only when the program could not be started (ENOENT and the like).
// A non-zero exit is reported in RunResult, not as an error.
Result<RunResult> run(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Like run(), but a non-zero exit, signal or timeout becomes an Operation
// error naming the program and its stderr.
Result<RunResult> run_checked(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Finds a program on PATH; empty when absent.
std::string find_program(const std::string& name);

}  // namespace foundry
