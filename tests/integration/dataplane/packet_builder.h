// Builds test frames byte by byte, independently of the code under test:
// its own header layouts and its own RFC 1071 checksum, so a shared mistake
// cannot make a test pass.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "foundry/dataplane/types.h"
#include "foundry/net/ip.h"

namespace foundry::dataplane::testing {

using Bytes = std::vector<uint8_t>;

inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kTpid8021q = 0x8100;
inline constexpr uint16_t kTpid8021ad = 0x88a8;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

MacAddr mac(const char* s);            // aborts the test binary on a typo
net::Ipv4 ip(const char* s);

// RFC 1071 one's complement checksum over data (odd length padded).
uint16_t internet_checksum(std::span<const uint8_t> data);

Bytes ethernet(const MacAddr& dst, const MacAddr& src, uint16_t ethertype, const Bytes& payload);
Bytes vlan_ethernet(const MacAddr& dst, const MacAddr& src, uint16_t tpid, uint16_t vid, uint16_t ethertype,
                    const Bytes& payload);

struct Ipv4Header {
  net::Ipv4 src;
  net::Ipv4 dst;
  uint8_t protocol = kProtoUdp;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool dont_fragment = true;
  uint16_t frag_offset = 0;  // in 8-byte units
  bool more_fragments = false;
};
// IPv4 header (20 bytes, checksum filled in) followed by payload.
Bytes ipv4(const Ipv4Header& h, const Bytes& payload);
Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload);  // checksum 0
Bytes tcp_syn(uint16_t sport, uint16_t dport);                      // 20-byte header, no options
Bytes icmp_echo(uint16_t id, uint16_t seq, size_t payload_len);
Bytes arp_request(const MacAddr& sha, net::Ipv4 spa, net::Ipv4 tpa);
// VXLAN header (RFC 7348) + inner frame.
Bytes vxlan(uint32_t vni, const Bytes& inner, uint8_t flags = 0x08);

// A complete VXLAN-in-IPv4 frame as a VTEP would send it.
struct VxlanFrame {
  MacAddr outer_dst;
  MacAddr outer_src;
  net::Ipv4 outer_src_ip;
  net::Ipv4 outer_dst_ip;
  uint16_t sport = 49152;
  uint16_t dport = 4789;
  uint32_t vni = 0;
  uint8_t flags = 0x08;
};
Bytes vxlan_frame(const VxlanFrame& f, const Bytes& inner);

// Big-endian 16-bit read/write at offset.
uint16_t get16(const Bytes& b, size_t off);
void put16(Bytes& b, size_t off, uint16_t v);

// Readable comparison for test failures: the first differing offset and a
// hex dump of both around it; empty when equal.
std::string diff_bytes(const Bytes& want, const Bytes& got);

}  // namespace foundry::dataplane::testing
