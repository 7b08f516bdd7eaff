// Data plane benchmarks (issue 5): nanoseconds per packet of the XDP
// forwarder as the kernel measures them with BPF_PROG_TEST_RUN, and FDB
// update rate in batches.
//
// Everything runs in a network namespace this program creates at start
// (unshare) and that vanishes when it leaves it: veth pairs give the devmap
// and ingress_ifindex real interfaces, the same topology as the integration
// tests' ForwarderFixture (tests/integration/dataplane/forwarder_fixture.h,
// whose frames and constants are reused here):
//
//   VNI 100: p1 (MAC A, learns), p2 (MAC B, static LOCAL)
//   remote MAC R behind VTEP 198.51.100.2 over uplink "ul" (VTEP 198.51.100.1)
//
// Cases:
//   xdp/<case>         BPF_PROG_TEST_RUN: the verdict and rewrite are computed
//                      but a redirect is only reported, not carried out.
//                      forward_local: one call with repeat N; encap/decap
//                      change the buffer, which the kernel does not restore
//                      between repetitions, so min(N, 100,000) calls of
//                      repeat 1 (the kernel's duration per call is averaged).
//   xdp_live/<case>    the same with BPF_F_TEST_XDP_LIVE_FRAMES: every frame
//                      goes through the real XDP_REDIRECT into the veth and
//                      arrives on its peer (counted there and checked).
//   fdb_put_all/<n>    Forwarder::fdb_put_all of n new entries (the map
//                      wrapper the agent's batch RPC calls; not through gRPC).
//
// ns_per_pkt is the kernel's own mean duration per repetition. N comes from
// FOUNDRY_BENCH_REPEAT (default 1,000,000). Needs root; otherwise it says so
// and exits 0 without running anything.
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "forwarder_fixture.h"
#include "foundry/common/subprocess.h"
#include "foundry/dataplane/forwarder.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/test_run.h"
#include "foundry/dataplane/xdp.h"
#include "packet_builder.h"

namespace {

using namespace foundry;
using namespace foundry::dataplane;
using namespace foundry::dataplane::testing;

struct Env {
  std::optional<NetnsScope> netns;
  std::unique_ptr<Forwarder> fw;
  Ports ports;
  uint32_t p2c = 0, ulc = 0;
};

Env* g_env = nullptr;

uint32_t repeat_count() {
  const char* s = std::getenv("FOUNDRY_BENCH_REPEAT");
  if (s == nullptr) return 1'000'000;
  long v = std::strtol(s, nullptr, 10);
  return v > 0 ? static_cast<uint32_t>(v) : 1'000'000;
}

Status setup(Env& env) {
  env.netns.emplace(FOUNDRY_TRY(NetnsScope::enter_new()));
  for (const char* n : {"p1", "p2", "ul"}) {
    std::string peer = std::string(n) + "c";
    FOUNDRY_TRY(run_checked({"ip", "link", "add", n, "type", "veth", "peer", "name", peer}));
  }
  for (const char* n : {"p1", "p1c", "p2", "p2c", "ul", "ulc"}) FOUNDRY_TRY(run_checked({"ip", "link", "set", n, "up"}));
  env.ports.p1 = FOUNDRY_TRY(ifindex_of("p1"));
  env.ports.p2 = FOUNDRY_TRY(ifindex_of("p2"));
  env.ports.up = FOUNDRY_TRY(ifindex_of("ul"));
  env.ports.p1c = FOUNDRY_TRY(ifindex_of("p1c"));
  env.p2c = FOUNDRY_TRY(ifindex_of("p2c"));
  env.ulc = FOUNDRY_TRY(ifindex_of("ulc"));
  env.fw = FOUNDRY_TRY(Forwarder::load());
  auto& fw = *env.fw;
  FOUNDRY_TRY(fw.add_port(env.ports.p1, PortConfig{kVni, false, true}));
  FOUNDRY_TRY(fw.add_port(env.ports.p2, PortConfig{kVni, false, true}));
  FOUNDRY_TRY(fw.set_vtep(VtepConfig{kVtepA, env.ports.up, 4789, 1500}));
  FOUNDRY_TRY(fw.add_neighbor(kVtepB, Neighbor{env.ports.up, kMacUplink, kMacPeerVtep}));
  FOUNDRY_TRY(fw.fdb().put(FdbKey{kVni, kMacB}, FdbEntry::local(env.ports.p2)));
  FOUNDRY_TRY(fw.fdb().put(FdbKey{kVni, kMacR}, FdbEntry::remote(kVtepB)));
  // A veth delivers redirected XDP frames only when its peer runs XDP too
  // (docs/dataplane.md, "veth: the receive side"): the live-frames cases
  // redirect into p2 and ul, so their peers get foundry_pass.
  FOUNDRY_TRY(xdp_attach(env.p2c, fw.pass_program_fd(), XdpMode::Native));
  FOUNDRY_TRY(xdp_attach(env.ulc, fw.pass_program_fd(), XdpMode::Native));
  return {};
}

struct Case {
  const char* ingress;
  Bytes frame;
  fdp_counter reason;  // the counter every run must bump
  uint32_t egress_peer;  // where a live frame arrives
};

Case make_case(int which) {
  const Env& e = *g_env;
  switch (which) {
    case 0:  // p1 -> B on p2: learn lookup + LOCAL redirect
      return {"p1", icmp_frame(kMacB, kMacA, kIpA, kIpB), FDP_R_FWD_LOCAL, e.p2c};
    case 1:  // p1 -> R: VXLAN encapsulation towards 198.51.100.2
      return {"p1", icmp_frame(kMacR, kMacA, kIpA, kIpR), FDP_R_ENCAP, e.ulc};
    default:  // VXLAN from 198.51.100.2 on the uplink, inner to B on p2
      return {"ul", from_peer_vtep(kVni, icmp_frame(kMacB, kMacR, kIpR, kIpB)), FDP_R_FWD_LOCAL, e.p2c};
  }
}

const char* kCaseNames[] = {"forward_local", "encap", "decap"};

// Received packets of an interface in this thread's network namespace.
uint64_t rx_packets(const std::string& ifname) {
  auto n = interface_rx_packets(ifname);
  return n ? *n : 0;
}

void run_case(benchmark::State& state, bool live) {
  const int which = static_cast<int>(state.range(0));
  state.SetLabel(std::string(kCaseNames[which]) + (live ? " live" : ""));
  Case c = make_case(which);
  // Without live frames the kernel runs all repetitions on one buffer and
  // does not restore it in between: after the first encapsulation (or
  // decapsulation) the program would see its own output. Those cases run one
  // repetition per syscall instead (the kernel's duration still times only
  // the program), many times; forward_local leaves the frame as it was.
  const bool one_per_call = !live && which != 0;
  const uint32_t repeat = one_per_call ? 1 : repeat_count();
  const uint32_t calls = one_per_call ? std::min<uint32_t>(repeat_count(), 100'000) : 1;
  Forwarder& fw = *g_env->fw;
  struct xdp_md ctx {};
  ctx.data_end = static_cast<__u32>(c.frame.size());
  ctx.ingress_ifindex = g_env->ports.by_name(c.ingress);
  Bytes out(c.frame.size() + 512);
  const std::string peer = c.egress_peer == g_env->p2c ? "p2c" : "ulc";

  double total_ns = 0;
  uint64_t runs = 0;
  uint64_t arrived = 0;
  for (auto _ : state) {
    auto before = fw.counters();
    uint64_t rx_before = rx_packets(peer);
    double call_ns = 0;
    for (uint32_t call = 0; call < calls; ++call) {
    LIBBPF_OPTS(bpf_test_run_opts, run);
    run.data_in = c.frame.data();
    run.data_size_in = static_cast<__u32>(c.frame.size());
    run.ctx_in = &ctx;
    run.ctx_size_in = sizeof(ctx);
    run.repeat = repeat;
    if (live) {
      run.flags = BPF_F_TEST_XDP_LIVE_FRAMES;  // no data_out: frames are sent, not returned
    } else {
      run.data_out = out.data();
      run.data_size_out = static_cast<__u32>(out.size());
    }
    if (int err = bpf_prog_test_run_opts(fw.program_fd(), &run)) {
      state.SkipWithError(("bpf_prog_test_run_opts: " + std::string(strerror(-err))).c_str());
      return;
    }
    if (!live && run.retval != XDP_REDIRECT) {
      state.SkipWithError(("verdict " + std::to_string(run.retval) + ", expected XDP_REDIRECT").c_str());
      return;
    }
    call_ns += static_cast<double>(run.duration);
    }
    const double mean_ns = call_ns / calls;
    const uint64_t frames = static_cast<uint64_t>(repeat) * calls;
    auto after = fw.counters();
    if (!before || !after) {
      state.SkipWithError("cannot read the forwarder's counters");
      return;
    }
    // Every repetition must have taken the intended path; otherwise we would
    // be timing a drop.
    uint64_t hit = after->since(*before).packets(c.reason);
    if (hit != frames) {
      state.SkipWithError(("expected " + std::to_string(frames) + " x " + std::string(counter_name(c.reason)) +
                           ", counted " + std::to_string(hit))
                              .c_str());
      return;
    }
    if (live) arrived += rx_packets(peer) - rx_before;
    // run.duration is the mean per repetition in ns (kernel's measurement).
    state.SetIterationTime(mean_ns * static_cast<double>(frames) / 1e9);
    total_ns += mean_ns;
    ++runs;
  }
  if (live && runs > 0)
    state.counters["arrived_frac"] = static_cast<double>(arrived) / (static_cast<double>(runs) * repeat);
  if (runs > 0) {
    state.counters["ns_per_pkt"] = total_ns / static_cast<double>(runs);
    state.counters["Mpps"] = 1e3 / (total_ns / static_cast<double>(runs));
  }
  state.SetItemsProcessed(static_cast<int64_t>(runs * repeat * calls));
}

void BM_Xdp(benchmark::State& state) { run_case(state, false); }
void BM_XdpLive(benchmark::State& state) { run_case(state, true); }

BENCHMARK(BM_Xdp)->Name("xdp")->DenseRange(0, 2)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_XdpLive)
    ->Name("xdp_live")
    ->DenseRange(0, 2)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// FDB writes through Forwarder::fdb_put_all (all-or-nothing batch, one
// lookup + one update syscall per entry): the code under the agent's
// AddFdbEntries RPC, without gRPC marshalling.
void BM_FdbPutAll(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  Forwarder& fw = *g_env->fw;
  std::vector<std::pair<FdbKey, FdbEntry>> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    MacAddr m{};
    m.bytes = {0x02, 0x10, static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16),
               static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    batch.emplace_back(FdbKey{kOtherVni, m}, FdbEntry::remote(kVtepB));
  }
  std::vector<FdbKey> keys;
  for (const auto& [k, v] : batch) keys.push_back(k);
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = fw.fdb_put_all(batch);
    auto t1 = std::chrono::steady_clock::now();
    if (!r) {
      state.SkipWithError(r.error().to_string().c_str());
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    // Not timed: remove them so every iteration inserts new entries.
    if (auto e = fw.fdb_erase_all(keys); !e) {
      state.SkipWithError(e.error().to_string().c_str());
      return;
    }
  }
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FdbPutAll)
    ->Name("fdb_put_all")
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr,
                 "foundry_bench_dataplane: skipped: needs root (BPF_PROG_TEST_RUN, XDP attach and a network "
                 "namespace); run it with sudo\n");
    return 0;
  }
  Env env;
  if (auto st = setup(env); !st) {
    std::fprintf(stderr, "foundry_bench_dataplane: skipped: cannot set up the namespace and forwarder: %s\n",
                 st.error().to_string().c_str());
    return 0;
  }
  g_env = &env;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_env = nullptr;
  env.fw.reset();
  env.netns.reset();  // leave the namespace; it and its veths go away
  return 0;
}
