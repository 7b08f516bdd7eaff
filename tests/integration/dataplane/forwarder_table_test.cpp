// Table-driven BPF_PROG_TEST_RUN tests of the XDP forwarder (after Katran's
// lib/testing): each row is an input frame, the interface it arrives on, an
// optional change to the maps, the verdict and reason counter we expect, and
// the frame we expect out of the program, byte for byte. Every row runs
// through both programs: foundry_forward (XDP) and foundry_tc (TC), which
// must agree on everything but how a verdict is spelled.
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "forwarder_fixture.h"

namespace foundry::dataplane::testing {
namespace {

struct Case {
  std::string name;
  std::string ingress;  // interface name in the fixture
  Bytes input;
  uint32_t verdict;
  fdp_counter reason;
  // Expected output; nullopt = the program's output is not checked (drops).
  std::optional<Bytes> output;
  // Events that must count exactly once (all others must stay at zero).
  std::vector<fdp_counter> events = {};
  // Extra map setup before the run.
  std::function<Status(Forwarder&, const Ports&)> setup = nullptr;
  // The output starts with outer headers whose UDP source port comes from
  // the flow hash: checked for range, then taken from the output.
  bool outer_sport_from_hash = false;
};

// gtest prints the parameter of a failing case; the name says it all.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

constexpr uint32_t kDrop = 1, kPass = 2, kTx = 3, kRedirect = 4;

Bytes encapsulated(const Bytes& inner, uint32_t vni, uint16_t dport = 4789) {
  VxlanFrame f;
  f.outer_dst = kMacPeerVtep;
  f.outer_src = kMacUplink;
  f.outer_src_ip = kVtepA;
  f.outer_dst_ip = kVtepB;
  f.sport = 0;  // replaced by the observed hash-derived port
  f.dport = dport;
  f.vni = vni;
  return vxlan_frame(f, inner);
}

Bytes with_bad_ip_checksum(Bytes b) {
  b.at(24) ^= 0x5a;  // outer IPv4 checksum field
  return b;
}

Bytes fragment_on_uplink() {
  Ipv4Header h;
  h.src = kVtepB;
  h.dst = kVtepA;
  h.protocol = kProtoUdp;
  h.dont_fragment = false;
  h.more_fragments = true;
  Bytes inner = icmp_frame(kMacB, kMacR, kIpR, kIpB);
  return ethernet(kMacUplink, kMacPeerVtep, kEtherIpv4, ipv4(h, udp(51000, 4789, vxlan(kVni, inner))));
}

Bytes outer_to_other_address() {
  VxlanFrame f;
  f.outer_dst = kMacUplink;
  f.outer_src = kMacPeerVtep;
  f.outer_src_ip = kVtepB;
  f.outer_dst_ip = ip("198.51.100.7");
  f.vni = kVni;
  return vxlan_frame(f, icmp_frame(kMacB, kMacR, kIpR, kIpB));
}

std::vector<Case> cases() {
  const Bytes a_to_b = icmp_frame(kMacB, kMacA, kIpA, kIpB);
  const Bytes a_to_r = icmp_frame(kMacR, kMacA, kIpA, kIpR);
  const Bytes r_to_b = icmp_frame(kMacB, kMacR, kIpR, kIpB);
  const Bytes arp_from_a = ethernet(kBroadcastMac, kMacA, kEtherArp, arp_request(kMacA, kIpA, kIpB));
  const Bytes arp_from_r = ethernet(kBroadcastMac, kMacR, kEtherArp, arp_request(kMacR, kIpR, kIpB));
  const MacAddr rewritten = mac("02:00:00:00:01:bb");
  const MacAddr remote_alt = mac("02:00:00:00:01:e1");
  const MacAddr remote_no_neigh = mac("02:00:00:00:01:e2");

  std::vector<Case> t;
  // --- access ports ---------------------------------------------------------
  t.push_back({"local_unicast_redirects_to_port", "p1", a_to_b, kRedirect, FDP_R_FWD_LOCAL, a_to_b,
               {FDP_E_LEARN_NEW}});
  {
    Bytes in = icmp_frame(rewritten, kMacA, kIpA, kIpB);
    t.push_back({"local_unicast_rewrites_destination_mac", "p1", in, kRedirect, FDP_R_FWD_LOCAL, a_to_b,
                 {FDP_E_LEARN_NEW}, [rewritten](Forwarder& fw, const Ports& p) {
                   return fw.fdb().put(FdbKey{kVni, rewritten}, FdbEntry::local(p.p2, kMacB));
                 }});
  }
  {
    Bytes in = icmp_frame(kMacX, kMacA, kIpA, kIpB);
    t.push_back({"unknown_unicast_floods_in_vni", "p1", in, kRedirect, FDP_R_FLOOD_LOCAL, in, {FDP_E_LEARN_NEW}});
  }
  t.push_back({"broadcast_floods_in_vni", "p1", arp_from_a, kRedirect, FDP_R_FLOOD_LOCAL, arp_from_a,
               {FDP_E_LEARN_NEW}});
  {
    Bytes in = udp_frame(mac("01:00:5e:00:00:fb"), kMacA, kIpA, ip("224.0.0.251"), 5353, 5353);
    t.push_back({"multicast_floods_in_vni", "p1", in, kRedirect, FDP_R_FLOOD_LOCAL, in, {FDP_E_LEARN_NEW}});
  }
  {
    // kMacB is known in VNI 100 only: from VNI 200 it is unknown unicast.
    Bytes in = icmp_frame(kMacB, kMacC, kIpA, kIpB);
    t.push_back({"other_vni_does_not_see_vni_100_entries", "p3", in, kRedirect, FDP_R_FLOOD_LOCAL, in,
                 {FDP_E_LEARN_NEW}});
  }
  {
    Bytes in = icmp_frame(kMacB, kMacX, kIpA, kIpB);
    t.push_back({"destination_on_ingress_port_dropped", "p2", in, kDrop, FDP_R_DROP_SAME_PORT, std::nullopt,
                 {FDP_E_LEARN_NEW}});
  }
  t.push_back({"remote_unicast_encapsulated", "p1", a_to_r, kRedirect, FDP_R_ENCAP, encapsulated(a_to_r, kVni),
               {FDP_E_LEARN_NEW}, nullptr, true});
  {
    // Not IP: TC encapsulates it with bpf_skb_change_head instead of
    // bpf_skb_adjust_room (which takes only IPv4/IPv6); same bytes either way.
    Bytes in = ethernet(kMacR, kMacA, kEtherArp, arp_request(kMacA, kIpA, kIpR));
    t.push_back({"remote_unicast_arp_encapsulated", "p1", in, kRedirect, FDP_R_ENCAP, encapsulated(in, kVni),
                 {FDP_E_LEARN_NEW}, nullptr, true});
  }
  {
    Bytes in = icmp_frame(remote_alt, kMacA, kIpA, kIpR);
    t.push_back({"remote_entry_port_used_as_destination_port", "p1", in, kRedirect, FDP_R_ENCAP,
                 encapsulated(in, kVni, 8472), {FDP_E_LEARN_NEW},
                 [remote_alt](Forwarder& fw, const Ports&) {
                   return fw.fdb().put(FdbKey{kVni, remote_alt}, FdbEntry::remote(kVtepB, 8472));
                 },
                 true});
  }
  {
    Bytes in = icmp_frame(kMacR, kMacC, kIpA, kIpR);
    t.push_back({"remote_in_vni_200_carries_vni_200", "p3", in, kRedirect, FDP_R_ENCAP,
                 encapsulated(in, kOtherVni), {FDP_E_LEARN_NEW},
                 [](Forwarder& fw, const Ports&) {
                   return fw.fdb().put(FdbKey{kOtherVni, kMacR}, FdbEntry::remote(kVtepB));
                 },
                 true});
  }
  {
    // When the next hop is reached through the interface the frame came in
    // on, the encapsulated frame goes back out of it with XDP_TX.
    Bytes in = icmp_frame(kMacR, kMacA, kIpA, kIpR);
    t.push_back({"encapsulation_back_out_of_ingress_uses_xdp_tx", "p1", in, kTx, FDP_R_ENCAP,
                 encapsulated(in, kVni), {FDP_E_LEARN_NEW},
                 [](Forwarder& fw, const Ports& p) {
                   return fw.add_neighbor(kVtepB, Neighbor{p.p1, kMacUplink, kMacPeerVtep});
                 },
                 true});
  }
  {
    Bytes in = icmp_frame(remote_no_neigh, kMacA, kIpA, kIpR);
    t.push_back({"remote_without_next_hop_dropped", "p1", in, kDrop, FDP_R_DROP_NO_NEIGH, std::nullopt,
                 {FDP_E_LEARN_NEW}, [remote_no_neigh](Forwarder& fw, const Ports&) {
                   return fw.fdb().put(FdbKey{kVni, remote_no_neigh}, FdbEntry::remote(ip("198.51.100.3")));
                 }});
  }
  t.push_back({"remote_without_vtep_dropped", "p1", a_to_r, kDrop, FDP_R_DROP_NO_VTEP, std::nullopt,
               {FDP_E_LEARN_NEW}, [](Forwarder& fw, const Ports&) { return fw.clear_vtep(); }});
  {
    // Outer IPv4 = inner frame + 36: a 1464-byte frame fits a 1500 MTU...
    Bytes fits = icmp_frame(kMacR, kMacA, kIpA, kIpR, 1464 - 14 - 20 - 8);
    t.push_back({"encapsulation_filling_mtu_exactly_sent", "p1", fits, kRedirect, FDP_R_ENCAP,
                 encapsulated(fits, kVni), {FDP_E_LEARN_NEW}, nullptr, true});
    // ...and one byte more does not.
    Bytes big = icmp_frame(kMacR, kMacA, kIpA, kIpR, 1465 - 14 - 20 - 8);
    t.push_back({"encapsulation_over_mtu_dropped", "p1", big, kDrop, FDP_R_DROP_TOO_BIG, std::nullopt,
                 {FDP_E_LEARN_NEW}});
  }
  {
    Ipv4Header h;
    h.src = kIpA;
    h.dst = kIpB;
    h.protocol = kProtoIcmp;
    Bytes q = vlan_ethernet(kMacB, kMacA, kTpid8021q, 10, kEtherIpv4, ipv4(h, icmp_echo(1, 1, 8)));
    t.push_back({"vlan_tagged_frame_from_container_dropped", "p1", q, kDrop, FDP_R_DROP_VLAN, std::nullopt});
    Bytes ad = vlan_ethernet(kMacB, kMacA, kTpid8021ad, 10, kEtherIpv4, ipv4(h, icmp_echo(1, 1, 8)));
    t.push_back({"qinq_tagged_frame_from_container_dropped", "p1", ad, kDrop, FDP_R_DROP_VLAN, std::nullopt});
  }
  t.push_back({"multicast_source_mac_dropped", "p1", icmp_frame(kMacB, mac("01:00:00:00:00:01"), kIpA, kIpB),
               kDrop, FDP_R_DROP_BAD_SRC_MAC, std::nullopt});
  t.push_back({"zero_source_mac_dropped", "p1", icmp_frame(kMacB, MacAddr{}, kIpA, kIpB), kDrop,
               FDP_R_DROP_BAD_SRC_MAC, std::nullopt});
  t.push_back({"frame_on_interface_that_is_no_port_passes", "p1c", a_to_b, kPass, FDP_R_PASS_NOT_PORT, a_to_b});
  t.push_back({"learning_off_learns_nothing", "p1", a_to_b, kRedirect, FDP_R_FWD_LOCAL, a_to_b, {},
               [](Forwarder& fw, const Ports& p) { return fw.add_port(p.p1, PortConfig{kVni, false, false}); }});
  t.push_back({"bum_with_remote_flood_but_no_agent_counts_lost_copy", "p1", arp_from_a, kRedirect,
               FDP_R_FLOOD_LOCAL, arp_from_a, {FDP_E_LEARN_NEW, FDP_E_BUM_LOST},
               [](Forwarder& fw, const Ports&) { return fw.add_flood_remote(kVni, kVtepB); }});

  // --- uplink -----------------------------------------------------------------
  t.push_back({"vxlan_to_local_mac_decapsulated_and_redirected", "ul", from_peer_vtep(kVni, r_to_b), kRedirect,
               FDP_R_FWD_LOCAL, r_to_b, {FDP_E_DECAP}});
  t.push_back({"vxlan_broadcast_decapsulated_and_flooded", "ul", from_peer_vtep(kVni, arp_from_r), kRedirect,
               FDP_R_FLOOD_LOCAL, arp_from_r, {FDP_E_DECAP}});
  t.push_back({"vxlan_broadcast_never_goes_back_to_the_agent", "ul", from_peer_vtep(kVni, arp_from_r), kRedirect,
               FDP_R_FLOOD_LOCAL, arp_from_r, {FDP_E_DECAP},
               [](Forwarder& fw, const Ports&) { return fw.add_flood_remote(kVni, kVtepB); }});
  {
    Bytes inner = icmp_frame(kMacX, kMacR, kIpR, kIpB);
    t.push_back({"vxlan_unknown_unicast_flooded", "ul", from_peer_vtep(kVni, inner), kRedirect, FDP_R_FLOOD_LOCAL,
                 inner, {FDP_E_DECAP}});
  }
  {
    Bytes inner = icmp_frame(kMacR, kMacX, kIpB, kIpR);
    t.push_back({"vxlan_to_remote_mac_dropped_by_split_horizon", "ul", from_peer_vtep(kVni, inner), kDrop,
                 FDP_R_DROP_SPLIT_HORIZON, std::nullopt, {FDP_E_DECAP}});
  }
  t.push_back({"vxlan_unknown_vni_dropped", "ul", from_peer_vtep(999, r_to_b), kDrop, FDP_R_DROP_UNKNOWN_VNI, std::nullopt});
  t.push_back({"vxlan_vni_without_local_ports_dropped", "ul", from_peer_vtep(300, arp_from_r), kDrop,
               FDP_R_DROP_NO_FLOOD_GROUP, std::nullopt, {FDP_E_DECAP},
               [](Forwarder& fw, const Ports&) { return fw.vnis().put(300, VniConfig{}); }});
  t.push_back({"vxlan_without_i_flag_dropped", "ul", from_peer_vtep(kVni, r_to_b, 4789, 0x00), kDrop,
               FDP_R_DROP_BAD_VXLAN, std::nullopt});
  t.push_back({"vxlan_with_bad_outer_checksum_dropped", "ul", with_bad_ip_checksum(from_peer_vtep(kVni, r_to_b)),
               kDrop, FDP_R_DROP_BAD_CSUM, std::nullopt});
  {
    Bytes padded = from_peer_vtep(kVni, r_to_b);
    padded.insert(padded.end(), 6, 0);
    t.push_back({"vxlan_link_padding_trimmed_from_inner_frame", "ul", padded, kRedirect, FDP_R_FWD_LOCAL, r_to_b,
                 {FDP_E_DECAP}});
  }
  {
    Ipv4Header h;
    h.src = kIpR;
    h.dst = kIpB;
    h.protocol = kProtoIcmp;
    Bytes inner = vlan_ethernet(kMacB, kMacR, kTpid8021q, 7, kEtherIpv4, ipv4(h, icmp_echo(1, 1, 8)));
    t.push_back({"vxlan_with_vlan_tagged_inner_frame_dropped", "ul", from_peer_vtep(kVni, inner), kDrop,
                 FDP_R_DROP_VLAN, std::nullopt, {FDP_E_DECAP}});
  }
  {
    Bytes in = from_peer_vtep(kVni, r_to_b, 8472);
    t.push_back({"vxlan_to_another_udp_port_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Bytes in = udp_frame(kMacUplink, kMacPeerVtep, kVtepB, kVtepA, 40000, 53);
    t.push_back({"plain_udp_on_uplink_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Bytes in = outer_to_other_address();
    t.push_back({"vxlan_for_another_address_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Bytes in = ethernet(kBroadcastMac, kMacPeerVtep, kEtherArp, arp_request(kMacPeerVtep, kVtepB, kVtepA));
    t.push_back({"arp_on_uplink_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Bytes in = fragment_on_uplink();
    t.push_back({"fragmented_vxlan_passes_to_kernel_reassembly", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Ipv4Header h;
    h.src = kVtepB;
    h.dst = kVtepA;
    h.protocol = kProtoUdp;
    Bytes in = vlan_ethernet(kMacUplink, kMacPeerVtep, kTpid8021q, 5, kEtherIpv4,
                             ipv4(h, udp(51000, 4789, vxlan(kVni, r_to_b))));
    t.push_back({"vlan_tagged_frame_on_uplink_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  {
    Bytes in = ethernet(kMacUplink, kMacPeerVtep, kEtherIpv6, Bytes(60, 0));
    t.push_back({"ipv6_on_uplink_passes", "ul", in, kPass, FDP_R_PASS_NOT_VXLAN, in});
  }
  t.push_back({"vxlan_after_vtep_cleared_passes_as_no_port", "ul", from_peer_vtep(kVni, r_to_b), kPass,
               FDP_R_PASS_NOT_PORT, from_peer_vtep(kVni, r_to_b), {},
               [](Forwarder& fw, const Ports&) { return fw.clear_vtep(); }});
  return t;
}

bool is_event(uint32_t c) { return c >= FDP_E_DECAP && c < FDP_COUNTER_MAX; }
bool is_reason(uint32_t c) { return c > FDP_V_REDIRECT && c < FDP_E_DECAP; }

constexpr uint32_t kTcOk = 0, kTcShot = 2, kTcRedirect = 7;

// What foundry_tc returns where foundry_forward returns c.verdict. A flood
// is one redirect in XDP (devmap broadcast); in TC the copies go out with
// bpf_clone_redirect and the original is dropped. The counters are the same.
uint32_t tc_action(const Case& c) {
  if (c.reason == FDP_R_FLOOD_LOCAL) return kTcShot;
  switch (c.verdict) {
    case kRedirect: return kTcRedirect;
    case kPass: return kTcOk;
    default: return kTcShot;
  }
}

class ForwarderTable : public ForwarderFixture, public ::testing::WithParamInterface<Case> {
 protected:
  void check(const Case& c, bool tc);
};

TEST_P(ForwarderTable, Run) { check(GetParam(), false); }

TEST_P(ForwarderTable, RunTc) {
  // XDP_TX (out of the ingress interface) has no TC counterpart: foundry_tc
  // is on ingress of a container port, the next hop is behind the uplink.
  if (GetParam().verdict == kTx) return;
  check(GetParam(), true);
}

void ForwarderTable::check(const Case& c, bool tc) {
  if (c.setup) FOUNDRY_ASSERT_OK(c.setup(*fw_, ports_));
  Counters before = counters();

  auto r = tc ? run_tc_prog(c.ingress, c.input) : run(c.ingress, c.input);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  if (tc)
    EXPECT_EQ(r->verdict, tc_action(c)) << "TC action (0 ok, 2 shot, 7 redirect)";
  else
    EXPECT_EQ(xdp_verdict_name(r->verdict), xdp_verdict_name(c.verdict));

  Counters d = counters().since(before);
  EXPECT_EQ(d.frames(), 1u) << "each frame counts exactly one verdict";
  EXPECT_EQ(d.packets(static_cast<fdp_counter>(c.verdict)), 1u);
  std::set<uint32_t> events(c.events.begin(), c.events.end());
  for (uint32_t i = FDP_R_FWD_LOCAL; i < FDP_COUNTER_MAX; ++i) {
    uint64_t want = 0;
    if (i == static_cast<uint32_t>(c.reason)) want = 1;
    if (is_event(i) && events.count(i)) want = 1;
    EXPECT_EQ(d.values[i].packets, want) << "counter " << counter_name(i);
  }
  ASSERT_TRUE(is_reason(c.reason));

  if (!c.output) return;
  Bytes want = *c.output;
  const Bytes& got = r->frame;
  if (c.outer_sport_from_hash) {
    ASSERT_GE(got.size(), 50u);
    uint16_t sport = get16(got, 34);
    EXPECT_GE(sport, 49152) << "RFC 7348: source port from the dynamic range";
    put16(want, 34, sport);
    // Checked here with the test's own arithmetic, not only by comparison.
    EXPECT_EQ(internet_checksum(std::span<const uint8_t>(got.data() + 14, 20)), 0)
        << "outer IPv4 header checksum does not verify";
    EXPECT_EQ(get16(got, 16), got.size() - 14) << "outer IPv4 total length";
    EXPECT_EQ(get16(got, 38), got.size() - 34) << "UDP length";
  }
  EXPECT_TRUE(want == got) << diff_bytes(want, got);
}

INSTANTIATE_TEST_SUITE_P(Frames, ForwarderTable, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace foundry::dataplane::testing
