// The seed's lab, forwarded by XDP: containers are network namespaces joined
// by veth pairs to "host" namespaces the test creates, and pings between
// them must go through the forwarder. Each test first shows that without
// the forwarder the ping fails (the kernel does not forward between the
// host-side veths), and afterwards that the forwarder's counters moved.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "foundry/common/unique_fd.h"
#include "foundry/dataplane/bum_replicator.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/loader.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/tc.h"
#include "lab.h"

namespace foundry::dataplane::testing {
namespace {

template <typename T>
T take(Result<T>&& r) {
  return std::move(r).value();
}
inline void take(Status&&) {}

// Echo replies received by ns from to (of count); -1 and a test failure
// when ping could not run.
int pings(const std::string& ns, const std::string& to, int count) {
  auto r = Lab::ping(ns, to, count);
  if (!r) {
    ADD_FAILURE() << "ping from " << ns << " to " << to << ": " << r.error().to_string();
    return -1;
  }
  return *r;
}

// A TCP stream of `bytes` bytes from client_ns to server_ip:port, where a
// server in server_ns reads it to the end; returns what arrived intact
// (every byte checked against the pattern sent). Sockets are made with the
// thread inside each namespace; 20 s at most.
Result<size_t> tcp_transfer(const std::string& client_ns, const std::string& server_ns, const char* server_ip,
                            uint16_t port, size_t bytes) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, server_ip, &addr.sin_addr);
  UniqueFd listener;
  {
    auto scope = FOUNDRY_TRY(NetnsScope::enter(Lab::path(server_ns)));
    listener = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener.get(), 1) != 0)
      return fail_errno(ErrorKind::Operation, "listen on {}:{} in {}", server_ip, port, server_ns);
  }
  UniqueFd client;
  {
    auto scope = FOUNDRY_TRY(NetnsScope::enter(Lab::path(client_ns)));
    client = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!client) return fail_errno(ErrorKind::Operation, "socket in {}", client_ns);
  }
  timeval tv{20, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::thread sender([&] {
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    std::vector<uint8_t> buf(64 * 1024);
    for (size_t off = 0; off < bytes;) {
      size_t n = std::min(buf.size(), bytes - off);
      for (size_t i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>((off + i) * 7 + 3);
      ssize_t w = ::send(client.get(), buf.data(), n, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::shutdown(client.get(), SHUT_WR);
  });
  size_t good = 0;
  pollfd pfd{listener.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 20000) == 1) {
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::vector<uint8_t> buf(64 * 1024);
    size_t off = 0;
    pollfd cfd{conn.get(), POLLIN, 0};
    while (conn && ::poll(&cfd, 1, 20000) == 1) {
      ssize_t r = ::recv(conn.get(), buf.data(), buf.size(), 0);
      if (r <= 0) break;
      for (ssize_t i = 0; i < r; ++i, ++off)
        if (buf[static_cast<size_t>(i)] == static_cast<uint8_t>(off * 7 + 3)) ++good;
    }
  }
  ::shutdown(client.get(), SHUT_RDWR);  // unblocks the sender if the path failed
  sender.join();
  return good;
}

// A counter of /proc/net/snmp ("Tcp", "InCsumErrors") in namespace ns.
Result<uint64_t> snmp_counter(const std::string& ns, const std::string& proto, const std::string& name) {
  auto scope = FOUNDRY_TRY(NetnsScope::enter(Lab::path(ns)));
  std::ifstream in("/proc/thread-self/net/snmp");
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind(proto + ":", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string key, val;
    while (n >> key && v >> val)
      if (key == name) return std::stoull(val);
  }
  return fail(ErrorKind::Operation, "no {} {} in /proc/net/snmp of {}", proto, name, ns);
}

// Fails the test (returning from it) on an error, else yields the value.
#define LAB_OK(expr)                                                          \
  ({                                                                          \
    auto lab_ok_r_ = (expr);                                                  \
    if (!lab_ok_r_) FAIL() << #expr << ": " << lab_ok_r_.error().to_string();  \
    take(std::move(lab_ok_r_));                                               \
  })

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces, veth and XDP";
    if (find_program("ip").empty()) GTEST_SKIP() << "needs iproute2 (ip)";
    if (find_program("ping").empty()) GTEST_SKIP() << "needs ping (iputils-ping)";
  }

  // Loads an unpinned forwarder for the host namespace ns. Everything that
  // resolves interfaces runs with the thread inside ns.
  std::unique_ptr<Loader> open_in(const std::string& ns) {
    auto scope = NetnsScope::enter(Lab::path(ns));
    EXPECT_TRUE(scope.has_value()) << scope.error().to_string();
    LoaderOptions o;
    o.pin_dir.clear();  // no bpffs state from tests
    auto l = Loader::open(o);
    EXPECT_TRUE(l.has_value()) << l.error().to_string() << "\n" << l.error().detail();
    return l ? std::move(*l) : nullptr;
  }

  Status attach(Loader& dp, const std::string& host_ns, const std::string& ifname, Vni vni,
                const std::string& container_ns, XdpMode mode = XdpMode::Native, bool with_peer = true) {
    auto scope = FOUNDRY_TRY(NetnsScope::enter(Lab::path(host_ns)));
    PortSpec p;
    p.ifname = ifname;
    p.vni = vni;
    p.mode = mode;
    if (with_peer) p.peer = PeerInterface{Lab::path(container_ns), "eth0"};
    FOUNDRY_TRY(dp.attach_port(p));
    return ok();
  }

  // The seed's topology, nothing attached: a host namespace and two
  // containers, c1 192.0.2.1 and c2 192.0.2.2, each joined to the host by
  // a veth (c1h, c2h on the host side).
  struct SeedLab {
    std::string host, c1, c2;
  };
  void make_seed_lab(SeedLab& s) {
    s.host = LAB_OK(lab_.add_netns("host"));
    s.c1 = LAB_OK(lab_.add_netns("c1"));
    s.c2 = LAB_OK(lab_.add_netns("c2"));
    LAB_OK(Lab::veth(s.host, "c1h", s.c1, "eth0"));
    LAB_OK(Lab::veth(s.host, "c2h", s.c2, "eth0"));
    LAB_OK(Lab::address(s.c1, "eth0", "192.0.2.1/24"));
    LAB_OK(Lab::address(s.c2, "eth0", "192.0.2.2/24"));
  }

  Lab lab_;
};

// The seed's lab: two containers on one host, 192.0.2.1 <-> 192.0.2.2.
TEST_F(LabTest, SeedLabPingsThroughXdp) {
  SeedLab lab;
  make_seed_lab(lab);
  ASSERT_FALSE(HasFatalFailure());
  const std::string &host = lab.host, &c1 = lab.c1, &c2 = lab.c2;

  EXPECT_EQ(pings(c1, "192.0.2.2", 1), 0) << "the host must not forward on its own";

  auto dp = open_in(host);
  ASSERT_TRUE(dp);
  LAB_OK(attach(*dp, host, "c1h", 100, c1));
  LAB_OK(attach(*dp, host, "c2h", 100, c2));
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(host)));
    auto idx = LAB_OK(ifindex_of("c1h"));
    auto att = LAB_OK(xdp_query(idx));
    ASSERT_TRUE(att.has_value());
    EXPECT_EQ(att->prog_name, "foundry_forward");
    EXPECT_EQ(att->mode, XdpMode::Native);
  }
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(c1)));
    uint32_t eth0 = LAB_OK(ifindex_of("eth0"));
    auto att = LAB_OK(xdp_query(eth0));
    ASSERT_TRUE(att.has_value());
    EXPECT_EQ(att->prog_name, "foundry_pass");
  }

  Counters before = LAB_OK(dp->forwarder().counters());
  EXPECT_EQ(pings(c1, "192.0.2.2", 5), 5);
  EXPECT_EQ(pings(c2, "192.0.2.1", 5), 5);
  Counters d = LAB_OK(dp->forwarder().counters()).since(before);
  // 10 echo requests + 10 replies, plus ARP, all switched by XDP.
  EXPECT_GE(d.packets(FDP_R_FWD_LOCAL), 20u);
  EXPECT_GE(d.packets(FDP_R_FLOOD_LOCAL), 1u) << "the first ARP request is a broadcast";
  EXPECT_EQ(d.packets(FDP_V_DROP), 0u);

  // Both MACs were learned on their ports.
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(c1)));
    MacAddr m1 = LAB_OK(interface_mac("eth0"));
    auto e = LAB_OK(dp->forwarder().fdb().get(FdbKey{100, m1}));
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->learned);
  }

  // Detached, the path is gone again.
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(host)));
    LAB_OK(dp->detach_port("c1h", PeerInterface{Lab::path(c1), "eth0"}));
    uint32_t c1h = LAB_OK(ifindex_of("c1h"));
    EXPECT_FALSE(LAB_OK(xdp_query(c1h)).has_value());
  }
  EXPECT_EQ(pings(c1, "192.0.2.2", 1), 0);
}

// veth quirk the loader exists to handle: frames redirected into a veth are
// delivered only if the other end runs NAPI, i.e. has an XDP program (or GRO
// on). Without foundry_pass on the container end the forwarder does its part
// (counters move) and the frames still vanish.
TEST_F(LabTest, VethPeerWithoutXdpProgramLosesRedirectedFrames) {
  SeedLab lab;
  make_seed_lab(lab);
  ASSERT_FALSE(HasFatalFailure());
  const std::string &host = lab.host, &c1 = lab.c1, &c2 = lab.c2;
  auto dp = open_in(host);
  ASSERT_TRUE(dp);
  LAB_OK(attach(*dp, host, "c1h", 100, c1, XdpMode::Native, false));
  LAB_OK(attach(*dp, host, "c2h", 100, c2, XdpMode::Native, false));

  Counters before = LAB_OK(dp->forwarder().counters());
  EXPECT_EQ(pings(c1, "192.0.2.2", 2), 0);
  Counters d = LAB_OK(dp->forwarder().counters()).since(before);
  EXPECT_GE(d.packets(FDP_V_REDIRECT), 1u) << "the forwarder redirected the ARP requests";

  // Attaching the ports again with their peers fixes it.
  LAB_OK(attach(*dp, host, "c1h", 100, c1));
  LAB_OK(attach(*dp, host, "c2h", 100, c2));
  EXPECT_EQ(pings(c1, "192.0.2.2", 3), 3);
}

// Generic (skb) mode works too, e.g. for drivers without native XDP.
TEST_F(LabTest, GenericModeForwards) {
  SeedLab lab;
  make_seed_lab(lab);
  ASSERT_FALSE(HasFatalFailure());
  const std::string &host = lab.host, &c1 = lab.c1, &c2 = lab.c2;
  auto dp = open_in(host);
  ASSERT_TRUE(dp);
  LAB_OK(attach(*dp, host, "c1h", 100, c1, XdpMode::Generic));
  LAB_OK(attach(*dp, host, "c2h", 100, c2, XdpMode::Generic));
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(host)));
    uint32_t c1h = LAB_OK(ifindex_of("c1h"));
    EXPECT_EQ(LAB_OK(xdp_query(c1h))->mode, XdpMode::Generic);
  }
  Counters before = LAB_OK(dp->forwarder().counters());
  EXPECT_EQ(pings(c1, "192.0.2.2", 3), 3);
  EXPECT_GE(LAB_OK(dp->forwarder().counters()).since(before).packets(FDP_R_FWD_LOCAL), 6u);
}

// Two hosts joined by an underlay veth (198.51.100.0/24), each with a
// container in VNI 100 and one in VNI 200, all in 192.0.2.0/24:
//
//   host A (198.51.100.1)               host B (198.51.100.2)
//     a100 192.0.2.1  VNI 100   <--->     b100 192.0.2.2  VNI 100
//     a200 192.0.2.3  VNI 200   <--->     b200 192.0.2.4  VNI 200
//
// Same VNI across hosts pings (VXLAN both ways, ARP via head-end
// replication); different VNIs are isolated although the subnet is shared.
class TwoHostLab : public LabTest {
 protected:
  struct Host {
    std::string ns;
    std::unique_ptr<Loader> dp;
    std::unique_ptr<BumReplicator> bum;
  };

  void SetUp() override {
    LabTest::SetUp();
    if (IsSkipped()) return;
    a_.ns = LAB_OK(lab_.add_netns("hostA"));
    b_.ns = LAB_OK(lab_.add_netns("hostB"));
    for (const char* c : {"a100", "a200", "b100", "b200"}) containers_.push_back(LAB_OK(lab_.add_netns(c)));
    LAB_OK(Lab::veth(a_.ns, "ul", b_.ns, "ul"));
    LAB_OK(Lab::address(a_.ns, "ul", "198.51.100.1/24"));
    LAB_OK(Lab::address(b_.ns, "ul", "198.51.100.2/24"));
    // Container MTU leaves room for the 50 bytes of VXLAN (the loader
    // refuses ports that do not).
    struct C {
      const std::string& host;
      std::string cns;
      const char* hif;
      const char* cidr;
      const char* mac;
    };
    std::vector<C> cs{{a_.ns, containers_[0], "a100h", "192.0.2.1/24", "02:00:00:00:00:01"},
                      {a_.ns, containers_[1], "a200h", "192.0.2.3/24", "02:00:00:00:00:03"},
                      {b_.ns, containers_[2], "b100h", "192.0.2.2/24", "02:00:00:00:00:02"},
                      {b_.ns, containers_[3], "b200h", "192.0.2.4/24", "02:00:00:00:00:04"}};
    for (const auto& c : cs) {
      LAB_OK(Lab::veth(c.host, c.hif, c.cns, "eth0", 1450));
      LAB_OK(Lab::address(c.cns, "eth0", c.cidr, c.mac));
    }
    EXPECT_EQ(pings(containers_[0], "192.0.2.2", 1), 0) << "no path without the forwarders";

    setup_host(a_, "198.51.100.1", "198.51.100.2", b_.ns);
    setup_host(b_, "198.51.100.2", "198.51.100.1", a_.ns);
    ASSERT_FALSE(HasFailure());
    attach_container(a_, "a100h", 100, containers_[0]);
    attach_container(a_, "a200h", 200, containers_[1]);
    attach_container(b_, "b100h", 100, containers_[2]);
    attach_container(b_, "b200h", 200, containers_[3]);
    // The control plane knows where every container lives.
    add_remote(a_, 100, "02:00:00:00:00:02", "198.51.100.2");
    add_remote(a_, 200, "02:00:00:00:00:04", "198.51.100.2");
    add_remote(b_, 100, "02:00:00:00:00:01", "198.51.100.1");
    add_remote(b_, 200, "02:00:00:00:00:03", "198.51.100.1");
  }

  void TearDown() override {
    // Replicators first (they read the forwarders' maps), then forwarders,
    // then the lab's namespaces.
    for (Host* h : {&a_, &b_}) {
      h->bum.reset();
      h->dp.reset();
    }
  }

  void setup_host(Host& h, const char* own_ip, const char* peer_ip, const std::string& peer_ns) {
    h.dp = open_in(h.ns);
    ASSERT_TRUE(h.dp);
    MacAddr peer_mac;
    {
      auto scope = LAB_OK(NetnsScope::enter(Lab::path(peer_ns)));
      peer_mac = LAB_OK(interface_mac("ul"));
    }
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(h.ns)));
    LAB_OK(h.dp->attach_uplink(UplinkSpec{"ul", *net::Ipv4::parse(own_ip), 4789, mode_}));
    MacAddr own_mac = LAB_OK(interface_mac("ul"));
    uint32_t ul = LAB_OK(ifindex_of("ul"));
    Forwarder& fw = h.dp->forwarder();
    LAB_OK(fw.add_neighbor(*net::Ipv4::parse(peer_ip), Neighbor{ul, own_mac, peer_mac}));
    for (Vni v : {100u, 200u}) LAB_OK(fw.add_flood_remote(v, *net::Ipv4::parse(peer_ip)));
    h.bum = LAB_OK(BumReplicator::create(fw));
    h.bum->start();
  }

  void attach_container(Host& h, const char* hif, Vni vni, const std::string& cns) {
    LAB_OK(attach(*h.dp, h.ns, hif, vni, cns, mode_));
  }

  void add_remote(Host& h, Vni vni, const char* mac, const char* vtep) {
    LAB_OK(h.dp->forwarder().fdb().put(FdbKey{vni, *MacAddr::parse(mac)},
                                        FdbEntry::remote(*net::Ipv4::parse(vtep))));
  }

  Host a_, b_;
  std::vector<std::string> containers_;  // a100, a200, b100, b200
  XdpMode mode_ = XdpMode::Native;  // of every port and both uplinks
};

// The same two hosts with foundry_tc on every port and uplink (TC mode).
class TwoHostLabTc : public TwoHostLab {
 protected:
  TwoHostLabTc() { mode_ = XdpMode::Tc; }
};

TEST_F(TwoHostLab, SameVniAcrossHostsPings) {
  Counters a0 = LAB_OK(a_.dp->forwarder().counters());
  Counters b0 = LAB_OK(b_.dp->forwarder().counters());
  EXPECT_EQ(pings(containers_[0], "192.0.2.2", 5), 5) << "VNI 100: A -> B";
  EXPECT_EQ(pings(containers_[3], "192.0.2.3", 5), 5) << "VNI 200: B -> A";
  Counters a = LAB_OK(a_.dp->forwarder().counters()).since(a0);
  Counters b = LAB_OK(b_.dp->forwarder().counters()).since(b0);
  // Each host encapsulated its 5 requests or replies per direction and
  // decapsulated the other host's.
  EXPECT_GE(a.packets(FDP_R_ENCAP), 10u);
  EXPECT_GE(a.packets(FDP_E_DECAP), 10u);
  EXPECT_GE(b.packets(FDP_R_ENCAP), 10u);
  EXPECT_GE(b.packets(FDP_E_DECAP), 10u);
  // ARP requests reached the other host through the replicators.
  EXPECT_GE(a.packets(FDP_E_BUM_TO_AGENT) + b.packets(FDP_E_BUM_TO_AGENT), 2u);
  EXPECT_GE(a_.bum->datagrams() + b_.bum->datagrams(), 2u);
  EXPECT_EQ(a.packets(FDP_E_BUM_LOST) + b.packets(FDP_E_BUM_LOST), 0u);
}

// TCP, not only ICMP: a veth hands XDP frames whose TCP checksum the
// sender left to offload (CHECKSUM_PARTIAL); forwarded as bytes they would
// arrive with a wrong checksum and be dropped (TcpInCsumErrors) while pings
// work. The loader turns transmit checksum offload off on the container end
// of each port, and back on when the port is detached.
TEST_F(TwoHostLab, TcpStreamCrossesHostsIntact) {
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(containers_[0])));
    EXPECT_FALSE(LAB_OK(tx_checksum_offload("eth0"))) << "attach_port turns it off on the container end";
  }
  uint64_t csum_errors = LAB_OK(snmp_counter(containers_[2], "Tcp", "InCsumErrors"));
  constexpr size_t kBytes = 4 << 20;
  EXPECT_EQ(LAB_OK(tcp_transfer(containers_[0], containers_[2], "192.0.2.2", 5001, kBytes)), kBytes) << "A -> B";
  EXPECT_EQ(LAB_OK(tcp_transfer(containers_[2], containers_[0], "192.0.2.1", 5002, kBytes)), kBytes) << "B -> A";
  EXPECT_EQ(LAB_OK(snmp_counter(containers_[2], "Tcp", "InCsumErrors")), csum_errors);

  auto scope = LAB_OK(NetnsScope::enter(Lab::path(a_.ns)));
  LAB_OK(a_.dp->detach_port("a100h", PeerInterface{Lab::path(containers_[0]), "eth0"}));
  auto c = LAB_OK(NetnsScope::enter(Lab::path(containers_[0])));
  EXPECT_TRUE(LAB_OK(tx_checksum_offload("eth0"))) << "detach restores the veth default";
}

TEST_F(TwoHostLabTc, SameVniAcrossHostsPingsAndVnisAreIsolated) {
  Counters a0 = LAB_OK(a_.dp->forwarder().counters());
  EXPECT_EQ(pings(containers_[0], "192.0.2.2", 3), 3) << "VNI 100: A -> B";
  EXPECT_EQ(pings(containers_[3], "192.0.2.3", 3), 3) << "VNI 200: B -> A";
  EXPECT_EQ(pings(containers_[1], "192.0.2.2", 1), 0) << "VNI 200 -> VNI 100";
  Counters a = LAB_OK(a_.dp->forwarder().counters()).since(a0);
  EXPECT_GE(a.packets(FDP_R_ENCAP), 6u);
  EXPECT_GE(a.packets(FDP_E_DECAP), 6u);
  EXPECT_GE(a.packets(FDP_E_BUM_TO_AGENT), 1u) << "ARP went to the replicator from the TC program too";
  EXPECT_EQ(a.packets(FDP_V_ABORTED), 0u);
  auto scope = LAB_OK(NetnsScope::enter(Lab::path(a_.ns)));
  uint32_t port = LAB_OK(ifindex_of("a100h"));
  auto tc = LAB_OK(tc_query(port));
  ASSERT_TRUE(tc.has_value());
  EXPECT_EQ(tc->prog_name, "foundry_tc");
  EXPECT_FALSE(LAB_OK(xdp_query(port)).has_value()) << "TC mode leaves no XDP program on the port";
}

// The point of TC mode: the container's TCP stack keeps checksum offload and
// GSO, and 64 KB GSO packets cross encapsulation, the underlay veth and
// decapsulation whole (the kernel segments them only where a device needs
// it, here nowhere), so the forwarder sees far fewer, far larger packets.
TEST_F(TwoHostLabTc, TcpStreamCrossesHostsIntactAsGsoPackets) {
  {
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(containers_[0])));
    EXPECT_TRUE(LAB_OK(tx_checksum_offload("eth0"))) << "TC mode needs no change on the container end";
  }
  uint64_t csum_errors = LAB_OK(snmp_counter(containers_[2], "Tcp", "InCsumErrors"));
  Counters a0 = LAB_OK(a_.dp->forwarder().counters());
  constexpr size_t kBytes = 16 << 20;
  EXPECT_EQ(LAB_OK(tcp_transfer(containers_[0], containers_[2], "192.0.2.2", 5001, kBytes)), kBytes) << "A -> B";
  EXPECT_EQ(LAB_OK(tcp_transfer(containers_[2], containers_[0], "192.0.2.1", 5002, kBytes)), kBytes) << "B -> A";
  EXPECT_EQ(LAB_OK(snmp_counter(containers_[2], "Tcp", "InCsumErrors")), csum_errors);
  Counters a = LAB_OK(a_.dp->forwarder().counters()).since(a0);
  ASSERT_GT(a.packets(FDP_R_ENCAP), 0u);
  uint64_t mean = a.values[FDP_R_ENCAP].bytes / a.packets(FDP_R_ENCAP);
  EXPECT_GT(mean, 1500u) << "encapsulated packets average " << mean
                         << " bytes: GSO packets were segmented before the forwarder";
}

TEST_F(TwoHostLab, DifferentVnisAreIsolated) {
  // a200 (VNI 200) and b100 (VNI 100) share a subnet but not a segment.
  EXPECT_EQ(pings(containers_[1], "192.0.2.2", 2), 0);
  EXPECT_EQ(pings(containers_[0], "192.0.2.4", 2), 0);
  // Nor within a host.
  EXPECT_EQ(pings(containers_[0], "192.0.2.3", 2), 0);
  // While the same VNIs still work (so the failures above are isolation).
  EXPECT_EQ(pings(containers_[1], "192.0.2.4", 2), 2);
}

// Interop with a VTEP we did not write: host B is a Linux bridge with a
// kernel vxlan device (head-end replication via an all-zeros FDB entry),
// host A is Foundry. Traffic must flow both ways through Foundry's VTEP, and
// B's kernel must learn A's container behind A's VTEP address, which it only
// does from VXLAN it decapsulated itself.
//
// Host B's underlay veth runs no XDP program now, so it would drop the
// frames A's forwarder redirects into the underlay (see the veth receive
// side in docs/dataplane.md); GRO on it gives it NAPI, as a user of the
// kernel path would set up.
class InteropLab : public LabTest {
 protected:
  void SetUp() override {
    LabTest::SetUp();
    if (IsSkipped()) return;
    if (find_program("bridge").empty()) GTEST_SKIP() << "needs iproute2's bridge tool";
    if (find_program("ethtool").empty()) GTEST_SKIP() << "needs ethtool (scripts/install-deps)";
    a_ = LAB_OK(lab_.add_netns("hostA"));
    b_ = LAB_OK(lab_.add_netns("hostB"));
    ca_ = LAB_OK(lab_.add_netns("a100"));
    cb_ = LAB_OK(lab_.add_netns("b100"));
    LAB_OK(Lab::veth(a_, "ul", b_, "ul"));
    LAB_OK(Lab::address(a_, "ul", "198.51.100.1/24"));
    LAB_OK(Lab::address(b_, "ul", "198.51.100.2/24"));
    LAB_OK(Lab::veth(a_, "a100h", ca_, "eth0", 1450));
    LAB_OK(Lab::address(ca_, "eth0", "192.0.2.1/24", "02:00:00:00:00:01"));
    LAB_OK(Lab::veth(b_, "b100h", cb_, "eth0", 1450));
    LAB_OK(Lab::address(cb_, "eth0", "192.0.2.2/24", "02:00:00:00:00:02"));

    // Host B: the kernel path.
    LAB_OK(Lab::ip(b_, {"link", "add", "br100", "type", "bridge"}));
    LAB_OK(Lab::ip(b_, {"link", "add", "vxlan100", "type", "vxlan", "id", "100", "local", "198.51.100.2", "dstport",
                        "4789", "dev", "ul"}));
    LAB_OK(Lab::ip(b_, {"link", "set", "vxlan100", "master", "br100", "up"}));
    LAB_OK(Lab::ip(b_, {"link", "set", "b100h", "master", "br100"}));
    LAB_OK(Lab::ip(b_, {"link", "set", "br100", "up"}));
    LAB_OK(run_checked({"bridge", "-n", b_, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst",
                        "198.51.100.1"}));
    LAB_OK(run_checked({"ip", "netns", "exec", b_, "ethtool", "-K", "ul", "gro", "on"}));

    // Host A: Foundry.
    dp_ = open_in(a_);
    ASSERT_TRUE(dp_);
    MacAddr b_mac;
    {
      auto scope = LAB_OK(NetnsScope::enter(Lab::path(b_)));
      b_mac = LAB_OK(interface_mac("ul"));
    }
    auto scope = LAB_OK(NetnsScope::enter(Lab::path(a_)));
    LAB_OK(dp_->attach_uplink(UplinkSpec{"ul", *net::Ipv4::parse("198.51.100.1"), 4789, XdpMode::Native}));
    Forwarder& fw = dp_->forwarder();
    MacAddr a_mac = LAB_OK(interface_mac("ul"));
    uint32_t ul = LAB_OK(ifindex_of("ul"));
    net::Ipv4 vtep_b = *net::Ipv4::parse("198.51.100.2");
    LAB_OK(fw.add_neighbor(vtep_b, Neighbor{ul, a_mac, b_mac}));
    LAB_OK(fw.add_flood_remote(100, vtep_b));
    bum_ = LAB_OK(BumReplicator::create(fw));
    bum_->start();
    PortSpec p;
    p.ifname = "a100h";
    p.vni = 100;
    p.mode = XdpMode::Native;
    p.peer = PeerInterface{Lab::path(ca_), "eth0"};
    LAB_OK(dp_->attach_port(p));
    LAB_OK(fw.fdb().put(FdbKey{100, *MacAddr::parse("02:00:00:00:00:02")}, FdbEntry::remote(vtep_b)));
  }

  void TearDown() override {
    bum_.reset();
    dp_.reset();
  }

  std::string a_, b_, ca_, cb_;
  std::unique_ptr<Loader> dp_;
  std::unique_ptr<BumReplicator> bum_;
};

TEST_F(InteropLab, TrafficFlowsBothWaysWithAKernelVxlanPeer) {
  Counters before = LAB_OK(dp_->forwarder().counters());
  EXPECT_EQ(pings(ca_, "192.0.2.2", 5), 5) << "Foundry -> kernel vxlan";
  EXPECT_EQ(pings(cb_, "192.0.2.1", 5), 5) << "kernel vxlan -> Foundry";
  Counters d = LAB_OK(dp_->forwarder().counters()).since(before);
  EXPECT_GE(d.packets(FDP_R_ENCAP), 10u);
  EXPECT_GE(d.packets(FDP_E_DECAP), 10u) << "the kernel's VXLAN was decapsulated by XDP";
  EXPECT_EQ(d.packets(FDP_R_DROP_BAD_VXLAN) + d.packets(FDP_R_DROP_MALFORMED) + d.packets(FDP_R_DROP_BAD_CSUM), 0u);

  // B's kernel learned A's container behind A's VTEP: it accepted our
  // encapsulation (and its source port, checksum, flags) as VXLAN.
  auto fdb = LAB_OK(run_checked({"bridge", "-n", b_, "fdb", "show", "dev", "vxlan100"}));
  EXPECT_NE(fdb.out.find("02:00:00:00:00:01 dst 198.51.100.1"), std::string::npos) << fdb.out;
}

}  // namespace
}  // namespace foundry::dataplane::testing
