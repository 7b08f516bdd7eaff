// A forwarder loaded in a private network namespace with a fixed topology,
// for BPF_PROG_TEST_RUN tests.
//
// The test thread moves into a new network namespace (unshare) for the
// duration of each test, creates veth pairs there to have real ifindexes
// (devmap entries and the test run's ingress_ifindex must name existing
// interfaces), and returns when the test ends. The namespace and its veths
// then vanish with it, also when the test fails, so nothing on the host is
// touched.
//
//   VNI 100: p1 (MAC A learns here), p2 (MAC B, static)   remote MAC R behind 198.51.100.2
//   VNI 200: p3 (MAC C)
//   uplink "ul": VTEP 198.51.100.1, MTU 1500, UDP 4789; next hop 198.51.100.2
//   p1c: p1's peer, not a port
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "foundry/common/subprocess.h"
#include "foundry/dataplane/forwarder.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/test_run.h"
#include "packet_builder.h"

namespace foundry::dataplane::testing {

inline const MacAddr kMacA = mac("02:00:00:00:01:0a");
inline const MacAddr kMacB = mac("02:00:00:00:01:0b");
inline const MacAddr kMacC = mac("02:00:00:00:02:0c");
inline const MacAddr kMacR = mac("02:00:00:00:01:0e");
inline const MacAddr kMacX = mac("02:00:00:00:01:0f");        // unknown anywhere
inline const MacAddr kMacUplink = mac("02:00:c6:33:64:01");   // host A's underlay NIC
inline const MacAddr kMacPeerVtep = mac("02:00:c6:33:64:02"); // host B's underlay NIC
inline const net::Ipv4 kVtepA = ip("198.51.100.1");
inline const net::Ipv4 kVtepB = ip("198.51.100.2");
inline const net::Ipv4 kIpA = ip("192.0.2.1");
inline const net::Ipv4 kIpB = ip("192.0.2.2");
inline const net::Ipv4 kIpR = ip("192.0.2.9");
inline constexpr Vni kVni = 100;
inline constexpr Vni kOtherVni = 200;

struct Ports {
  uint32_t p1 = 0, p2 = 0, p3 = 0, up = 0, p1c = 0;
  uint32_t by_name(const std::string& n) const {
    if (n == "p1") return p1;
    if (n == "p2") return p2;
    if (n == "p3") return p3;
    if (n == "ul") return up;
    if (n == "p1c") return p1c;
    return 0;
  }
};

// ICMP echo inside Ethernet: 98 bytes.
inline Bytes icmp_frame(const MacAddr& dst, const MacAddr& src, net::Ipv4 sip, net::Ipv4 dip,
                        size_t payload = 56) {
  Ipv4Header h;
  h.src = sip;
  h.dst = dip;
  h.protocol = kProtoIcmp;
  return ethernet(dst, src, kEtherIpv4, ipv4(h, icmp_echo(1, 1, payload)));
}

inline Bytes udp_frame(const MacAddr& dst, const MacAddr& src, net::Ipv4 sip, net::Ipv4 dip, uint16_t sport,
                       uint16_t dport, size_t payload = 32) {
  Ipv4Header h;
  h.src = sip;
  h.dst = dip;
  h.protocol = kProtoUdp;
  return ethernet(dst, src, kEtherIpv4, ipv4(h, udp(sport, dport, Bytes(payload, 0xab))));
}

// VXLAN from host B (198.51.100.2) to host A (198.51.100.1).
inline Bytes from_peer_vtep(uint32_t vni, const Bytes& inner, uint16_t dport = 4789, uint8_t flags = 0x08) {
  VxlanFrame f;
  f.outer_dst = kMacUplink;
  f.outer_src = kMacPeerVtep;
  f.outer_src_ip = kVtepB;
  f.outer_dst_ip = kVtepA;
  f.sport = 51000;
  f.dport = dport;
  f.vni = vni;
  f.flags = flags;
  return vxlan_frame(f, inner);
}

#define FOUNDRY_ASSERT_OK(expr)                                         \
  do {                                                                  \
    auto foundry_ok_r_ = (expr);                                        \
    ASSERT_TRUE(foundry_ok_r_.has_value()) << foundry_ok_r_.error().to_string(); \
  } while (0)

class ForwarderFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: BPF programs and network namespaces";
    auto scope = NetnsScope::enter_new();
    if (!scope) GTEST_SKIP() << "cannot create a network namespace: " << scope.error().to_string();
    netns_.emplace(std::move(*scope));
    for (const char* n : {"p1", "p2", "p3", "ul"}) {
      std::string peer = std::string(n) + "c";
      auto r = run_checked({"ip", "link", "add", n, "type", "veth", "peer", "name", peer});
      ASSERT_TRUE(r.has_value()) << r.error().to_string();
    }
    for (const char* n : {"p1", "p2", "p3", "ul", "p1c"}) {
      auto idx = ifindex_of(n);
      ASSERT_TRUE(idx.has_value()) << idx.error().to_string();
      uint32_t* slot = n == std::string("p1")    ? &ports_.p1
                       : n == std::string("p2")  ? &ports_.p2
                       : n == std::string("p3")  ? &ports_.p3
                       : n == std::string("ul")  ? &ports_.up
                                                 : &ports_.p1c;
      *slot = *idx;
    }
    auto fw = Forwarder::load();
    if (!fw && (fw.error().sys_errno() == EPERM || fw.error().sys_errno() == EACCES))
      GTEST_SKIP() << "BPF not permitted here: " << fw.error().to_string();
    ASSERT_TRUE(fw.has_value()) << fw.error().to_string() << "\n" << fw.error().detail();
    fw_ = std::move(*fw);

    FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p1, PortConfig{kVni, false, true}));
    FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p2, PortConfig{kVni, false, true}));
    FOUNDRY_ASSERT_OK(fw_->add_port(ports_.p3, PortConfig{kOtherVni, false, true}));
    FOUNDRY_ASSERT_OK(fw_->set_vtep(VtepConfig{kVtepA, ports_.up, 4789, 1500}));
    FOUNDRY_ASSERT_OK(fw_->add_neighbor(kVtepB, Neighbor{ports_.up, kMacUplink, kMacPeerVtep}));
    FOUNDRY_ASSERT_OK(fw_->fdb().put(FdbKey{kVni, kMacB}, FdbEntry::local(ports_.p2)));
    FOUNDRY_ASSERT_OK(fw_->fdb().put(FdbKey{kVni, kMacR}, FdbEntry::remote(kVtepB)));
  }

  void TearDown() override {
    fw_.reset();
    netns_.reset();  // back to the original namespace; ours and its veths go away
  }

  // Runs the forwarder on frame as received on the named interface.
  Result<XdpRunResult> run(const std::string& ingress, const Bytes& frame) {
    XdpRunOptions o;
    o.ingress_ifindex = ports_.by_name(ingress);
    return run_xdp(fw_->program_fd(), frame, o);
  }

  // The same through the TC program (foundry_tc on clsact ingress).
  Result<XdpRunResult> run_tc_prog(const std::string& ingress, const Bytes& frame) {
    TcRunOptions o;
    o.ifindex = ports_.by_name(ingress);
    return run_tc(fw_->tc_program_fd(), frame, o);
  }

  Counters counters() {
    auto c = fw_->counters();
    EXPECT_TRUE(c.has_value()) << c.error().to_string();
    return c ? *c : Counters{};
  }

  std::optional<NetnsScope> netns_;
  Ports ports_;
  std::unique_ptr<Forwarder> fw_;
};

}  // namespace foundry::dataplane::testing
