// Progress reporting for long image-building operations.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace foundry::platform {

struct ProgressEvent {
  enum class Kind {
    Begin,  // a stage starts
    Info,   // something worth showing inside a stage (e.g. an mmdebstrap phase)
    End,    // a stage finished successfully; `elapsed` is set
  };
  Kind kind = Kind::Info;
  std::string stage;    // short stable name: "mmdebstrap", "esp", "root-fs", "convert", ...
  std::string message;  // one human line
  std::chrono::milliseconds elapsed{0};  // End: the stage's time; Info: time since the stage began
};

// Called on the caller's thread, except that build_rootfs reports the phases
// of mmdebstrap (Kind::Info) from a helper thread while it waits; calls never
// overlap. May be empty.
using ProgressFn = std::function<void(const ProgressEvent&)>;

}  // namespace foundry::platform
