// The data plane's vocabulary: MAC addresses, VNIs, forwarding entries,
// ports, next hops and counters, as C++ values. forwarder_abi.h holds the
// byte layouts the BPF program sees; the codecs in maps.h translate.
#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "foundry/common/error.h"
#include "foundry/dataplane/forwarder_abi.h"
#include "foundry/net/ip.h"

namespace foundry::dataplane {

struct MacAddr {
  std::array<uint8_t, 6> bytes{};

  // "aa:bb:cc:dd:ee:ff": six two-digit hex groups separated by colons, either case.
  static std::optional<MacAddr> parse(std::string_view s);
  std::string to_string() const;  // lower case
  bool is_multicast() const { return (bytes[0] & 1) != 0; }  // broadcast included
  bool is_zero() const;
  auto operator<=>(const MacAddr&) const = default;
};

inline constexpr MacAddr kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// VXLAN network identifier: 24 bits (RFC 7348 section 5).
using Vni = uint32_t;
inline constexpr Vni kVniMax = FDP_VNI_MAX;
// Validation error when vni does not fit in 24 bits.
Status validate_vni(uint64_t vni);

enum class FdbType : uint8_t { Local = FDP_FDB_LOCAL, Remote = FDP_FDB_REMOTE };

struct FdbKey {
  Vni vni = 0;
  MacAddr mac;
  auto operator<=>(const FdbKey&) const = default;
};

struct FdbEntry {
  FdbType type = FdbType::Local;
  uint32_t ifindex = 0;                // Local: egress port
  std::optional<MacAddr> rewrite_mac;  // Local: destination MAC written before redirect
  net::Ipv4 remote_ip;                 // Remote: VTEP address
  uint16_t remote_port = 0;            // Remote: UDP port; 0 = the local VTEP's port
  bool is_static = true;               // control plane entry: learning never overwrites it
  bool learned = false;                // written by the data plane

  static FdbEntry local(uint32_t ifindex, std::optional<MacAddr> rewrite = std::nullopt);
  static FdbEntry remote(net::Ipv4 vtep, uint16_t port = 0);
  bool operator==(const FdbEntry&) const = default;
};

struct PortConfig {
  Vni vni = 0;          // access VNI; ignored on the uplink
  bool uplink = false;  // underlay interface where VXLAN is decapsulated
  bool learn = true;    // learn source MACs seen on this port
  bool operator==(const PortConfig&) const = default;
};

// How to reach an underlay next hop: the outer Ethernet header and egress.
struct Neighbor {
  uint32_t ifindex = 0;
  MacAddr src_mac;
  MacAddr dst_mac;
  bool operator==(const Neighbor&) const = default;
};

struct VtepConfig {
  net::Ipv4 ip;                      // own underlay address (outer source)
  uint32_t uplink_ifindex = 0;       // where VXLAN arrives and leaves
  uint16_t udp_port = FDP_VXLAN_PORT;
  uint16_t mtu = 1500;               // uplink MTU; outer IPv4 packets must fit
  bool operator==(const VtepConfig&) const = default;
};

struct VniConfig {
  // Some remote VTEP takes this VNI's broadcast/multicast/unknown unicast:
  // the program copies such frames to the agent for head-end replication.
  bool remote_flood = false;
  bool operator==(const VniConfig&) const = default;
};

struct FloodRemoteKey {
  Vni vni = 0;
  net::Ipv4 vtep;
  auto operator<=>(const FloodRemoteKey&) const = default;
};

struct FloodRemote {
  uint16_t port = 0;  // 0 = the local VTEP's port
  bool operator==(const FloodRemote&) const = default;
};

// ---- counters ---------------------------------------------------------------

struct CounterValue {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  bool operator==(const CounterValue&) const = default;
};

// Sums over all CPUs of the per-CPU counters map.
struct Counters {
  std::array<CounterValue, FDP_COUNTER_MAX> values{};

  const CounterValue& operator[](fdp_counter c) const { return values.at(c); }
  uint64_t packets(fdp_counter c) const { return values.at(c).packets; }
  // Total of the verdict counters: one per frame the program saw.
  uint64_t frames() const;
  // Element-wise difference (this - earlier).
  Counters since(const Counters& earlier) const;
};

// Stable dotted names ("verdict.redirect", "drop.unknown_vni", "event.decap")
// used by stats output and tests; empty for an index out of range.
std::string_view counter_name(uint32_t index);

// "XDP_DROP" and friends; "XDP_<n>" for unknown values.
std::string xdp_verdict_name(uint32_t verdict);

}  // namespace foundry::dataplane
