#include "packet_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace foundry::dataplane::testing {

namespace {

void push16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v & 0xff));
}

void push_mac(Bytes& b, const MacAddr& m) { b.insert(b.end(), m.bytes.begin(), m.bytes.end()); }

void push_ip(Bytes& b, net::Ipv4 a) { b.insert(b.end(), a.octets.begin(), a.octets.end()); }

void append(Bytes& b, const Bytes& tail) { b.insert(b.end(), tail.begin(), tail.end()); }

}  // namespace

MacAddr mac(const char* s) {
  auto m = MacAddr::parse(s);
  if (!m) {
    std::cerr << "packet_builder: bad MAC literal " << s << "\n";
    std::abort();
  }
  return *m;
}

net::Ipv4 ip(const char* s) {
  auto a = net::Ipv4::parse(s);
  if (!a) {
    std::cerr << "packet_builder: bad IPv4 literal " << s << "\n";
    std::abort();
  }
  return *a;
}

uint16_t internet_checksum(std::span<const uint8_t> data) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < data.size(); i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (data.size() % 2) sum += static_cast<uint32_t>(data.back() << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

Bytes ethernet(const MacAddr& dst, const MacAddr& src, uint16_t ethertype, const Bytes& payload) {
  Bytes b;
  push_mac(b, dst);
  push_mac(b, src);
  push16(b, ethertype);
  append(b, payload);
  return b;
}

Bytes vlan_ethernet(const MacAddr& dst, const MacAddr& src, uint16_t tpid, uint16_t vid, uint16_t ethertype,
                    const Bytes& payload) {
  Bytes b;
  push_mac(b, dst);
  push_mac(b, src);
  push16(b, tpid);
  push16(b, vid & 0x0fff);
  push16(b, ethertype);
  append(b, payload);
  return b;
}

Bytes ipv4(const Ipv4Header& h, const Bytes& payload) {
  Bytes b;
  b.push_back(0x45);
  b.push_back(h.tos);
  push16(b, static_cast<uint16_t>(20 + payload.size()));
  push16(b, h.id);
  uint16_t frag = static_cast<uint16_t>((h.dont_fragment ? 0x4000 : 0) | (h.more_fragments ? 0x2000 : 0) |
                                        (h.frag_offset & 0x1fff));
  push16(b, frag);
  b.push_back(h.ttl);
  b.push_back(h.protocol);
  push16(b, 0);
  push_ip(b, h.src);
  push_ip(b, h.dst);
  put16(b, 10, internet_checksum(std::span<const uint8_t>(b.data(), 20)));
  append(b, payload);
  return b;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes b;
  push16(b, sport);
  push16(b, dport);
  push16(b, static_cast<uint16_t>(8 + payload.size()));
  push16(b, 0);
  append(b, payload);
  return b;
}

Bytes tcp_syn(uint16_t sport, uint16_t dport) {
  Bytes b;
  push16(b, sport);
  push16(b, dport);
  for (int i = 0; i < 8; ++i) b.push_back(0);  // seq, ack
  b.push_back(0x50);                             // data offset 5
  b.push_back(0x02);                             // SYN
  push16(b, 65535);                              // window
  push16(b, 0);                                  // checksum (not checked by XDP)
  push16(b, 0);                                  // urgent
  return b;
}

Bytes icmp_echo(uint16_t id, uint16_t seq, size_t payload_len) {
  Bytes b{8, 0, 0, 0};
  push16(b, id);
  push16(b, seq);
  for (size_t i = 0; i < payload_len; ++i) b.push_back(static_cast<uint8_t>(i));
  put16(b, 2, internet_checksum(b));
  return b;
}

Bytes arp_request(const MacAddr& sha, net::Ipv4 spa, net::Ipv4 tpa) {
  Bytes b;
  push16(b, 1);       // Ethernet
  push16(b, 0x0800);  // IPv4
  b.push_back(6);
  b.push_back(4);
  push16(b, 1);  // request
  push_mac(b, sha);
  push_ip(b, spa);
  push_mac(b, MacAddr{});
  push_ip(b, tpa);
  return b;
}

Bytes vxlan(uint32_t vni, const Bytes& inner, uint8_t flags) {
  Bytes b{flags, 0, 0, 0};
  b.push_back(static_cast<uint8_t>(vni >> 16));
  b.push_back(static_cast<uint8_t>(vni >> 8));
  b.push_back(static_cast<uint8_t>(vni));
  b.push_back(0);
  append(b, inner);
  return b;
}

Bytes vxlan_frame(const VxlanFrame& f, const Bytes& inner) {
  Ipv4Header h;
  h.src = f.outer_src_ip;
  h.dst = f.outer_dst_ip;
  h.protocol = kProtoUdp;
  return ethernet(f.outer_dst, f.outer_src, kEtherIpv4, ipv4(h, udp(f.sport, f.dport, vxlan(f.vni, inner, f.flags))));
}

uint16_t get16(const Bytes& b, size_t off) { return static_cast<uint16_t>(b.at(off) << 8 | b.at(off + 1)); }

void put16(Bytes& b, size_t off, uint16_t v) {
  b.at(off) = static_cast<uint8_t>(v >> 8);
  b.at(off + 1) = static_cast<uint8_t>(v & 0xff);
}

std::string diff_bytes(const Bytes& want, const Bytes& got) {
  if (want == got) return {};
  size_t n = std::min(want.size(), got.size());
  size_t at = 0;
  while (at < n && want[at] == got[at]) ++at;
  auto dump = [&](const Bytes& b) {
    std::string s;
    size_t from = at >= 8 ? at - 8 : 0;
    for (size_t i = from; i < std::min(b.size(), at + 16); ++i)
      s += i == at ? fmt::format("[{:02x}]", b[i]) : fmt::format(" {:02x}", b[i]);
    return s;
  };
  return fmt::format("sizes want {} got {}; first difference at offset {}\n  want:{}\n  got: {}", want.size(),
                     got.size(), at, dump(want), dump(got));
}

}  // namespace foundry::dataplane::testing
