#include "foundry/dataplane/iface.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "foundry/common/unique_fd.h"

namespace foundry::dataplane {

namespace {

// The ioctl answers for the namespace the socket was created in, which is
// the calling thread's. data, if given, is the request's ifr_data.
Result<ifreq> query(const std::string& ifname, unsigned long request, const char* what, void* data = nullptr) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return fail(ErrorKind::Validation, "interface name '{}' is not 1 to {} characters", ifname, IFNAMSIZ - 1);
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return fail_errno(ErrorKind::Operation, "{} of {}: socket", what, ifname);
  ifreq req{};
  std::memcpy(req.ifr_name, ifname.data(), ifname.size());
  req.ifr_data = static_cast<char*>(data);
  if (::ioctl(sock.get(), request, &req) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("{} of interface {}", what, ifname))
                    .with_hint("check the name with: ip link show"));
  return req;
}

}  // namespace

Result<uint32_t> interface_mtu(const std::string& ifname) {
  ifreq r = FOUNDRY_TRY(query(ifname, SIOCGIFMTU, "read MTU"));
  return static_cast<uint32_t>(r.ifr_mtu);
}

Result<MacAddr> interface_mac(const std::string& ifname) {
  ifreq r = FOUNDRY_TRY(query(ifname, SIOCGIFHWADDR, "read MAC address"));
  MacAddr m;
  std::memcpy(m.bytes.data(), r.ifr_hwaddr.sa_data, 6);
  return m;
}

Result<bool> tx_checksum_offload(const std::string& ifname) {
  ethtool_value v{};
  v.cmd = ETHTOOL_GTXCSUM;
  FOUNDRY_TRY(query(ifname, SIOCETHTOOL, "read tx-checksumming", &v));
  return v.data != 0;
}

Status set_tx_checksum_offload(const std::string& ifname, bool on) {
  ethtool_value v{};
  v.cmd = ETHTOOL_STXCSUM;
  v.data = on ? 1 : 0;
  FOUNDRY_TRY(query(ifname, SIOCETHTOOL, on ? "turn on tx-checksumming" : "turn off tx-checksumming", &v));
  return ok();
}

Result<uint64_t> interface_rx_packets(const std::string& ifname) {
  std::ifstream in("/proc/thread-self/net/dev");
  if (!in) return fail_errno(ErrorKind::Operation, "read /proc/thread-self/net/dev for {}", ifname);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != ifname) continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t bytes = 0, packets = 0;
    fields >> bytes >> packets;
    return packets;
  }
  return fail(ErrorKind::Validation, "no interface {} in /proc/thread-self/net/dev (this thread's namespace)", ifname);
}

}  // namespace foundry::dataplane
