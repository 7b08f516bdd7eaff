// IPv4 addresses and prefixes, and the names Foundry derives from them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace foundry::net {

struct Ipv4 {
  std::array<uint8_t, 4> octets{};
  // Strict dotted quad: four decimal octets 0-255, no leading zeros or spaces.
  static std::optional<Ipv4> parse(std::string_view s);
  uint32_t to_u32() const;  // host order
  static Ipv4 from_u32(uint32_t v);
  std::string to_string() const;
  auto operator<=>(const Ipv4&) const = default;
};

struct Ipv4Cidr {
  Ipv4 addr;
  int prefix = 32;
  // "a.b.c.d/n" with 0 <= n <= 32; the prefix is required.
  static std::optional<Ipv4Cidr> parse(std::string_view s);
  Ipv4 network() const;
  bool contains(Ipv4 ip) const;
  std::string to_string() const;  // "a.b.c.d/n"
  auto operator<=>(const Ipv4Cidr&) const = default;
};

// True for a syntactically valid IPv6 address (inet_pton).
bool is_ipv6(std::string_view s);

// Seed 001: MAC "be:ef:" followed by the four IP octets in hex.
// 10.55.22.22 -> be:ef:0a:37:16:16
std::string derive_mac_from_ip(Ipv4 ip);

// Seed 001: tap name "vm" followed by the four IP octets in hex (10 chars).
// 10.55.22.22 -> vm0a371616
std::string derive_tap_name(Ipv4 ip);

// The reverse of derive_tap_name; nullopt for anything that is not one.
std::optional<Ipv4> ip_from_tap_name(std::string_view tap);

// The reverse of derive_mac_from_ip; nullopt for MACs without the be:ef prefix.
std::optional<Ipv4> ip_from_mac(std::string_view mac);

}  // namespace foundry::net
