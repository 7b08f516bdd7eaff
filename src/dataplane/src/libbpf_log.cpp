#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "foundry/common/log.h"

namespace foundry::dataplane::detail {

namespace {

thread_local std::string* t_capture = nullptr;

int print_cb(enum libbpf_print_level level, const char* format, va_list args) {
  // libbpf's debug level narrates every relocation; keep it for trace only,
  // and out of captured error detail.
  bool debug = level == LIBBPF_DEBUG;
  if (debug && !spdlog::should_log(spdlog::level::trace)) return 0;
  char line[1024];
  int n = std::vsnprintf(line, sizeof(line), format, args);
  if (n <= 0) return 0;
  std::string text(line, std::min<size_t>(static_cast<size_t>(n), sizeof(line) - 1));
  if (t_capture && !debug) t_capture->append(text);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::log(debug ? spdlog::level::trace : spdlog::level::debug, "libbpf: {}", text);
  return 0;
}

}  // namespace

void install_libbpf_logger() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(print_cb); });
}

LibbpfLogCapture::LibbpfLogCapture() : prev_(t_capture) {
  install_libbpf_logger();
  t_capture = &buf_;
}

LibbpfLogCapture::~LibbpfLogCapture() { t_capture = prev_; }

std::string LibbpfLogCapture::text() const {
  constexpr size_t kKeep = 8192;
  if (buf_.size() <= kKeep) return buf_;
  return "...\n" + buf_.substr(buf_.size() - kKeep);
}

}  // namespace foundry::dataplane::detail
