// Network namespaces, per thread.
//
// setns(CLONE_NEWNET) and unshare(CLONE_NEWNET) change only the calling
// thread, and several things the data plane does are resolved in the
// caller's namespace: devmap entries (by ifindex), XDP attach (netlink),
// BPF_PROG_TEST_RUN's ingress_ifindex, and the `ip` commands we spawn.
#pragma once

#include <string>
#include <utility>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"

namespace foundry::dataplane {

// Opens a namespace file: /run/netns/NAME, /proc/PID/ns/net, ...
Result<UniqueFd> open_netns(const std::string& path);
// /run/netns/<name> for a namespace made by `ip netns add`.
std::string named_netns_path(const std::string& name);

// Moves the calling thread into a network namespace for the scope's lifetime
// and back into the one it was in when the scope ends.
class NetnsScope {
 public:
  // Into an existing namespace.
  static Result<NetnsScope> enter(int ns_fd);
  static Result<NetnsScope> enter(const std::string& path);
  // Into a new, empty namespace (unshare); it disappears when nothing else
  // holds it after the scope ends.
  static Result<NetnsScope> enter_new();

  NetnsScope(NetnsScope&& o) noexcept : original_(std::move(o.original_)) {}
  NetnsScope& operator=(NetnsScope&&) = delete;
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;
  ~NetnsScope();

 private:
  explicit NetnsScope(UniqueFd original) : original_(std::move(original)) {}
  UniqueFd original_;
};

// Runs fn with the calling thread inside the namespace at path, then
// returns to the original namespace. fn returns a Result or Status.
template <typename F>
auto in_netns(const std::string& path, F&& fn) -> decltype(fn()) {
  auto scope = NetnsScope::enter(path);
  if (!scope) return tl::unexpected(std::move(scope).error());
  return fn();
}

// Interface index of name in the calling thread's namespace.
Result<uint32_t> ifindex_of(const std::string& name);

}  // namespace foundry::dataplane
