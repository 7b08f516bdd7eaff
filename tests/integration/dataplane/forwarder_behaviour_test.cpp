// BPF_PROG_TEST_RUN tests that need more than one run: truncated frames of
// every length, MAC learning, the flow hash, and the map bookkeeping behind
// ports and flood groups.
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "forwarder_fixture.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/learn_watcher.h"
#include "foundry/dataplane/xdp.h"

namespace foundry::dataplane::testing {
namespace {

constexpr uint32_t kDrop = 1, kPass = 2, kRedirect = 4;

class ForwarderBehaviour : public ForwarderFixture {
 protected:
  // Runs every prefix of frame, 0 to 128 bytes, on ingress. Below an
  // Ethernet header the kernel refuses to run the program at all (EINVAL)
  // and nothing is counted; from 14 bytes on, expect(len) gives the verdict
  // and reason that must be counted, exactly one verdict per run.
  template <typename Expect>
  void sweep_truncations(const std::string& ingress, const Bytes& frame, Expect expect) {
    ASSERT_GT(frame.size(), 128u) << "the frame must be longer than every prefix tested";
    for (size_t len = 0; len <= 128; ++len) {
      SCOPED_TRACE("length " + std::to_string(len));
      Bytes cut(frame.begin(), frame.begin() + static_cast<long>(len));
      Counters before = counters();
      auto r = run(ingress, cut);
      Counters d = counters().since(before);
      if (len < 14) {
        ASSERT_FALSE(r.has_value()) << "the kernel ran the program on a " << len << "-byte frame";
        EXPECT_EQ(r.error().sys_errno(), EINVAL);
        EXPECT_EQ(d.frames(), 0u);
        continue;
      }
      ASSERT_TRUE(r.has_value()) << r.error().to_string();
      auto [verdict, reason] = expect(len, *r);
      EXPECT_EQ(xdp_verdict_name(r->verdict), xdp_verdict_name(verdict));
      EXPECT_EQ(d.frames(), 1u);
      EXPECT_EQ(d.packets(reason), 1u) << "reason " << counter_name(reason);
    }
  }

  std::optional<FdbEntry> fdb_get(Vni vni, const MacAddr& m) {
    auto e = fw_->fdb().get(FdbKey{vni, m});
    EXPECT_TRUE(e.has_value()) << e.error().to_string();
    return e ? *e : std::nullopt;
  }
};

// A VXLAN frame on the uplink cut short anywhere: until the UDP destination
// port is visible the frame cannot be told from other traffic and goes to
// the kernel (which discards runts itself); from then on it is ours and
// anything short of a whole packet is dropped as malformed.
TEST_F(ForwarderBehaviour, TruncatedVxlanFramesOnUplinkPassOrDrop) {
  Bytes frame = from_peer_vtep(kVni, icmp_frame(kMacB, kMacR, kIpR, kIpB));
  ASSERT_EQ(frame.size(), 148u);
  sweep_truncations("ul", frame, [](size_t len, const XdpRunResult&) {
    if (len < 14 + 20 + 8) return std::pair<uint32_t, fdp_counter>{kPass, FDP_R_PASS_NOT_VXLAN};
    return std::pair<uint32_t, fdp_counter>{kDrop, FDP_R_DROP_MALFORMED};
  });
}

// A frame from a container to a remote MAC, cut short anywhere: the
// forwarder switches on the Ethernet header alone, as an L2 switch does, so
// every frame with a whole Ethernet header is encapsulated, and the outer
// lengths must describe exactly the bytes that were there (the flow hash
// must not read past the end either; the verifier guarantees that, this
// checks the lengths).
TEST_F(ForwarderBehaviour, TruncatedContainerFramesEncapsulateWithExactLengths) {
  Bytes frame = icmp_frame(kMacR, kMacA, kIpA, kIpR, 100);
  sweep_truncations("p1", frame, [](size_t len, const XdpRunResult& r) {
    EXPECT_EQ(r.frame.size(), len + 50);
    if (r.frame.size() >= 50) {
      EXPECT_EQ(get16(r.frame, 16), len + 36) << "outer IPv4 total length";
      EXPECT_EQ(get16(r.frame, 38), len + 16) << "UDP length";
      EXPECT_EQ(internet_checksum(std::span<const uint8_t>(r.frame.data() + 14, 20)), 0);
    }
    return std::pair<uint32_t, fdp_counter>{kRedirect, FDP_R_ENCAP};
  });
}

// The same cut frames to a local MAC are switched as they are.
TEST_F(ForwarderBehaviour, TruncatedContainerFramesToLocalPortAreSwitchedUnchanged) {
  Bytes frame = icmp_frame(kMacB, kMacA, kIpA, kIpB, 100);
  sweep_truncations("p1", frame, [&frame](size_t len, const XdpRunResult& r) {
    EXPECT_TRUE(std::equal(r.frame.begin(), r.frame.end(), frame.begin()) && r.frame.size() == len);
    return std::pair<uint32_t, fdp_counter>{kRedirect, FDP_R_FWD_LOCAL};
  });
}

TEST_F(ForwarderBehaviour, LearnsSourceMacOnceAndWritesOnlyOnChange) {
  Bytes from_a = icmp_frame(kMacB, kMacA, kIpA, kIpB);
  ASSERT_FALSE(fdb_get(kVni, kMacA).has_value());

  Counters c0 = counters();
  ASSERT_TRUE(run("p1", from_a).has_value());
  Counters d1 = counters().since(c0);
  EXPECT_EQ(d1.packets(FDP_E_LEARN_NEW), 1u);
  auto e = fdb_get(kVni, kMacA);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, FdbType::Local);
  EXPECT_EQ(e->ifindex, ports_.p1);
  EXPECT_TRUE(e->learned);
  EXPECT_FALSE(e->is_static);

  // The same MAC on the same port again: no write at all.
  Counters c1 = counters();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(run("p1", from_a).has_value());
  Counters d2 = counters().since(c1);
  EXPECT_EQ(d2.packets(FDP_E_LEARN_NEW) + d2.packets(FDP_E_LEARN_MOVE) + d2.packets(FDP_E_LEARN_FAILED), 0u);

  // A learned MAC seen in the same VNI on another port moves.
  Bytes from_a_elsewhere = icmp_frame(kMacX, kMacA, kIpA, kIpB);
  FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p3, PortConfig{kVni, false, true}));
  Counters c2 = counters();
  ASSERT_TRUE(run("p3", from_a_elsewhere).has_value());
  EXPECT_EQ(counters().since(c2).packets(FDP_E_LEARN_MOVE), 1u);
  EXPECT_EQ(fdb_get(kVni, kMacA)->ifindex, ports_.p3);

  // Learning is per VNI: the same MAC in VNI 200 is another entry.
  FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p3, PortConfig{kOtherVni, false, true}));
  ASSERT_TRUE(run("p3", from_a_elsewhere).has_value());
  EXPECT_EQ(fdb_get(kOtherVni, kMacA)->ifindex, ports_.p3);
  EXPECT_EQ(fdb_get(kVni, kMacA)->ifindex, ports_.p3);
}

TEST_F(ForwarderBehaviour, LearnWatcherReportsNewAndMovedMacs) {
  std::vector<LearnEvent> seen;
  auto w = LearnWatcher::create(*fw_, [&](const LearnEvent& e) { seen.push_back(e); });
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  ASSERT_TRUE(run("p1", icmp_frame(kMacB, kMacA, kIpA, kIpB)).has_value());
  ASSERT_TRUE(run("p1", icmp_frame(kMacB, kMacA, kIpA, kIpB)).has_value());  // no write, no event
  FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p3, PortConfig{kVni, false, true}));
  ASSERT_TRUE(run("p3", icmp_frame(kMacB, kMacA, kIpA, kIpB)).has_value());
  auto n = (*w)->poll(std::chrono::milliseconds(100));
  ASSERT_TRUE(n.has_value()) << n.error().to_string();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (LearnEvent{kVni, kMacA, ports_.p1, false}));
  EXPECT_EQ(seen[1], (LearnEvent{kVni, kMacA, ports_.p3, true}));
}

TEST_F(ForwarderBehaviour, LearningNeverOverwritesStaticEntries) {
  // kMacB is static on p2; a frame from kMacB on p1 must not steal it.
  Counters c0 = counters();
  auto r = run("p1", icmp_frame(kMacX, kMacB, kIpB, kIpA));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(counters().since(c0).packets(FDP_E_LEARN_STATIC), 1u);
  auto e = fdb_get(kVni, kMacB);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->ifindex, ports_.p2);
  EXPECT_TRUE(e->is_static);
  // Nor a static REMOTE entry.
  Counters c1 = counters();
  ASSERT_TRUE(run("p1", icmp_frame(kMacX, kMacR, kIpR, kIpA)).has_value());
  EXPECT_EQ(counters().since(c1).packets(FDP_E_LEARN_STATIC), 1u);
  EXPECT_EQ(fdb_get(kVni, kMacR)->type, FdbType::Remote);
}

TEST_F(ForwarderBehaviour, LearnedMacIsThenForwardedAsUnicast) {
  // A floods to unknown X (learning A); then B's reply to A is unicast to p1.
  auto flood = run("p1", icmp_frame(kMacX, kMacA, kIpA, kIpB));
  ASSERT_TRUE(flood.has_value());
  Counters c0 = counters();
  auto reply = run("p2", icmp_frame(kMacA, kMacB, kIpB, kIpA));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->verdict, kRedirect);
  EXPECT_EQ(counters().since(c0).packets(FDP_R_FWD_LOCAL), 1u);
}

TEST_F(ForwarderBehaviour, OuterSourcePortIsAStableHashOfTheInnerFlow) {
  auto sport_of = [&](const Bytes& inner) -> int {
    auto r = run("p1", inner);
    EXPECT_TRUE(r.has_value());
    if (!r || r->frame.size() < 36) return -1;
    return get16(r->frame, 34);
  };
  Bytes flow = udp_frame(kMacR, kMacA, kIpA, kIpR, 40000, 7000);
  int first = sport_of(flow);
  EXPECT_EQ(sport_of(flow), first) << "one flow, one source port (keeps the flow in order)";
  std::set<int> seen;
  for (uint16_t p = 0; p < 64; ++p) {
    int s = sport_of(udp_frame(kMacR, kMacA, kIpA, kIpR, static_cast<uint16_t>(40000 + p), 7000));
    EXPECT_GE(s, 49152);
    EXPECT_LE(s, 65535);
    seen.insert(s);
  }
  EXPECT_GE(seen.size(), 48u) << "64 flows should spread over many source ports";
  // TCP ports count too, and non-IP frames hash on their MACs.
  Ipv4Header h;
  h.src = kIpA;
  h.dst = kIpR;
  h.protocol = kProtoTcp;
  int t1 = sport_of(ethernet(kMacR, kMacA, kEtherIpv4, ipv4(h, tcp_syn(1000, 80))));
  int t2 = sport_of(ethernet(kMacR, kMacA, kEtherIpv4, ipv4(h, tcp_syn(1001, 80))));
  EXPECT_NE(t1, t2);
  int arp = sport_of(ethernet(kMacR, kMacA, kEtherArp, arp_request(kMacA, kIpA, kIpR)));
  EXPECT_GE(arp, 49152);
}

TEST_F(ForwarderBehaviour, FloodGroupsFollowPortsAcrossVnis) {
  auto g100 = fw_->flood_group(kVni);
  ASSERT_TRUE(g100.has_value());
  EXPECT_EQ(std::set<uint32_t>(g100->begin(), g100->end()), (std::set<uint32_t>{ports_.p1, ports_.p2}));
  auto g200 = fw_->flood_group(kOtherVni);
  ASSERT_TRUE(g200.has_value());
  EXPECT_EQ(*g200, std::vector<uint32_t>{ports_.p3});

  // Moving p2 to VNI 200 takes it out of VNI 100's group.
  FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p2, PortConfig{kOtherVni, false, true}));
  g100 = fw_->flood_group(kVni);
  g200 = fw_->flood_group(kOtherVni);
  EXPECT_EQ(*g100, std::vector<uint32_t>{ports_.p1});
  EXPECT_EQ(std::set<uint32_t>(g200->begin(), g200->end()), (std::set<uint32_t>{ports_.p2, ports_.p3}));

  // Removing a port flushes what was learned on it and stops forwarding.
  ASSERT_TRUE(run("p1", icmp_frame(kMacX, kMacA, kIpA, kIpB)).has_value());
  ASSERT_TRUE(fdb_get(kVni, kMacA).has_value());
  FOUNDRY_ASSERT_OK(fw_->remove_port(ports_.p1));
  EXPECT_FALSE(fdb_get(kVni, kMacA).has_value());
  EXPECT_TRUE(fw_->flood_group(kVni)->empty());
  auto r = run("p1", icmp_frame(kMacB, kMacA, kIpA, kIpB));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->verdict, kPass) << "a removed port is no longer the forwarder's";
}

// Received packets of an interface in this thread's network namespace.
uint64_t rx_packets(const std::string& ifname) {
  auto n = interface_rx_packets(ifname);
  if (!n) ADD_FAILURE() << n.error().to_string();
  return n ? *n : 0;
}

// Flooding carried out, not only decided: with live frames the broadcast
// redirect really transmits, and the veths' peers count what arrives. A
// broadcast from p1 reaches every other port of VNI 100 (p2 and p4) once,
// not the port it came in on (BPF_F_EXCLUDE_INGRESS), and nothing of VNI 200
// (p3). Unknown unicast takes the same path.
TEST_F(ForwarderBehaviour, LiveFloodReachesEveryOtherLocalPortOfTheVniOnly) {
  ASSERT_TRUE(run_checked({"ip", "link", "add", "p4", "type", "veth", "peer", "name", "p4c"}).has_value());
  auto p4 = ifindex_of("p4");
  ASSERT_TRUE(p4.has_value());
  FOUNDRY_ASSERT_OK(fw_->add_port(*p4, PortConfig{kVni, false, true}));
  // Only our frames may arrive: no IPv6 autoconfiguration chatter from the
  // interfaces themselves (this namespace's sysctl; the thread is in it).
  for (const char* conf : {"all", "default"}) {
    std::ofstream f(std::string("/proc/sys/net/ipv6/conf/") + conf + "/disable_ipv6");
    f << "1\n";
    ASSERT_TRUE(f.flush().good()) << "disable IPv6 in the test's namespace (" << conf << ")";
  }
  for (const char* n : {"p1", "p1c", "p2", "p2c", "p3", "p3c", "p4", "p4c"})
    ASSERT_TRUE(run_checked({"ip", "link", "set", n, "up"}).has_value()) << n;
  // The receive side of a veth needs an XDP program (docs/dataplane.md).
  for (const char* n : {"p1c", "p2c", "p3c", "p4c"}) {
    auto idx = ifindex_of(n);
    ASSERT_TRUE(idx.has_value());
    FOUNDRY_ASSERT_OK(xdp_attach(*idx, fw_->pass_program_fd(), XdpMode::Native));
  }
  struct Case {
    const char* name;
    Bytes frame;
  };
  const Case cases[] = {
      {"broadcast", ethernet(kBroadcastMac, kMacA, kEtherArp, arp_request(kMacA, kIpA, kIpB))},
      {"unknown unicast", icmp_frame(kMacX, kMacA, kIpA, kIpB)},
  };
  constexpr uint32_t kFrames = 25;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::map<std::string, uint64_t> before;
    for (const char* n : {"p1c", "p2c", "p3c", "p4c"}) before[n] = rx_packets(n);
    Counters cb = counters();
    XdpRunOptions o;
    o.ingress_ifindex = ports_.p1;
    o.repeat = kFrames;
    o.live_frames = true;
    auto r = run_xdp(fw_->program_fd(), c.frame, o);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    Counters d = counters().since(cb);
    EXPECT_EQ(d.packets(FDP_R_FLOOD_LOCAL), kFrames);
    EXPECT_EQ(d.packets(FDP_V_REDIRECT), kFrames);
    EXPECT_EQ(rx_packets("p2c") - before["p2c"], kFrames) << "every other port of the VNI gets each frame once";
    EXPECT_EQ(rx_packets("p4c") - before["p4c"], kFrames);
    EXPECT_EQ(rx_packets("p1c") - before["p1c"], 0u) << "never back out of the ingress port";
    EXPECT_EQ(rx_packets("p3c") - before["p3c"], 0u) << "another VNI's port";
  }
}

TEST_F(ForwarderBehaviour, UplinkCannotBeAnAccessPort) {
  auto r = fw_->add_port(ports_.up, PortConfig{kVni, false, true});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  auto vni = fw_->add_port(ports_.p1, PortConfig{kVniMax + 1, false, true});
  ASSERT_FALSE(vni.has_value());
  EXPECT_EQ(vni.error().kind(), ErrorKind::Validation);
  EXPECT_NE(vni.error().to_string().find("24 bits"), std::string::npos) << vni.error().to_string();
}

TEST_F(ForwarderBehaviour, FdbEntriesRoundTripThroughTheMap) {
  FdbEntry local = FdbEntry::local(ports_.p2, mac("02:00:00:00:00:99"));
  FdbEntry remote = FdbEntry::remote(kVtepB, 8472);
  FOUNDRY_ASSERT_OK(fw_->fdb().put(FdbKey{7, kMacC}, local));
  FOUNDRY_ASSERT_OK(fw_->fdb().put(FdbKey{8, kMacC}, remote));
  EXPECT_EQ(fdb_get(7, kMacC), local);
  EXPECT_EQ(fdb_get(8, kMacC), remote);
  auto all = fw_->fdb().entries();
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), 4u);  // B, R from the fixture + these two
  auto gone = fw_->fdb().erase(FdbKey{7, kMacC});
  ASSERT_TRUE(gone.has_value());
  EXPECT_TRUE(*gone);
  auto again = fw_->fdb().erase(FdbKey{7, kMacC});
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
  auto dup = fw_->fdb().put(FdbKey{8, kMacC}, remote, BPF_NOEXIST);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().sys_errno(), EEXIST);
}

TEST_F(ForwarderBehaviour, FullFdbIsReportedWithAHint) {
  fw_.reset();
  ForwarderOptions o;
  o.fdb_max_entries = 4;
  auto fw = Forwarder::load(o);
  ASSERT_TRUE(fw.has_value()) << fw.error().to_string();
  for (uint8_t i = 0; i < 4; ++i) {
    MacAddr m = kMacC;
    m.bytes[5] = i;
    FOUNDRY_ASSERT_OK((*fw)->fdb().put(FdbKey{1, m}, FdbEntry::local(ports_.p1)));
  }
  auto full = (*fw)->fdb().put(FdbKey{1, kMacA}, FdbEntry::local(ports_.p1));
  ASSERT_FALSE(full.has_value());
  EXPECT_NE(full.error().hint().find("full"), std::string::npos) << full.error().to_string();
}

TEST_F(ForwarderBehaviour, FdbBatchesAreAllOrNothing) {
  fw_.reset();
  ForwarderOptions o;
  o.fdb_max_entries = 8;
  auto fw = Forwarder::load(o);
  ASSERT_TRUE(fw.has_value()) << fw.error().to_string();
  Forwarder& f = **fw;
  FOUNDRY_ASSERT_OK(f.fdb().put(FdbKey{1, kMacA}, FdbEntry::local(ports_.p1)));
  // 8 entries, one of them overwriting kMacA: 8 keys would fit, 9 not.
  std::vector<std::pair<FdbKey, FdbEntry>> batch;
  batch.emplace_back(FdbKey{1, kMacA}, FdbEntry::remote(kVtepB));
  for (uint8_t i = 0; i < 8; ++i) {
    MacAddr m = mac("02:00:00:00:07:00");
    m.bytes[5] = i;
    batch.emplace_back(FdbKey{1, m}, FdbEntry::local(ports_.p2));
  }
  auto r = f.fdb_put_all(batch);
  ASSERT_FALSE(r.has_value()) << "9 distinct keys cannot fit in 8 slots";
  EXPECT_NE(r.error().to_string().find("none written"), std::string::npos) << r.error().to_string();
  auto all = f.fdb().entries();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 1u) << "the batch left entries behind";
  EXPECT_EQ(all->front().second, FdbEntry::local(ports_.p1)) << "the overwritten entry was not restored";

  batch.pop_back();
  auto ok_r = f.fdb_put_all(batch);
  ASSERT_TRUE(ok_r.has_value()) << ok_r.error().to_string();
  EXPECT_EQ(*ok_r, 8u);

  std::vector<FdbKey> del{FdbKey{1, kMacA}, FdbKey{1, kMacX}};
  auto d = f.fdb_erase_all(del);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().sys_errno(), ENOENT);
  EXPECT_TRUE(f.fdb().get(FdbKey{1, kMacA})->has_value()) << "nothing may be deleted when one key is missing";
  del.pop_back();
  EXPECT_EQ(*f.fdb_erase_all(del), 1u);
}

TEST_F(ForwarderBehaviour, CountersCountBytesAndReset) {
  Bytes f = icmp_frame(kMacB, kMacA, kIpA, kIpB);
  Counters c0 = counters();
  ASSERT_TRUE(run("p1", f).has_value());
  Counters d = counters().since(c0);
  EXPECT_EQ(d[FDP_V_REDIRECT].bytes, f.size());
  FOUNDRY_ASSERT_OK(fw_->reset_counters());
  EXPECT_EQ(counters().frames(), 0u);
}

}  // namespace
}  // namespace foundry::dataplane::testing
