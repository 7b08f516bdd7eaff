// Error and Result<T>: the one way every Foundry library reports failure.
//
// An Error carries a Kind that maps 1:1 to the process exit codes of the VM
// specification (seed 001), the errno or library code that caused it, a
// human message, optional library detail (shown with --verbose), a context
// chain added by each layer ("create volume web_boot in pool foundry-vms: ..."),
// and, for configuration problems, the list of per-field diagnostics.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <tl/expected.hpp>

namespace foundry {

enum class ErrorKind {
  Config = 1,      // unreadable file, bad syntax, bad CLI usage
  Validation = 2,  // well-formed input that breaks a rule
  Connection = 3,  // cannot reach libvirt / foundryd / the agent
  Operation = 4,   // an operation on a VM, container or data plane failed
  Storage = 5,     // pools, volumes, images
};

// Process exit code for an error kind (0 is success and has no kind).
constexpr int exit_code(ErrorKind k) { return static_cast<int>(k); }
std::string_view to_string(ErrorKind k);

// One finding about one place in an input file.
struct Diagnostic {
  std::string file;   // path as the user gave it
  int line = 0;       // 1-based; 0 when unknown
  int column = 0;     // 1-based; 0 when unknown
  std::string field;  // field path, e.g. network_interfaces[1].ip
  std::string message;
  std::string hint;   // suggested fix; may be empty

  // "file:line:col: field: message (hint: ...)"
  std::string to_string() const;
};

class Error {
 public:
  Error() = default;
  Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  ErrorKind kind() const { return kind_; }
  int exit_code() const { return foundry::exit_code(kind_); }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }
  const std::string& hint() const { return hint_; }
  const std::vector<std::string>& context() const { return context_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

  Error& with_errno(int e) & { errno_ = e; return *this; }
  Error&& with_errno(int e) && { errno_ = e; return std::move(*this); }
  Error& with_detail(std::string d) & { detail_ = std::move(d); return *this; }
  Error&& with_detail(std::string d) && { detail_ = std::move(d); return std::move(*this); }
  Error& with_hint(std::string h) & { hint_ = std::move(h); return *this; }
  Error&& with_hint(std::string h) && { hint_ = std::move(h); return std::move(*this); }
  Error& with_kind(ErrorKind k) & { kind_ = k; return *this; }
  Error&& with_kind(ErrorKind k) && { kind_ = k; return std::move(*this); }
  Error& add_diagnostic(Diagnostic d) & { diagnostics_.push_back(std::move(d)); return *this; }
  Error&& add_diagnostic(Diagnostic d) && { diagnostics_.push_back(std::move(d)); return std::move(*this); }

  // Adds an outer layer of context; the outermost comes first when printed.
  Error& wrap(std::string ctx) & { context_.insert(context_.begin(), std::move(ctx)); return *this; }
  Error&& wrap(std::string ctx) && { context_.insert(context_.begin(), std::move(ctx)); return std::move(*this); }

  // "outer: inner: message: strerror(errno)". Detail and hint are separate.
  std::string to_string() const;

 private:
  ErrorKind kind_ = ErrorKind::Operation;
  int errno_ = 0;
  std::string message_;
  std::string detail_;
  std::string hint_;
  std::vector<std::string> context_;
  std::vector<Diagnostic> diagnostics_;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

template <typename... Args>
tl::unexpected<Error> fail(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return tl::unexpected<Error>(Error(kind, fmt::format(f, std::forward<Args>(args)...)));
}

// Error for a failed system call: captures the current errno.
Error sys_error(ErrorKind kind, std::string message);

template <typename... Args>
tl::unexpected<Error> fail_errno(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return tl::unexpected<Error>(sys_error(kind, fmt::format(f, std::forward<Args>(args)...)));
}

inline Status ok() { return {}; }

namespace detail {
// The value of a successful Result, moved out; nothing for Status.
template <typename T>
T take(tl::expected<T, Error>&& r) {
  return std::move(*r);
}
inline void take(tl::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace foundry

// Evaluates a Result expression; on error returns it (wrapped with the
// context strings given after the expression, if any) from the enclosing
// function, else yields the value. Uses GNU statement expressions, which
// both GCC and clang support (CMAKE_CXX_EXTENSIONS is on).
#define FOUNDRY_TRY(expr)                                                  \
  ({                                                                       \
    auto&& foundry_try_r_ = (expr);                                        \
    if (!foundry_try_r_) return ::tl::unexpected(std::move(foundry_try_r_).error()); \
    ::foundry::detail::take(std::move(foundry_try_r_));                    \
  })

#define FOUNDRY_TRY_CTX(expr, ...)                                         \
  ({                                                                       \
    auto&& foundry_try_r_ = (expr);                                        \
    if (!foundry_try_r_)                                                   \
      return ::tl::unexpected(std::move(foundry_try_r_).error().wrap(fmt::format(__VA_ARGS__))); \
    ::foundry::detail::take(std::move(foundry_try_r_));                    \
  })
