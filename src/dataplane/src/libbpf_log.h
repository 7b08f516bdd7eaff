// libbpf prints through a process-wide callback. We route it to spdlog at
// debug level (libraries never print on their own) and, while a
// LibbpfLogCapture is alive on the calling thread, also keep the text, so an
// Error can carry the verifier log as its detail (shown with --verbose).
#pragma once

#include <string>

namespace foundry::dataplane::detail {

class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;
  // The captured text, trimmed to its last ~8 KiB (the end of a verifier log
  // says why it refused).
  std::string text() const;

 private:
  std::string buf_;
  std::string* prev_;
};

// Installs the callback; idempotent.
void install_libbpf_logger();

}  // namespace foundry::dataplane::detail
