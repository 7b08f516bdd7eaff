// Facts about a network interface in the calling thread's namespace.
#pragma once

#include <cstdint>
#include <string>

#include "foundry/common/error.h"
#include "foundry/dataplane/types.h"

namespace foundry::dataplane {

Result<uint32_t> interface_mtu(const std::string& ifname);
Result<MacAddr> interface_mac(const std::string& ifname);

}  // namespace foundry::dataplane
