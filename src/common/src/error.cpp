#include "foundry/common/error.h"

#include <cerrno>
#include <cstring>

namespace foundry {

std::string_view to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::Config: return "configuration error";
    case ErrorKind::Validation: return "validation error";
    case ErrorKind::Connection: return "connection error";
    case ErrorKind::Operation: return "operation error";
    case ErrorKind::Storage: return "storage error";
  }
  return "error";
}

std::string Diagnostic::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += fmt::format(":{}", line);
    if (column > 0) out += fmt::format(":{}", column);
  }
  out += ": ";
  if (!field.empty()) out += field + ": ";
  out += message;
  if (!hint.empty()) out += " (hint: " + hint + ")";
  return out;
}

std::string Error::to_string() const {
  std::string out;
  for (const auto& c : context_) {
    out += c;
    out += ": ";
  }
  out += message_;
  if (errno_ != 0) {
    out += ": ";
    out += std::strerror(errno_);
  }
  return out;
}

Error sys_error(ErrorKind kind, std::string message) {
  int e = errno;
  return Error(kind, std::move(message)).with_errno(e);
}

}  // namespace foundry
