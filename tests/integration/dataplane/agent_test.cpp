// foundry-agent as a user runs it: the real binary, in a "host" network
// namespace of the test's lab and a private mount namespace with its own
// bpffs over /sys/fs/bpf, driven over gRPC on a Unix socket in a temporary
// directory.
//
// The mount namespace belongs to a keeper process (`unshare -m`, mounts the
// bpffs, sleeps); each agent joins it with `nsenter -m`, so a restarted
// agent finds the maps its predecessor pinned. The test process itself never
// changes mount namespace: once gRPC has started threads that share its
// filesystem context, the kernel would not let it change back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "foundry/agent/client.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/pin.h"
#include "foundry/dataplane/tc.h"
#include "foundry/dataplane/xdp.h"
#include "lab.h"

extern char** environ;

namespace foundry::dataplane::testing {
namespace {

namespace pb = ::foundry::agent::v1;
using agent::AgentClient;

// A child process killed and reaped when the object goes away.
class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { (void)stop(SIGKILL); }

  Status spawn(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      errno = rc;
      return fail_errno(ErrorKind::Operation, "spawn {}", argv[0]);
    }
    return ok();
  }

  pid_t pid() const { return pid_; }

  // Sends sig and waits up to 10 s; returns the exit code (128+n if killed).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    for (int i = 0; i < 1000; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return 128 + SIGKILL;
  }

 private:
  pid_t pid_ = -1;
};

template <typename T>
T take(Result<T>&& r) {
  return std::move(r).value();
}
inline void take(Status&&) {}

#define AG_OK(expr)                                                         \
  ({                                                                        \
    auto ag_ok_r_ = (expr);                                                 \
    if (!ag_ok_r_) FAIL() << #expr << ": " << ag_ok_r_.error().to_string(); \
    take(std::move(ag_ok_r_));                                              \
  })

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: BPF, mount and network namespaces";
    if (find_program("ip").empty() || find_program("ping").empty()) GTEST_SKIP() << "needs ip and ping";
    binary_ = std::string(FOUNDRY_BINARY_DIR) + "/src/agent/foundry-agent";
    ASSERT_EQ(::access(binary_.c_str(), X_OK), 0) << binary_ << " not built";
    dir_ = "/tmp/foundry-agent-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    socket_ = "unix:" + dir_ + "/agent.sock";

    host_ = AG_OK(lab_.add_netns("host"));
    c1_ = AG_OK(lab_.add_netns("c1"));
    c2_ = AG_OK(lab_.add_netns("c2"));
    AG_OK(Lab::veth(host_, "c1h", c1_, "eth0"));
    AG_OK(Lab::veth(host_, "c2h", c2_, "eth0"));
    AG_OK(Lab::address(c1_, "eth0", "192.0.2.1/24"));
    AG_OK(Lab::address(c2_, "eth0", "192.0.2.2/24"));

    // The agent inherits this thread's network namespace.
    netns_.emplace(AG_OK(NetnsScope::enter(Lab::path(host_))));
    AG_OK(keeper_.spawn({find_program("unshare"), "-m", "--propagation", "private", "sh", "-c",
                         "mount -t bpf bpf /sys/fs/bpf && exec sleep 100000"},
                        dir_ + "/keeper.log"));
    for (int i = 0; i < 500; ++i) {
      auto r = run({"nsenter", "-t", std::to_string(keeper_.pid()), "-m", "stat", "-f", "-c", "%T", "/sys/fs/bpf"});
      if (r && r->ok() && r->out.find("bpf") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "the keeper's private bpffs did not appear";
  }

  void TearDown() override {
    client_.reset();
    agent_.stop();
    keeper_.stop(SIGKILL);  // the private mounts and bpffs go with it
    netns_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start_agent(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{find_program("nsenter"), "-t", std::to_string(keeper_.pid()), "-m", "--",
                                  binary_, "--listen", socket_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // Readiness is the socket appearing; probing earlier would put the gRPC
    // channel into reconnect backoff.
    std::string path = socket_.substr(5);
    ::unlink(path.c_str());
    AG_OK(agent_.spawn(argv, dir_ + "/agent.log"));
    for (int i = 0; i < 500 && ::access(path.c_str(), F_OK) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    client_ = std::make_unique<AgentClient>(AgentClient::connect(socket_));
    for (int i = 0; i < 500; ++i) {
      if (client_->call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "probe").has_value()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "foundry-agent did not answer within 5 s; log:\n" << log();
  }

  std::string log() {
    std::ifstream f(dir_ + "/agent.log");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  void attach(const std::string& ifname, const std::string& container, pb::XdpMode mode = pb::XDP_MODE_NATIVE) {
    pb::AttachInterfaceRequest req;
    req.set_interface(ifname);
    req.set_vni(100);
    req.set_mode(mode);
    req.set_peer_netns(container);  // a bare name: /run/netns/<name>
    req.set_peer_interface("eth0");
    AG_OK(client_->call(&pb::Agent::Stub::AttachInterface, req, "attach " + ifname));
  }

  uint64_t counter(const std::string& name) {
    auto s = client_->call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "stats");
    if (!s) return 0;
    for (const auto& c : s->counters())
      if (c.name() == name) return c.packets();
    return 0;
  }

  // The id of the forwarder on ifindex: the TC filter's program or the XDP program.
  uint32_t prog_id(uint32_t ifindex, pb::XdpMode mode) {
    if (mode == pb::XDP_MODE_TC) {
      auto q = tc_query(ifindex);
      return q && *q ? (*q)->prog_id : 0;
    }
    auto q = xdp_query(ifindex);
    return q && *q ? (*q)->prog_id : 0;
  }

  void restart_during_steady_ping(pb::XdpMode mode);

  std::string binary_, dir_, socket_, host_, c1_, c2_;
  Lab lab_;
  std::optional<NetnsScope> netns_;
  Daemon keeper_;
  Daemon agent_;
  std::unique_ptr<AgentClient> client_;
};

TEST_F(AgentTest, RestartDuringSteadyPingLosesAtMostOnePacket) { restart_during_steady_ping(pb::XDP_MODE_NATIVE); }

// The same with the ports in TC mode: the new agent finds foundry_tc in
// Foundry's filter slot and swaps its own in place.
TEST_F(AgentTest, RestartDuringSteadyPingLosesAtMostOnePacketInTcMode) {
  restart_during_steady_ping(pb::XDP_MODE_TC);
}

void AgentTest::restart_during_steady_ping(pb::XdpMode mode) {
  start_agent();
  attach("c1h", c1_, mode);
  attach("c2h", c2_, mode);
  ASSERT_EQ(AG_OK(Lab::ping(c1_, "192.0.2.2", 2)), 2);
  uint32_t c1h = AG_OK(ifindex_of("c1h"));
  uint32_t first_prog = prog_id(c1h, mode);
  ASSERT_NE(first_prog, 0u);

  // 400 echoes 10 ms apart (4 s), the agent restarted in the middle.
  std::string ping_out;
  std::thread pinger([&] {
    RunOptions o;
    o.timeout = std::chrono::seconds(30);
    auto r = run({"ip", "netns", "exec", c1_, "ping", "-n", "-q", "-i", "0.01", "-c", "400", "-W", "1", "192.0.2.2"}, o);
    if (r) ping_out = r->out;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(agent_.stop(SIGTERM), 0) << log();
  // No agent at all for a moment: the data plane does not need one.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  start_agent();
  pinger.join();

  size_t at = ping_out.find(" received");
  ASSERT_NE(at, std::string::npos) << ping_out;
  size_t start = ping_out.rfind(' ', at - 1);
  int received = std::stoi(ping_out.substr(start + 1, at - start - 1));
  EXPECT_GE(received, 399) << ping_out;

  // The new agent adopted the state and put its own program in place.
  EXPECT_NE(log().find("adopted"), std::string::npos) << log();
  uint32_t now_prog = prog_id(c1h, mode);
  EXPECT_NE(now_prog, 0u);
  EXPECT_NE(now_prog, first_prog);
  EXPECT_GE(counter("forward.local"), 800u) << "counters survive the restart too";
  auto fdb = AG_OK(client_->call(&pb::Agent::Stub::ListFdb, pb::ListFdbRequest{}, "list"));
  EXPECT_EQ(fdb.entries_size(), 2) << "both containers' MACs, learned before the restart";
}

TEST_F(AgentTest, HundredThousandFdbEntriesLoadInOneBatch) {
  start_agent();
  pb::AddFdbEntriesRequest req;
  constexpr int kEntries = 100000;
  for (int i = 0; i < kEntries; ++i) {
    auto* e = req.add_entries();
    e->set_vni(1 + i % 1000);
    e->set_mac(fmt::format("02:00:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff,
                           i & 0xff));
    e->mutable_remote()->set_vtep(fmt::format("198.51.100.{}", 2 + i % 200));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = client_->call(&pb::Agent::Stub::AddFdbEntries, req, "add 100000 entries");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->written(), static_cast<uint32_t>(kEntries));
  double rate = kEntries / secs;
  RecordProperty("fdb_entries_per_second", static_cast<int>(rate));
  std::printf("100000 FDB entries through gRPC in %.3f s: %.0f entries/s\n", secs, rate);
  EXPECT_GE(rate, 50000.0) << "goal: 50,000 FDB updates per second through gRPC in batches";

  auto list = AG_OK(client_->call(&pb::Agent::Stub::ListFdb, pb::ListFdbRequest{}, "list"));
  EXPECT_EQ(list.entries_size(), kEntries);
}

// {vni, mac} -> remote VTEP of every entry the agent lists.
std::map<std::string, std::string> fdb_snapshot(AgentClient& client) {
  auto list = client.call(&pb::Agent::Stub::ListFdb, pb::ListFdbRequest{}, "list");
  EXPECT_TRUE(list.has_value()) << list.error().to_string();
  std::map<std::string, std::string> out;
  if (!list) return out;
  for (const auto& e : list->entries())
    out[fmt::format("{}/{}", e.vni(), e.mac())] = e.has_remote() ? e.remote().vtep() : e.local().interface();
  return out;
}

TEST_F(AgentTest, FullMapRejectsTheWholeBatch) {
  start_agent({"--fdb-size", "1000"});
  // Ten entries already there; the failing batch changes them (other VTEP)
  // before it runs out of room, so a rollback has old values to restore.
  pb::AddFdbEntriesRequest first;
  for (int i = 0; i < 10; ++i) {
    auto* e = first.add_entries();
    e->set_vni(7);
    e->set_mac(fmt::format("02:00:00:00:00:{:02x}", i));
    e->mutable_remote()->set_vtep("198.51.100.2");
  }
  AG_OK(client_->call(&pb::Agent::Stub::AddFdbEntries, first, "add 10"));
  auto before = fdb_snapshot(*client_);
  ASSERT_EQ(before.size(), 10u);

  pb::AddFdbEntriesRequest req;
  for (int i = 0; i < 1001; ++i) {
    auto* e = req.add_entries();
    e->set_vni(7);
    e->set_mac(fmt::format("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff));
    e->mutable_remote()->set_vtep("198.51.100.3");
  }
  grpc::ClientContext ctx;
  pb::AddFdbEntriesResponse resp;
  grpc::Status st = client_->stub().AddFdbEntries(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("full"), std::string::npos) << st.error_message();
  EXPECT_EQ(fdb_snapshot(*client_), before) << "nothing of a failed batch may stay in the map, changed entries "
                                               "get their old values back";
}

// Every kind of bad input through the real agent and its maps: the status
// code names the problem and the forwarding database is exactly as before.
TEST_F(AgentTest, BadInputsAreStatusErrorsAndWriteNothing) {
  start_agent();
  pb::AddFdbEntriesRequest base;
  for (int i = 0; i < 3; ++i) {
    auto* e = base.add_entries();
    e->set_vni(100);
    e->set_mac(fmt::format("02:00:00:00:00:{:02x}", i));
    e->mutable_remote()->set_vtep("198.51.100.2");
  }
  AG_OK(client_->call(&pb::Agent::Stub::AddFdbEntries, base, "add 3"));
  const auto before = fdb_snapshot(*client_);
  ASSERT_EQ(before.size(), 3u);

  // A batch that would replace entry 0, add a new one, then hits the bad one.
  auto batch_with = [&](auto&& spoil) {
    pb::AddFdbEntriesRequest req;
    auto* changed = req.add_entries();
    changed->set_vni(100);
    changed->set_mac("02:00:00:00:00:00");
    changed->mutable_remote()->set_vtep("198.51.100.9");
    auto* fresh = req.add_entries();
    fresh->set_vni(100);
    fresh->set_mac("02:00:00:00:00:77");
    fresh->mutable_remote()->set_vtep("198.51.100.9");
    auto* bad = req.add_entries();
    bad->set_vni(100);
    bad->set_mac("02:00:00:00:00:78");
    bad->mutable_remote()->set_vtep("198.51.100.9");
    spoil(*bad);
    return req;
  };
  struct Case {
    const char* name;
    std::function<void(pb::FdbEntry&)> spoil;
    grpc::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"malformed MAC", [](pb::FdbEntry& e) { e.set_mac("02:00:00:00:78"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "entries[2].mac: malformed MAC address '02:00:00:00:78'"},
      {"VNI over 24 bits", [](pb::FdbEntry& e) { e.set_vni(1u << 24); }, grpc::StatusCode::INVALID_ARGUMENT,
       "VNI 16777216 is out of range: VXLAN network identifiers are 24 bits"},
      {"unknown interface", [](pb::FdbEntry& e) { e.mutable_local()->set_interface("nosuch0"); },
       grpc::StatusCode::NOT_FOUND, "nosuch0"},
      {"malformed VTEP", [](pb::FdbEntry& e) { e.mutable_remote()->set_vtep("198.51.100.300"); },
       grpc::StatusCode::INVALID_ARGUMENT, "malformed IPv4 address '198.51.100.300'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    grpc::ClientContext ctx;
    pb::AddFdbEntriesResponse resp;
    grpc::Status st = client_->stub().AddFdbEntries(&ctx, batch_with(c.spoil), &resp);
    EXPECT_EQ(st.error_code(), c.code) << st.error_message();
    EXPECT_NE(st.error_message().find(c.message), std::string::npos) << st.error_message();
    EXPECT_EQ(fdb_snapshot(*client_), before);
  }

  // Deleting a batch of which one key is missing deletes none of them.
  pb::DeleteFdbEntriesRequest del;
  for (const char* m : {"02:00:00:00:00:00", "02:00:00:00:00:01", "02:00:00:00:00:55"}) {
    auto* k = del.add_keys();
    k->set_vni(100);
    k->set_mac(m);
  }
  grpc::ClientContext dctx;
  pb::DeleteFdbEntriesResponse dresp;
  grpc::Status st = client_->stub().DeleteFdbEntries(&dctx, del, &dresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_EQ(fdb_snapshot(*client_), before);

  // Attaching with a VNI over 24 bits or to an unknown interface attaches nothing.
  pb::AttachInterfaceRequest att;
  att.set_interface("c1h");
  att.set_vni(1u << 24);
  grpc::ClientContext actx;
  pb::AttachInterfaceResponse aresp;
  st = client_->stub().AttachInterface(&actx, att, &aresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  uint32_t c1h = AG_OK(ifindex_of("c1h"));
  EXPECT_FALSE(AG_OK(xdp_query(c1h)).has_value());
}

TEST_F(AgentTest, RealErrorsMapToStatusCodes) {
  start_agent();
  pb::AttachInterfaceRequest req;
  req.set_interface("nosuch0");
  req.set_vni(100);
  grpc::ClientContext ctx;
  pb::AttachInterfaceResponse resp;
  grpc::Status st = client_->stub().AttachInterface(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_NE(st.error_message().find("nosuch0"), std::string::npos);

  req.set_interface("c1h");
  req.set_vni(1u << 24);
  grpc::ClientContext ctx2;
  st = client_->stub().AttachInterface(&ctx2, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  uint32_t c1h = AG_OK(ifindex_of("c1h"));
  EXPECT_FALSE(AG_OK(xdp_query(c1h)).has_value()) << "a refused attach attaches nothing";
}

TEST_F(AgentTest, WatchStreamsMacsAsTheyAreLearned) {
  start_agent();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = client_->stub().Watch(&ctx, pb::WatchRequest{});
  reader->WaitForInitialMetadata();  // subscribed: nothing from here on is missed
  // Learning starts with the attachment (the containers' IPv6 autoconfiguration
  // alone teaches their MACs); the ping makes sure.
  attach("c1h", c1_);
  attach("c2h", c2_);
  ASSERT_EQ(AG_OK(Lab::ping(c1_, "192.0.2.2", 1)), 1);
  std::set<std::string> macs;
  pb::FdbEvent ev;
  while (macs.size() < 2 && reader->Read(&ev)) {
    EXPECT_EQ(ev.kind(), pb::FdbEvent::LEARNED);
    EXPECT_TRUE(ev.entry().learned());
    macs.insert(ev.entry().mac() + "@" + ev.entry().local().interface());
  }
  ctx.TryCancel();
  std::string m1, m2;
  {
    auto s = AG_OK(NetnsScope::enter(Lab::path(c1_)));
    m1 = AG_OK(interface_mac("eth0")).to_string();
  }
  {
    auto s = AG_OK(NetnsScope::enter(Lab::path(c2_)));
    m2 = AG_OK(interface_mac("eth0")).to_string();
  }
  EXPECT_EQ(macs, (std::set<std::string>{m1 + "@c1h", m2 + "@c2h"}));
}

// The CLI as a user types it, against the running agent.
TEST_F(AgentTest, FoundryNetCommandsDriveTheAgent) {
  std::string foundry = std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry";
  ASSERT_EQ(::access(foundry.c_str(), X_OK), 0) << foundry << " not built";
  start_agent();
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{foundry};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    EXPECT_TRUE(r.has_value());
    return r ? *r : RunResult{};
  };
  for (auto [hif, c] : {std::pair{"c1h", c1_}, std::pair{"c2h", c2_}}) {
    RunResult r = cli({"net", "--agent", socket_, "attach", hif, "--vni", "100", "--peer-netns", c, "--peer-if",
                       "eth0", "--mode", "native"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("attached to VNI 100 (native XDP)"), std::string::npos) << r.out;
  }
  ASSERT_EQ(AG_OK(Lab::ping(c1_, "192.0.2.2", 2)), 2);

  RunResult add = cli({"net", "--agent", socket_, "fdb", "add", "100", "02:00:00:00:00:99", "--vtep", "198.51.100.2"});
  EXPECT_EQ(add.exit_code, 0) << add.err;
  RunResult bad = cli({"net", "--agent", socket_, "fdb", "add", "100", "02:00:00:00:99", "--vtep", "198.51.100.2"});
  EXPECT_EQ(bad.exit_code, 2) << "malformed MAC is a validation error";
  EXPECT_NE(bad.err.find("malformed MAC address '02:00:00:00:99'"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("hint: write it as aa:bb:cc:dd:ee:ff"), std::string::npos) << bad.err;
  RunResult unknown = cli({"net", "--agent", socket_, "attach", "nosuch0", "--vni", "5"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;

  RunResult table = cli({"net", "--agent", socket_, "fdb", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("VNI  MAC"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("02:00:00:00:00:99  remote  198.51.100.2  static"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("local   c1h"), std::string::npos) << table.out;

  RunResult json = cli({"-o", "json", "net", "--agent", socket_, "fdb", "list", "--vni", "100"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"learned\": true"), std::string::npos) << json.out;

  RunResult stats = cli({"net", "--agent", socket_, "stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("forward.local"), std::string::npos) << stats.out;

  RunResult flood = cli({"net", "--agent", socket_, "flood", "add", "100", "198.51.100.2"});
  EXPECT_EQ(flood.exit_code, 0) << flood.err;
  EXPECT_NE(flood.out.find("BUM frames of VNI 100 are replicated to 198.51.100.2"), std::string::npos) << flood.out;
  RunResult bad_vni = cli({"net", "--agent", socket_, "flood", "add", "16777216", "198.51.100.2"});
  EXPECT_EQ(bad_vni.exit_code, 2) << "VNI over 24 bits is a validation error";
  EXPECT_NE(bad_vni.err.find("24 bits"), std::string::npos) << bad_vni.err;
  RunResult unflood = cli({"net", "--agent", socket_, "flood", "del", "100", "198.51.100.2"});
  EXPECT_EQ(unflood.exit_code, 0) << unflood.err;

  RunResult del = cli({"net", "--agent", socket_, "fdb", "del", "100", "02:00:00:00:00:99"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  RunResult again = cli({"net", "--agent", socket_, "fdb", "del", "100", "02:00:00:00:00:99"});
  EXPECT_EQ(again.exit_code, 2) << "deleting what is not there: NOT_FOUND, exit 2";

  RunResult detach = cli({"net", "--agent", socket_, "detach", "c1h", "--peer-netns", c1_, "--peer-if", "eth0"});
  EXPECT_EQ(detach.exit_code, 0) << detach.err;
  EXPECT_EQ(AG_OK(Lab::ping(c1_, "192.0.2.2", 1)), 0);
}

}  // namespace
}  // namespace foundry::dataplane::testing
