#include "foundry/dataplane/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "foundry/common/log.h"

namespace foundry::dataplane {

Result<UniqueFd> open_netns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Error e = sys_error(ErrorKind::Operation, fmt::format("open network namespace {}", path));
    if (errno == ENOENT) e.with_hint("check the name with: ip netns list");
    return fail(std::move(e));
  }
  return UniqueFd(fd);
}

std::string named_netns_path(const std::string& name) { return "/run/netns/" + name; }

namespace {

Result<UniqueFd> current_netns() {
  // /proc/thread-self: the namespace of this thread, which may differ from
  // the process's main thread.
  return open_netns("/proc/thread-self/ns/net");
}

}  // namespace

Result<NetnsScope> NetnsScope::enter(int ns_fd) {
  auto original = FOUNDRY_TRY(current_netns());
  if (::setns(ns_fd, CLONE_NEWNET) != 0)
    return fail(sys_error(ErrorKind::Operation, "enter network namespace")
                    .with_hint("setns needs CAP_SYS_ADMIN; run as root"));
  return NetnsScope(std::move(original));
}

Result<NetnsScope> NetnsScope::enter(const std::string& path) {
  auto fd = FOUNDRY_TRY(open_netns(path));
  return FOUNDRY_TRY_CTX(enter(fd.get()), "{}", path);
}

Result<NetnsScope> NetnsScope::enter_new() {
  auto original = FOUNDRY_TRY(current_netns());
  if (::unshare(CLONE_NEWNET) != 0)
    return fail(sys_error(ErrorKind::Operation, "create a network namespace (unshare)")
                    .with_hint("needs CAP_SYS_ADMIN; run as root"));
  return NetnsScope(std::move(original));
}

NetnsScope::~NetnsScope() {
  if (!original_.valid()) return;  // moved from
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    // Continuing in the wrong namespace would make later work act on the
    // wrong interfaces; there is no safe way on.
    spdlog::critical("cannot return to the original network namespace: {}", std::strerror(errno));
    std::abort();
  }
}

Result<uint32_t> ifindex_of(const std::string& name) {
  unsigned idx = ::if_nametoindex(name.c_str());
  if (idx == 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("find interface {}", name))
                    .with_hint("check the name with: ip link show"));
  return static_cast<uint32_t>(idx);
}

}  // namespace foundry::dataplane
