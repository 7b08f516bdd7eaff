#include "foundry/net/ip.h"

#include <gtest/gtest.h>

using namespace foundry::net;

TEST(Derive, SeedExamples) {
  auto a = Ipv4::parse("10.55.22.22").value();
  EXPECT_EQ(derive_mac_from_ip(a), "be:ef:0a:37:16:16");
  EXPECT_EQ(derive_tap_name(a), "vm0a371616");
  EXPECT_EQ(derive_tap_name(Ipv4::parse("10.250.250.10").value()), "vm0afafa0a");
  EXPECT_EQ(derive_tap_name(Ipv4::parse("192.168.1.100").value()), "vmc0a80164");
}

TEST(Derive, TapAndMacRoundTripForEveryOctetValue) {
  for (int v = 0; v < 256; ++v) {
    Ipv4 ip{{static_cast<uint8_t>(v), static_cast<uint8_t>(255 - v), 7, static_cast<uint8_t>(v ^ 0x5a)}};
    auto tap = derive_tap_name(ip);
    EXPECT_EQ(tap.size(), 10u);
    EXPECT_EQ(ip_from_tap_name(tap), ip);
    EXPECT_EQ(ip_from_mac(derive_mac_from_ip(ip)), ip);
  }
}

TEST(Derive, ReverseRejectsOtherNames) {
  EXPECT_FALSE(ip_from_tap_name("eth0"));
  EXPECT_FALSE(ip_from_tap_name("vm0a37161"));
  EXPECT_FALSE(ip_from_tap_name("vm0A371616"));
  EXPECT_FALSE(ip_from_tap_name("vx0a371616"));
  EXPECT_FALSE(ip_from_mac("52:54:00:12:34:56"));
}

TEST(Ipv4, StrictParsing) {
  EXPECT_TRUE(Ipv4::parse("0.0.0.0"));
  EXPECT_TRUE(Ipv4::parse("255.255.255.255"));
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d",
                          "1..2.3", "1.2.3.4/24", "1234.1.1.1"})
    EXPECT_FALSE(Ipv4::parse(bad)) << bad;
}

TEST(Ipv4Cidr, ParseAndContain) {
  auto c = Ipv4Cidr::parse("10.20.30.40/24").value();
  EXPECT_EQ(c.prefix, 24);
  EXPECT_EQ(c.network().to_string(), "10.20.30.0");
  EXPECT_TRUE(c.contains(Ipv4::parse("10.20.30.1").value()));
  EXPECT_FALSE(c.contains(Ipv4::parse("10.20.31.1").value()));
  EXPECT_EQ(c.to_string(), "10.20.30.40/24");
  for (const char* bad : {"10.20.30.40", "10.20.30.40/", "10.20.30.40/33", "10.20.30.40/-1", "10.20.30.40/024",
                          "10.20.30.40/2a"})
    EXPECT_FALSE(Ipv4Cidr::parse(bad)) << bad;
  EXPECT_TRUE(Ipv4Cidr::parse("0.0.0.0/0"));
}

TEST(Ipv6, Recognized) {
  EXPECT_TRUE(is_ipv6("2001:db8::1"));
  EXPECT_FALSE(is_ipv6("10.0.0.1"));
  EXPECT_FALSE(is_ipv6("2001:db8::g"));
}
