// The data plane's value types and their byte layouts, without the kernel.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "foundry/dataplane/maps.h"
#include "foundry/dataplane/types.h"

namespace foundry::dataplane {
namespace {

TEST(MacAddr, ParsesAndFormats) {
  auto m = MacAddr::parse("be:EF:0a:37:16:16");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->to_string(), "be:ef:0a:37:16:16");
  EXPECT_FALSE(m->is_multicast());
  EXPECT_TRUE(MacAddr::parse("ff:ff:ff:ff:ff:ff")->is_multicast());
  EXPECT_TRUE(MacAddr::parse("01:00:5e:00:00:01")->is_multicast());
  EXPECT_TRUE(MacAddr::parse("00:00:00:00:00:00")->is_zero());
}

TEST(MacAddr, RejectsMalformed) {
  for (const char* bad : {"", "be:ef:0a:37:16", "be:ef:0a:37:16:16:00", "be-ef-0a-37-16-16", "be:ef:0a:37:16:1g",
                          "bee:f:0a:37:16:16", " be:ef:0a:37:16:16", "be:ef:0a:37:16:16 "})
    EXPECT_FALSE(MacAddr::parse(bad).has_value()) << bad;
}

TEST(Vni, Is24Bits) {
  EXPECT_TRUE(validate_vni(0).has_value());
  EXPECT_TRUE(validate_vni(16777215).has_value());
  auto r = validate_vni(16777216);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().to_string().find("16777216"), std::string::npos);
  EXPECT_NE(r.error().hint().find("16777215"), std::string::npos);
}

TEST(Codec, FdbKeyPaddingIsZeroAndLayoutIsVniThenMac) {
  FdbKey k{0x123456, *MacAddr::parse("02:00:00:00:01:0a")};
  fdp_fdb_key a = MapCodec<FdbKey>::encode(k);
  unsigned char raw[sizeof(a)];
  std::memcpy(raw, &a, sizeof(a));
  uint32_t vni;
  std::memcpy(&vni, raw, 4);
  EXPECT_EQ(vni, 0x123456u);
  EXPECT_EQ(raw[4], 0x02);
  EXPECT_EQ(raw[9], 0x0a);
  EXPECT_EQ(raw[10], 0);
  EXPECT_EQ(raw[11], 0);
  EXPECT_EQ(MapCodec<FdbKey>::decode(a), k);
}

TEST(Codec, FdbEntriesRoundTrip) {
  FdbEntry local = FdbEntry::local(7, MacAddr::parse("02:00:00:00:00:01"));
  fdp_fdb_entry a = MapCodec<FdbEntry>::encode(local);
  EXPECT_EQ(a.type, FDP_FDB_LOCAL);
  EXPECT_EQ(a.flags, FDP_FDB_F_STATIC | FDP_FDB_F_REWRITE);
  EXPECT_EQ(MapCodec<FdbEntry>::decode(a), local);

  FdbEntry remote = FdbEntry::remote(*net::Ipv4::parse("198.51.100.2"), 8472);
  fdp_fdb_entry b = MapCodec<FdbEntry>::encode(remote);
  EXPECT_EQ(b.type, FDP_FDB_REMOTE);
  unsigned char ip[4];
  std::memcpy(ip, &b.remote_ip, 4);
  EXPECT_EQ(ip[0], 198);  // network order in memory
  EXPECT_EQ(ip[3], 2);
  EXPECT_EQ(b.remote_port, 8472);
  EXPECT_EQ(MapCodec<FdbEntry>::decode(b), remote);
}

TEST(Codec, PortsVtepNeighboursRoundTrip) {
  PortConfig p{42, false, true};
  EXPECT_EQ(MapCodec<PortConfig>::decode(MapCodec<PortConfig>::encode(p)), p);
  PortConfig up{0, true, false};
  EXPECT_EQ(MapCodec<PortConfig>::encode(up).flags, static_cast<__u32>(FDP_PORT_F_UPLINK));
  VtepConfig v{*net::Ipv4::parse("198.51.100.1"), 3, 4789, 9000};
  EXPECT_EQ(MapCodec<VtepConfig>::decode(MapCodec<VtepConfig>::encode(v)), v);
  Neighbor n{5, *MacAddr::parse("02:00:00:00:00:01"), *MacAddr::parse("02:00:00:00:00:02")};
  EXPECT_EQ(MapCodec<Neighbor>::decode(MapCodec<Neighbor>::encode(n)), n);
  FloodRemoteKey fk{9, *net::Ipv4::parse("198.51.100.9")};
  EXPECT_EQ(MapCodec<FloodRemoteKey>::decode(MapCodec<FloodRemoteKey>::encode(fk)), fk);
}

TEST(Counters, EveryCounterHasAUniqueName) {
  std::set<std::string> names;
  for (uint32_t i = 0; i < FDP_COUNTER_MAX; ++i) {
    std::string n(counter_name(i));
    EXPECT_FALSE(n.empty()) << "counter " << i << " has no name";
    EXPECT_TRUE(names.insert(n).second) << "duplicate name " << n;
  }
  EXPECT_TRUE(counter_name(FDP_COUNTER_MAX).empty());
}

TEST(Counters, FramesSumVerdictsAndSinceSubtracts) {
  Counters a, b;
  b.values[FDP_V_DROP].packets = 2;
  b.values[FDP_V_REDIRECT].packets = 3;
  b.values[FDP_R_FWD_LOCAL].packets = 3;
  EXPECT_EQ(b.frames(), 5u);
  a.values[FDP_V_DROP].packets = 1;
  EXPECT_EQ(b.since(a).frames(), 4u);
}

TEST(Verdicts, HaveKernelNames) {
  EXPECT_EQ(xdp_verdict_name(2), "XDP_PASS");
  EXPECT_EQ(xdp_verdict_name(4), "XDP_REDIRECT");
  EXPECT_EQ(xdp_verdict_name(9), "XDP_9");
}

}  // namespace
}  // namespace foundry::dataplane
