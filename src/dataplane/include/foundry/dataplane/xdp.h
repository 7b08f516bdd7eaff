// Attaching XDP programs to interfaces (netlink, in the calling thread's
// network namespace).
//
// Attachments made this way belong to the interface, not to our process:
// they stay when the process exits, which is what lets an agent restart
// without a gap (the new process replaces the program atomically). The
// other side is that detaching is an explicit step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "foundry/common/error.h"

namespace foundry::dataplane {

enum class XdpMode {
  Native,   // in the driver (veth, most NICs): XDP_FLAGS_DRV_MODE
  Generic,  // on the skb path, works everywhere, slower: XDP_FLAGS_SKB_MODE
  Auto,     // native, else generic
  // Not XDP at all: the TC forwarder (foundry_tc) on clsact ingress, see
  // tc.h. One enum for both because the loader and agent choose the attach
  // mode per interface with one knob; xdp_attach() refuses it.
  Tc,
};

std::string_view to_string(XdpMode m);
std::optional<XdpMode> parse_xdp_mode(std::string_view s);  // "native", "generic", "auto", "tc"

struct XdpAttachment {
  uint32_t prog_id = 0;
  std::string prog_name;
  XdpMode mode = XdpMode::Native;
};

// The XDP program on ifindex, if any.
Result<std::optional<XdpAttachment>> xdp_query(uint32_t ifindex);

// True for programs this code base attaches (names start with "foundry_").
bool is_foundry_program(const std::string& prog_name);

// Attaches prog_fd to ifindex. A Foundry program already there is replaced
// atomically (XDP_FLAGS_REPLACE: no moment without a program); any other
// program is left alone and reported as an error. Returns the mode used.
Result<XdpMode> xdp_attach(uint32_t ifindex, int prog_fd, XdpMode mode);

// Removes a Foundry program from ifindex; nothing attached is not an error,
// a foreign program is.
Status xdp_detach(uint32_t ifindex);

}  // namespace foundry::dataplane
