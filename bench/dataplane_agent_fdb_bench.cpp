// FDB updates through gRPC (issue 5: 50,000 per second or more in batches):
// the real foundry-agent binary, over its Unix socket, as `foundry net` and
// an orchestrator talk to it.
//
// The agent runs in a private mount and network namespace of its own
// (`unshare -m -n`, a fresh bpffs over /sys/fs/bpf), so it pins nothing on
// the host and sees none of its interfaces; it is killed when the program
// ends. What is timed is the client's whole call: protobuf encoding, the
// Unix socket, the agent's parsing and validation of every entry, and the
// all-or-nothing write into the pinned `fdb` hash map (a lookup and an
// update per entry, for rollback). The request is built before the clock
// starts; the entries are deleted again, untimed, after every iteration so
// each one inserts new keys.
//
//   agent_add_fdb_entries/<n>  one AddFdbEntries call with n entries
//   agent_add_fdb_entry/<n>    n AddFdbEntry calls, one entry each (no batch)
//
// Needs root (BPF, namespaces, mount); otherwise it says so and exits 0.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "foundry/agent/client.h"
#include "foundry/common/subprocess.h"

extern char** environ;

namespace {

namespace pb = ::foundry::agent::v1;
using foundry::agent::AgentClient;

// The agent process, killed and reaped on destruction.
class AgentProcess {
 public:
  AgentProcess() = default;
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;
  ~AgentProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  bool start(const std::string& agent, const std::string& socket_path, const std::string& log_path) {
    std::string unshare = foundry::find_program("unshare");
    if (unshare.empty()) return false;
    // $0 and $1 of the inline script: no quoting of paths in shell text.
    std::vector<std::string> argv{unshare, "-m", "-n", "--propagation", "private", "sh", "-c",
                                  "mount -t bpf bpf /sys/fs/bpf && exec \"$0\" --listen \"unix:$1\"", agent,
                                  socket_path};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }

 private:
  pid_t pid_ = -1;
};

AgentClient* g_client = nullptr;

std::string mac_of(uint32_t i) {
  return fmt::format("02:20:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff,
                     i & 0xff);
}

// n REMOTE entries over 100 VNIs and 200 VTEPs, as a cluster's FDB looks.
void fill(uint32_t n, pb::AddFdbEntriesRequest& add, pb::DeleteFdbEntriesRequest& del) {
  for (uint32_t i = 0; i < n; ++i) {
    auto* e = add.add_entries();
    e->set_vni(1000 + i % 100);
    e->set_mac(mac_of(i));
    e->mutable_remote()->set_vtep(fmt::format("198.51.100.{}", 2 + i % 200));
    auto* k = del.add_keys();
    k->set_vni(e->vni());
    k->set_mac(e->mac());
  }
}

bool erase(benchmark::State& state, const pb::DeleteFdbEntriesRequest& del) {
  auto r = g_client->call(&pb::Agent::Stub::DeleteFdbEntries, del, "delete the batch");
  if (!r || r->deleted() != static_cast<uint32_t>(del.keys_size())) {
    state.SkipWithError(r ? "DeleteFdbEntries deleted fewer entries than were added" : r.error().to_string().c_str());
    return false;
  }
  return true;
}

void BM_AddFdbEntries(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  pb::AddFdbEntriesRequest add;
  pb::DeleteFdbEntriesRequest del;
  fill(n, add, del);
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = g_client->call(&pb::Agent::Stub::AddFdbEntries, add, "add the batch");
    auto t1 = std::chrono::steady_clock::now();
    if (!r || r->written() != n) {
      state.SkipWithError(r ? "AddFdbEntries wrote fewer entries than sent" : r.error().to_string().c_str());
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (!erase(state, del)) return;
  }
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AddFdbEntries)
    ->Name("agent_add_fdb_entries")
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_AddFdbEntry(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  pb::AddFdbEntriesRequest batch;
  pb::DeleteFdbEntriesRequest del;
  fill(n, batch, del);
  std::vector<pb::AddFdbEntryRequest> reqs(n);
  for (uint32_t i = 0; i < n; ++i) *reqs[i].mutable_entry() = batch.entries(static_cast<int>(i));
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& req : reqs) {
      auto r = g_client->call(&pb::Agent::Stub::AddFdbEntry, req, "add one entry");
      if (!r) {
        state.SkipWithError(r.error().to_string().c_str());
        return;
      }
    }
    auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (!erase(state, del)) return;
  }
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AddFdbEntry)
    ->Name("agent_add_fdb_entry")
    ->Arg(1000)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr,
                 "foundry_bench_agent_fdb: skipped: needs root (foundry-agent loads BPF in a private mount and "
                 "network namespace); run it with sudo\n");
    return 0;
  }
  std::string agent = std::string(FOUNDRY_BINARY_DIR) + "/src/agent/foundry-agent";
  if (::access(agent.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "foundry_bench_agent_fdb: %s not built (cmake --build ... --target foundry-agent)\n",
                 agent.c_str());
    return 1;
  }
  std::string dir = "/tmp/foundry-agent-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  int rc = 0;
  {
    AgentProcess proc;
    std::string sock = dir + "/agent.sock";
    if (!proc.start(agent, sock, dir + "/agent.log")) {
      std::fprintf(stderr, "foundry_bench_agent_fdb: cannot start %s under unshare\n", agent.c_str());
      rc = 1;
    } else {
      // Ready when the socket exists and GetStats answers (probing before the
      // socket exists would put the channel into reconnect backoff).
      for (int i = 0; i < 500 && ::access(sock.c_str(), F_OK) != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      AgentClient client = AgentClient::connect("unix:" + sock);
      bool up = false;
      for (int i = 0; i < 500 && !up; ++i) {
        up = client.call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "probe").has_value();
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (!up) {
        std::fprintf(stderr, "foundry_bench_agent_fdb: foundry-agent did not answer; see %s/agent.log\n",
                     dir.c_str());
        rc = 1;
      } else {
        g_client = &client;
        benchmark::RunSpecifiedBenchmarks();
        g_client = nullptr;
      }
    }
  }
  benchmark::Shutdown();
  std::error_code ec;
  if (rc == 0) std::filesystem::remove_all(dir, ec);
  return rc;
}
