// Facts about a network interface in the calling thread's namespace.
#pragma once

#include <cstdint>
#include <string>

#include "foundry/common/error.h"
#include "foundry/dataplane/types.h"

namespace foundry::dataplane {

Result<uint32_t> interface_mtu(const std::string& ifname);
Result<MacAddr> interface_mac(const std::string& ifname);
// Packets the interface received (rx_packets), read from
// /proc/thread-self/net/dev: sysfs would show the namespace sysfs was
// mounted in, not the calling thread's.
Result<uint64_t> interface_rx_packets(const std::string& ifname);

// Transmit checksum offload (ethtool's tx-checksumming). A veth that sends
// into an XDP program must have it off: see docs/dataplane.md, "veth: the
// send side".
Result<bool> tx_checksum_offload(const std::string& ifname);
Status set_tx_checksum_offload(const std::string& ifname, bool on);

}  // namespace foundry::dataplane
