#include "foundry/net/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include <fmt/format.h>

namespace foundry::net {

std::optional<Ipv4> Ipv4::parse(std::string_view s) {
  Ipv4 ip;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
    size_t n = 0;
    while (n < s.size() && n < 4 && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0 || n > 3) return std::nullopt;
    if (n > 1 && s[0] == '0') return std::nullopt;  // "010" is ambiguous (octal?)
    unsigned v = 0;
    std::from_chars(s.data(), s.data() + n, v);
    if (v > 255) return std::nullopt;
    ip.octets[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
    s.remove_prefix(n);
  }
  if (!s.empty()) return std::nullopt;
  return ip;
}

uint32_t Ipv4::to_u32() const {
  return (uint32_t{octets[0]} << 24) | (uint32_t{octets[1]} << 16) | (uint32_t{octets[2]} << 8) | octets[3];
}

Ipv4 Ipv4::from_u32(uint32_t v) {
  return Ipv4{{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
               static_cast<uint8_t>(v)}};
}

std::string Ipv4::to_string() const {
  return fmt::format("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = Ipv4::parse(s.substr(0, slash));
  if (!ip) return std::nullopt;
  auto p = s.substr(slash + 1);
  if (p.empty() || p.size() > 2 || (p.size() == 2 && p[0] == '0')) return std::nullopt;
  int prefix = -1;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || ptr != p.data() + p.size() || prefix < 0 || prefix > 32) return std::nullopt;
  return Ipv4Cidr{*ip, prefix};
}

Ipv4 Ipv4Cidr::network() const {
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return Ipv4::from_u32(addr.to_u32() & mask);
}

bool Ipv4Cidr::contains(Ipv4 ip) const {
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (ip.to_u32() & mask) == (addr.to_u32() & mask);
}

std::string Ipv4Cidr::to_string() const { return fmt::format("{}/{}", addr.to_string(), prefix); }

bool is_ipv6(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  return ::inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

std::string derive_mac_from_ip(Ipv4 ip) {
  return fmt::format("be:ef:{:02x}:{:02x}:{:02x}:{:02x}", ip.octets[0], ip.octets[1], ip.octets[2], ip.octets[3]);
}

std::string derive_tap_name(Ipv4 ip) {
  return fmt::format("vm{:02x}{:02x}{:02x}{:02x}", ip.octets[0], ip.octets[1], ip.octets[2], ip.octets[3]);
}

static std::optional<uint8_t> hex_byte(std::string_view s) {
  if (s.size() != 2) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
    else return std::nullopt;  // names and MACs are always lowercase
  }
  return static_cast<uint8_t>(v);
}

std::optional<Ipv4> ip_from_tap_name(std::string_view tap) {
  if (tap.size() != 10 || tap.substr(0, 2) != "vm") return std::nullopt;
  Ipv4 ip;
  for (size_t i = 0; i < 4; ++i) {
    auto b = hex_byte(tap.substr(2 + 2 * i, 2));
    if (!b) return std::nullopt;
    ip.octets[i] = *b;
  }
  return ip;
}

std::optional<Ipv4> ip_from_mac(std::string_view mac) {
  if (mac.size() != 17 || mac.substr(0, 6) != "be:ef:") return std::nullopt;
  Ipv4 ip;
  for (size_t i = 0; i < 4; ++i) {
    if (i < 3 && mac[6 + 3 * i + 2] != ':') return std::nullopt;
    auto b = hex_byte(mac.substr(6 + 3 * i, 2));
    if (!b) return std::nullopt;
    ip.octets[i] = *b;
  }
  return ip;
}

}  // namespace foundry::net
