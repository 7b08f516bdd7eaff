// Attaching the TC forwarder (foundry_tc) to an interface's clsact ingress
// as a cls_bpf filter in direct-action mode, over netlink, in the calling
// thread's network namespace.
//
// Like XDP attachments made over netlink, the filter belongs to the
// interface, not to our process: it stays when the agent exits and is
// replaced in place (same handle and priority) by the next one, so traffic
// never sees a moment without a program. Foundry uses one fixed slot
// (kTcHandle, kTcPriority); a filter there that is not Foundry's is never
// replaced or removed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "foundry/common/error.h"

namespace foundry::dataplane {

inline constexpr uint32_t kTcHandle = 0xfd;
inline constexpr uint32_t kTcPriority = 0xfd;

struct TcAttachment {
  uint32_t prog_id = 0;
  std::string prog_name;
};

// The program in Foundry's slot on ifindex's clsact ingress, if any.
Result<std::optional<TcAttachment>> tc_query(uint32_t ifindex);

// Creates the clsact qdisc when absent and puts prog_fd in Foundry's slot,
// replacing a Foundry program there atomically.
Status tc_attach(uint32_t ifindex, int prog_fd);

// Removes Foundry's filter; nothing there is not an error, a foreign one is.
// The clsact qdisc stays (other filters may use it).
Status tc_detach(uint32_t ifindex);

}  // namespace foundry::dataplane
