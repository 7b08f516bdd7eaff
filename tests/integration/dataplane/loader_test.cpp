// The loader: pinned maps that outlive the process and are adopted on the
// next load, XDP attachments that stay and are replaced atomically, foreign
// programs left alone, and the MTU rule for ports behind a VTEP.
//
// Each test runs its thread in a private mount namespace (a fresh BPF
// filesystem over /sys/fs/bpf, invisible to the host) and a private network
// namespace (its own veths); both vanish when the test ends.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "forwarder_fixture.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/loader.h"
#include "foundry/dataplane/tc.h"
#include "foundry/dataplane/pin.h"
#include "foundry/dataplane/xdp.h"

namespace foundry::dataplane::testing {
namespace {

// unshare(CLONE_NEWNS) for the calling thread, with every mount private so
// nothing propagates to the host; back to the original on destruction.
class PrivateMountNs {
 public:
  static Result<std::unique_ptr<PrivateMountNs>> enter() {
    auto orig = FOUNDRY_TRY(open_netns("/proc/thread-self/ns/mnt"));
    if (::unshare(CLONE_NEWNS) != 0) return fail_errno(ErrorKind::Operation, "unshare mount namespace");
    std::unique_ptr<PrivateMountNs> p(new PrivateMountNs(std::move(orig)));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return fail_errno(ErrorKind::Operation, "make mounts private");
    return p;
  }
  ~PrivateMountNs() {
    if (::setns(orig_.get(), CLONE_NEWNS) != 0) std::abort();  // would leave the test in the wrong namespace
  }

 private:
  explicit PrivateMountNs(UniqueFd orig) : orig_(std::move(orig)) {}
  UniqueFd orig_;
};

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: mount and network namespaces, BPF";
    auto mnt = PrivateMountNs::enter();
    if (!mnt) GTEST_SKIP() << "no private mount namespace: " << mnt.error().to_string();
    mnt_ = std::move(*mnt);
    // A fresh, empty bpffs where the product expects one.
    ASSERT_EQ(::mount("bpf", kBpffsMountPoint, "bpf", 0, "mode=0700"), 0) << std::strerror(errno);
    auto net = NetnsScope::enter_new();
    ASSERT_TRUE(net.has_value()) << net.error().to_string();
    net_.emplace(std::move(*net));
    for (const char* n : {"p1", "p2", "ul"}) {
      auto r = run_checked({"ip", "link", "add", n, "type", "veth", "peer", "name", std::string(n) + "c"});
      ASSERT_TRUE(r.has_value()) << r.error().to_string();
    }
  }

  void TearDown() override {
    net_.reset();
    mnt_.reset();
  }

  uint32_t idx(const char* n) {
    auto i = ifindex_of(n);
    EXPECT_TRUE(i.has_value()) << i.error().to_string();
    return i ? *i : 0;
  }

  std::optional<XdpAttachment> attached(const char* n) {
    auto a = xdp_query(idx(n));
    EXPECT_TRUE(a.has_value()) << a.error().to_string();
    return a ? *a : std::nullopt;
  }

  static void set_mtu(const std::string& ifname, int mtu) {
    auto r = run_checked({"ip", "link", "set", ifname, "mtu", std::to_string(mtu)});
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
  }

  std::unique_ptr<PrivateMountNs> mnt_;
  std::optional<NetnsScope> net_;
};

TEST_F(LoaderTest, ForwardingStateSurvivesTheLoaderAndIsAdopted) {
  uint32_t first_prog = 0;
  set_mtu("p1", 1450);
  set_mtu("p1c", 1450);
  {
    auto dp = Loader::open();
    ASSERT_TRUE(dp.has_value()) << dp.error().to_string() << "\n" << dp.error().detail();
    EXPECT_FALSE((*dp)->adopted_pinned_state());
    FOUNDRY_ASSERT_OK((*dp)->attach_uplink(UplinkSpec{"ul", kVtepA, 4789, XdpMode::Native}));
    FOUNDRY_ASSERT_OK((*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Native, PeerInterface{"", "p1c"}}));
    Forwarder& fw = (*dp)->forwarder();
    for (uint8_t i = 0; i < 100; ++i) {
      MacAddr m = mac("02:00:00:00:05:00");
      m.bytes[5] = i;
      FOUNDRY_ASSERT_OK(fw.fdb().put(FdbKey{kVni, m}, FdbEntry::remote(kVtepB)));
    }
    FOUNDRY_ASSERT_OK(fw.add_neighbor(kVtepB, Neighbor{idx("ul"), kMacUplink, kMacPeerVtep}));
    FOUNDRY_ASSERT_OK(fw.add_flood_remote(kVni, kVtepB));
    // One frame from A: learned, counted.
    XdpRunOptions o;
    o.ingress_ifindex = idx("p1");
    auto r = run_xdp(fw.program_fd(), icmp_frame(kMacX, kMacA, kIpA, kIpB), o);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    auto att = attached("p1");
    ASSERT_TRUE(att.has_value());
    first_prog = att->prog_id;
  }

  // The process's handles are gone; the interface keeps its program and the
  // bpffs keeps the maps.
  auto still = attached("p1");
  ASSERT_TRUE(still.has_value()) << "XDP attachments belong to the interface, not to the loader";
  EXPECT_EQ(still->prog_id, first_prog);
  auto pinned = list_pinned(kDefaultPinDir);
  ASSERT_TRUE(pinned.has_value());
  std::set<std::string> names(pinned->begin(), pinned->end());
  for (const char* m : {"fdb", "ports", "tx_ports", "flood_groups", "neighbours", "vtep", "vnis", "flood_remote",
                        "bum_events", "learn_events", "counters"})
    EXPECT_TRUE(names.count(m)) << "map " << m << " not pinned in " << kDefaultPinDir;

  auto dp = Loader::open();
  ASSERT_TRUE(dp.has_value()) << dp.error().to_string() << "\n" << dp.error().detail();
  EXPECT_TRUE((*dp)->adopted_pinned_state());
  Forwarder& fw = (*dp)->forwarder();
  auto all = fw.fdb().entries();
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), 101u) << "100 static entries + the MAC learned before the restart";
  auto learned = fw.fdb().get(FdbKey{kVni, kMacA});
  ASSERT_TRUE(learned.has_value() && learned->has_value());
  EXPECT_EQ((*learned)->ifindex, idx("p1"));
  auto vt = fw.vtep();
  ASSERT_TRUE(vt.has_value() && vt->has_value());
  EXPECT_EQ((*vt)->ip, kVtepA);
  auto group = fw.flood_group(kVni);
  ASSERT_TRUE(group.has_value());
  EXPECT_EQ(*group, std::vector<uint32_t>{idx("p1")}) << "inner flood maps live on inside the pinned outer map";
  auto c = fw.counters();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->packets(FDP_E_LEARN_NEW), 1u) << "counters are state too";

  // The new program, running on the adopted maps, forwards at once.
  XdpRunOptions o;
  o.ingress_ifindex = idx("p1");
  MacAddr r5 = mac("02:00:00:00:05:05");
  auto r = run_xdp(fw.program_fd(), icmp_frame(r5, kMacA, kIpA, kIpR), o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(xdp_verdict_name(r->verdict), "XDP_REDIRECT");
  EXPECT_EQ(r->frame.size(), 98u + 50u);

  // Re-attaching swaps the program in place.
  FOUNDRY_ASSERT_OK((*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Native, PeerInterface{"", "p1c"}}));
  auto now = attached("p1");
  ASSERT_TRUE(now.has_value());
  EXPECT_NE(now->prog_id, first_prog);
  EXPECT_EQ(now->prog_name, "foundry_forward");

  FOUNDRY_ASSERT_OK((*dp)->detach_port("p1", PeerInterface{"", "p1c"}));
  FOUNDRY_ASSERT_OK((*dp)->detach_uplink());
  EXPECT_FALSE(attached("p1").has_value());
  EXPECT_FALSE(attached("p1c").has_value());
  EXPECT_FALSE(attached("ul").has_value());
}

TEST_F(LoaderTest, RemovingThePinnedStateStartsEmpty) {
  {
    auto dp = Loader::open();
    ASSERT_TRUE(dp.has_value()) << dp.error().to_string();
    FOUNDRY_ASSERT_OK((*dp)->forwarder().fdb().put(FdbKey{1, kMacA}, FdbEntry::local(idx("p1"))));
  }
  FOUNDRY_ASSERT_OK(remove_pinned(kDefaultPinDir));
  auto left = list_pinned(kDefaultPinDir);
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->empty());
  auto dp = Loader::open();
  ASSERT_TRUE(dp.has_value());
  EXPECT_FALSE((*dp)->adopted_pinned_state());
  EXPECT_TRUE((*dp)->forwarder().fdb().entries()->empty());
}

TEST_F(LoaderTest, PinnedMapsOfAnotherSizeAreRefusedWithAHint) {
  LoaderOptions small;
  small.fdb_max_entries = 1024;
  ASSERT_TRUE(Loader::open(small).has_value());
  LoaderOptions big;
  big.fdb_max_entries = 2048;
  auto dp = Loader::open(big);
  ASSERT_FALSE(dp.has_value());
  EXPECT_NE(dp.error().hint().find(kDefaultPinDir), std::string::npos) << dp.error().to_string();
  EXPECT_NE(dp.error().to_string().find("'fdb'"), std::string::npos) << dp.error().to_string();
  EXPECT_NE(dp.error().to_string().find("max entries 1024 != 2048"), std::string::npos) << dp.error().to_string();
}

TEST_F(LoaderTest, BpffsIsMountedOnlyWhereThereIsNone) {
  auto again = ensure_bpffs(kBpffsMountPoint);
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_FALSE(*again) << "an existing BPF filesystem is reused, never remounted";

  char tmpl[] = "/tmp/foundry-bpffs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  EXPECT_FALSE(is_bpffs(dir));
  auto mounted = ensure_bpffs(dir);
  ASSERT_TRUE(mounted.has_value()) << mounted.error().to_string();
  EXPECT_TRUE(*mounted);
  EXPECT_TRUE(is_bpffs(dir));
  EXPECT_FALSE(*ensure_bpffs(dir));
  // Pinning anywhere but a bpffs is refused up front.
  auto not_bpffs = prepare_pin_dir("/tmp/foundry-not-bpffs-" + std::to_string(::getpid()));
  EXPECT_FALSE(not_bpffs.has_value());
  ::rmdir(("/tmp/foundry-not-bpffs-" + std::to_string(::getpid())).c_str());
  EXPECT_EQ(::umount2(dir.c_str(), 0), 0);
  ::rmdir(dir.c_str());
}

TEST_F(LoaderTest, ForeignXdpProgramsAreLeftAlone) {
  // A minimal program that is not ours: r0 = XDP_PASS; exit.
  struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", insns, 2, nullptr);
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  UniqueFd other(fd);
  ASSERT_EQ(bpf_xdp_attach(static_cast<int>(idx("p2")), other.get(), XDP_FLAGS_DRV_MODE, nullptr), 0);

  LoaderOptions o;
  o.pin_dir.clear();
  auto dp = Loader::open(o);
  ASSERT_TRUE(dp.has_value());
  auto r = (*dp)->attach_port(PortSpec{"p2", kVni, true, XdpMode::Native, std::nullopt});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().to_string().find("other_xdp"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().hint().find("xdp off"), std::string::npos);
  EXPECT_EQ(attached("p2")->prog_name, "other_xdp");
  // Nothing of the failed port stays in the maps.
  EXPECT_FALSE((*dp)->forwarder().ports().get(idx("p2"))->has_value());
  EXPECT_TRUE((*dp)->forwarder().flood_group(kVni)->empty());
  auto d = xdp_detach(idx("p2"));
  EXPECT_FALSE(d.has_value()) << "detach must not remove someone else's program";
  EXPECT_EQ(attached("p2")->prog_name, "other_xdp");
  ASSERT_EQ(bpf_xdp_detach(static_cast<int>(idx("p2")), XDP_FLAGS_DRV_MODE, nullptr), 0);
}

TEST_F(LoaderTest, ModesSwitchAndDetachIsIdempotent) {
  LoaderOptions o;
  o.pin_dir.clear();
  auto dp = Loader::open(o);
  ASSERT_TRUE(dp.has_value());
  auto m = (*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Generic, std::nullopt});
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(*m, XdpMode::Generic);
  EXPECT_EQ(attached("p1")->mode, XdpMode::Generic);
  m = (*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Auto, std::nullopt});
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(*m, XdpMode::Native) << "veth supports native XDP";
  EXPECT_EQ(attached("p1")->mode, XdpMode::Native);
  FOUNDRY_ASSERT_OK((*dp)->detach_port("p1"));
  FOUNDRY_ASSERT_OK(xdp_detach(idx("p1")));
  EXPECT_FALSE(attached("p1").has_value());
}

#define LAB_TC_NAME(ifindex) \
  ([&] {                                                              \
    auto q = tc_query(ifindex);                                       \
    return q && *q ? (*q)->prog_name : std::string("<none>");         \
  }())

// XDP -> TC -> XDP on one port: one Foundry program at a time, TC mode's
// clsact qdisc goes with its filter (an empty clsact still costs every skb),
// a foreign TC filter in Foundry's slot is never replaced.
TEST_F(LoaderTest, TcModeReplacesXdpAndBack) {
  if (find_program("tc").empty()) GTEST_SKIP() << "needs iproute2's tc to inspect qdiscs";
  LoaderOptions o;
  o.pin_dir.clear();
  auto dp = Loader::open(o);
  ASSERT_TRUE(dp.has_value());
  auto qdiscs = [] { return run_checked({"tc", "qdisc", "show", "dev", "p1"})->out; };
  auto m = (*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Native, std::nullopt});
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  m = (*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Tc, std::nullopt});
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(*m, XdpMode::Tc);
  EXPECT_FALSE(attached("p1").has_value()) << "the XDP program went when TC came";
  auto tc = tc_query(idx("p1"));
  ASSERT_TRUE(tc.has_value() && tc->has_value());
  EXPECT_EQ((*tc)->prog_name, "foundry_tc");
  EXPECT_NE(qdiscs().find("clsact"), std::string::npos);
  // Attaching again in TC mode swaps in place.
  FOUNDRY_ASSERT_OK((*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Tc, std::nullopt}));
  m = (*dp)->attach_port(PortSpec{"p1", kVni, true, XdpMode::Native, std::nullopt});
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(attached("p1")->prog_name, "foundry_forward");
  EXPECT_FALSE(tc_query(idx("p1"))->has_value());
  EXPECT_EQ(qdiscs().find("clsact"), std::string::npos) << "empty clsact left behind: " << qdiscs();
  FOUNDRY_ASSERT_OK((*dp)->detach_port("p1"));

  // Someone else's filter in our slot stays, and so does its qdisc.
  struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // TC_ACT_OK
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "other_tc", "GPL", insns, 2, nullptr);
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  UniqueFd other(fd);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(idx("p2")), .attach_point = BPF_TC_INGRESS);
  ASSERT_EQ(bpf_tc_hook_create(&hook), 0);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = other.get(), .handle = kTcHandle, .priority = kTcPriority);
  ASSERT_EQ(bpf_tc_attach(&hook, &opts), 0);
  auto r = (*dp)->attach_port(PortSpec{"p2", kVni, true, XdpMode::Tc, std::nullopt});
  ASSERT_FALSE(r.has_value()) << "a foreign filter in Foundry's slot must not be replaced";
  EXPECT_NE(r.error().to_string().find("other_tc"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(LAB_TC_NAME(idx("p2")), "other_tc");
  EXPECT_FALSE(tc_detach(idx("p2")).has_value()) << "detach must not remove someone else's filter";
  EXPECT_EQ(LAB_TC_NAME(idx("p2")), "other_tc");
}

TEST_F(LoaderTest, PortsBehindAVtepMustLeaveRoomForVxlan) {
  LoaderOptions o;
  o.pin_dir.clear();
  auto dp = Loader::open(o);
  ASSERT_TRUE(dp.has_value());
  set_mtu("ul", 1500);
  FOUNDRY_ASSERT_OK((*dp)->attach_uplink(UplinkSpec{"ul", kVtepA, 4789, XdpMode::Native}));
  PortSpec p{"p1", kVni, true, XdpMode::Native, PeerInterface{"", "p1c"}};

  auto r = (*dp)->attach_port(p);  // veths default to 1500
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().to_string().find("at most 1450"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().hint().find("ip link set dev p1 mtu 1450"), std::string::npos) << r.error().hint();
  EXPECT_FALSE(attached("p1").has_value());
  EXPECT_FALSE((*dp)->forwarder().ports().get(idx("p1"))->has_value());

  set_mtu("p1", 1450);  // the container end still says 1500
  r = (*dp)->attach_port(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().to_string().find("p1c"), std::string::npos) << r.error().to_string();

  set_mtu("p1c", 1450);
  r = (*dp)->attach_port(p);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();

  // A larger underlay MTU allows a 1500-byte container MTU.
  set_mtu("ul", 1550);
  FOUNDRY_ASSERT_OK((*dp)->attach_uplink(UplinkSpec{"ul", kVtepA, 4789, XdpMode::Native}));
  set_mtu("p2", 1500);
  EXPECT_TRUE((*dp)->attach_port(PortSpec{"p2", kVni, true, XdpMode::Native, PeerInterface{"", "p2c"}}).has_value());
}

}  // namespace
}  // namespace foundry::dataplane::testing
