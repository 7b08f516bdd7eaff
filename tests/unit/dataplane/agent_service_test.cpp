// The agent's gRPC service against a fake data plane: parsing, validation,
// error codes, all-or-nothing batches and the Watch stream, without root.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <thread>

#include "foundry/agent/client.h"
#include "foundry/agent/server.h"

namespace foundry::agent {
namespace {

using namespace foundry::dataplane;
namespace pb = ::foundry::agent::v1;

class FakeControl final : public DataplaneControl {
 public:
  std::map<std::string, uint32_t> interfaces{{"veth1", 11}, {"veth2", 12}, {"ul", 2}};
  std::map<FdbKey, FdbEntry> fdb;
  std::vector<PortSpec> attached;
  std::optional<Error> next_put_error;
  int put_calls = 0;

  Result<VtepState> set_vtep(const UplinkSpec& spec) override {
    FOUNDRY_TRY(ifindex(spec.ifname));
    return VtepState{XdpMode::Native, 1500};
  }
  Result<AttachResult> attach(const PortSpec& spec) override {
    uint32_t idx = FOUNDRY_TRY(ifindex(spec.ifname));
    attached.push_back(spec);
    // As the loader: auto picks native on veth, any other mode is used as asked.
    return AttachResult{spec.mode == XdpMode::Auto ? XdpMode::Native : spec.mode, idx};
  }
  Status detach(const std::string& name, const std::optional<PeerInterface>&) override {
    FOUNDRY_TRY(ifindex(name));
    return ok();
  }
  Status add_neighbor(net::Ipv4, const std::string& name, std::optional<MacAddr>, MacAddr) override {
    FOUNDRY_TRY(ifindex(name));
    return ok();
  }
  Status add_flood_vtep(Vni, net::Ipv4, uint16_t) override { return ok(); }
  Status delete_flood_vtep(Vni, net::Ipv4) override { return ok(); }
  Result<uint32_t> ifindex(const std::string& name) override {
    auto it = interfaces.find(name);
    if (it == interfaces.end())
      return fail(Error(ErrorKind::Operation, fmt::format("find interface {}", name)).with_errno(ENODEV));
    return it->second;
  }
  std::string ifname(uint32_t idx) override {
    for (const auto& [n, i] : interfaces)
      if (i == idx) return n;
    return "ifindex " + std::to_string(idx);
  }
  Result<size_t> put_fdb(const std::vector<std::pair<FdbKey, FdbEntry>>& entries) override {
    ++put_calls;
    if (next_put_error) return fail(*std::exchange(next_put_error, std::nullopt));
    for (const auto& [k, e] : entries) fdb[k] = e;
    return entries.size();
  }
  Result<size_t> delete_fdb(const std::vector<FdbKey>& keys) override {
    for (const auto& k : keys)
      if (!fdb.count(k)) return fail(Error(ErrorKind::Validation, "no such entry").with_errno(ENOENT));
    for (const auto& k : keys) fdb.erase(k);
    return keys.size();
  }
  Result<std::vector<std::pair<FdbKey, FdbEntry>>> list_fdb() override {
    return std::vector<std::pair<FdbKey, FdbEntry>>(fdb.begin(), fdb.end());
  }
  Result<Stats> stats() override {
    Stats s;
    s.counters.values[FDP_V_REDIRECT].packets = 7;
    s.bum_replicated = 3;
    return s;
  }
  Subscription watch(std::function<void(const LearnEvent&)> fn) override {
    std::lock_guard lk(mu);
    subscriber = std::move(fn);
    return Subscription([this] {
      std::lock_guard lk2(mu);
      subscriber = nullptr;
    });
  }
  void learn(const LearnEvent& e) {
    std::lock_guard lk(mu);
    if (subscriber) subscriber(e);
  }
  bool has_subscriber() {
    std::lock_guard lk(mu);
    return subscriber != nullptr;
  }

 private:
  std::mutex mu;
  std::function<void(const LearnEvent&)> subscriber;
};

class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = AgentServer::start(fake_, {});
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    server_ = std::move(*s);
    client_ = std::make_unique<AgentClient>(server_->in_process_channel(), std::chrono::seconds(5));
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->shutdown();
  }

  grpc::Status raw_add(const pb::FdbEntry& e) {
    grpc::ClientContext ctx;
    pb::AddFdbEntryRequest req;
    *req.mutable_entry() = e;
    pb::AddFdbEntryResponse resp;
    return client_->stub().AddFdbEntry(&ctx, req, &resp);
  }

  static pb::FdbEntry remote(uint32_t vni, const std::string& mac, const std::string& vtep) {
    pb::FdbEntry e;
    e.set_vni(vni);
    e.set_mac(mac);
    e.mutable_remote()->set_vtep(vtep);
    return e;
  }

  FakeControl fake_;
  std::unique_ptr<AgentServer> server_;
  std::unique_ptr<AgentClient> client_;
};

TEST_F(AgentServiceTest, MalformedMacIsInvalidArgumentNamingTheField) {
  grpc::Status st = raw_add(remote(100, "02:00:00:00:00", "198.51.100.2"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("entry.mac"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("malformed MAC address '02:00:00:00:00'"), std::string::npos);
  EXPECT_NE(st.error_message().find("hint: write it as aa:bb:cc:dd:ee:ff"), std::string::npos);
  EXPECT_EQ(fake_.put_calls, 0);
}

TEST_F(AgentServiceTest, VniOver24BitsIsInvalidArgument) {
  grpc::Status st = raw_add(remote(1u << 24, "02:00:00:00:00:01", "198.51.100.2"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("24 bits"), std::string::npos) << st.error_message();
  EXPECT_EQ(fake_.put_calls, 0);
}

TEST_F(AgentServiceTest, UnknownInterfaceIsNotFound) {
  pb::FdbEntry e;
  e.set_vni(100);
  e.set_mac("02:00:00:00:00:01");
  e.mutable_local()->set_interface("nosuch0");
  grpc::Status st = raw_add(e);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("nosuch0"), std::string::npos) << st.error_message();

  pb::AttachInterfaceRequest req;
  req.set_interface("nosuch0");
  req.set_vni(100);
  auto r = client_->call(&pb::Agent::Stub::AttachInterface, req, "attach nosuch0");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation) << "NOT_FOUND comes back as a validation error (exit 2)";
}

TEST_F(AgentServiceTest, FullMapIsResourceExhaustedWithTheHint) {
  fake_.next_put_error = Error(ErrorKind::Operation, "update in map fdb").with_errno(E2BIG).with_hint("map fdb is full");
  grpc::Status st = raw_add(remote(100, "02:00:00:00:00:01", "198.51.100.2"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("hint: map fdb is full"), std::string::npos) << st.error_message();
}

TEST_F(AgentServiceTest, BatchWithOneBadEntryWritesNothing) {
  pb::AddFdbEntriesRequest req;
  for (int i = 0; i < 5; ++i)
    *req.add_entries() = remote(100, fmt::format("02:00:00:00:00:0{}", i), "198.51.100.2");
  req.mutable_entries(3)->set_mac("not-a-mac");
  auto r = client_->call(&pb::Agent::Stub::AddFdbEntries, req, "add entries");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().to_string().find("entries[3].mac"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(fake_.put_calls, 0);
  EXPECT_TRUE(fake_.fdb.empty());

  req.mutable_entries(3)->set_mac("02:00:00:00:00:03");
  auto ok_r = client_->call(&pb::Agent::Stub::AddFdbEntries, req, "add entries");
  ASSERT_TRUE(ok_r.has_value()) << ok_r.error().to_string();
  EXPECT_EQ(ok_r->written(), 5u);
  EXPECT_EQ(fake_.put_calls, 1) << "one all-or-nothing write for the batch";
  EXPECT_EQ(fake_.fdb.size(), 5u);
}

TEST_F(AgentServiceTest, MulticastMacsAndEmptyDestinationsAreRefused) {
  EXPECT_EQ(raw_add(remote(100, "ff:ff:ff:ff:ff:ff", "198.51.100.2")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  pb::FdbEntry e;
  e.set_vni(100);
  e.set_mac("02:00:00:00:00:01");
  EXPECT_EQ(raw_add(e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(raw_add(remote(100, "02:00:00:00:00:01", "198.51.100.256")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AgentServiceTest, ListIsSortedFilteredAndNamesInterfaces) {
  fake_.fdb[FdbKey{200, *MacAddr::parse("02:00:00:00:00:09")}] = FdbEntry::remote(*net::Ipv4::parse("198.51.100.2"), 8472);
  FdbEntry learned = FdbEntry::local(11);
  learned.learned = true;
  learned.is_static = false;
  fake_.fdb[FdbKey{100, *MacAddr::parse("02:00:00:00:00:02")}] = learned;
  fake_.fdb[FdbKey{100, *MacAddr::parse("02:00:00:00:00:01")}] = FdbEntry::local(12, MacAddr::parse("02:00:00:00:00:aa"));
  auto all = client_->call(&pb::Agent::Stub::ListFdb, pb::ListFdbRequest{}, "list");
  ASSERT_TRUE(all.has_value()) << all.error().to_string();
  ASSERT_EQ(all->entries_size(), 3);
  EXPECT_EQ(all->entries(0).mac(), "02:00:00:00:00:01");
  EXPECT_EQ(all->entries(0).local().interface(), "veth2");
  EXPECT_EQ(all->entries(0).local().rewrite_mac(), "02:00:00:00:00:aa");
  EXPECT_TRUE(all->entries(1).learned());
  EXPECT_EQ(all->entries(2).remote().vtep(), "198.51.100.2");
  EXPECT_EQ(all->entries(2).remote().udp_port(), 8472u);
  pb::ListFdbRequest only;
  only.set_vni(200);
  EXPECT_EQ(client_->call(&pb::Agent::Stub::ListFdb, only, "list")->entries_size(), 1);
}

TEST_F(AgentServiceTest, DeleteOfAMissingEntryIsNotFound) {
  pb::DeleteFdbEntryRequest req;
  req.mutable_key()->set_vni(100);
  req.mutable_key()->set_mac("02:00:00:00:00:01");
  grpc::ClientContext ctx;
  pb::DeleteFdbEntryResponse resp;
  EXPECT_EQ(client_->stub().DeleteFdbEntry(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AgentServiceTest, TcModeTravelsBothWays) {
  pb::AttachInterfaceRequest req;
  req.set_interface("veth1");
  req.set_vni(42);
  req.set_mode(pb::XDP_MODE_TC);
  auto r = client_->call(&pb::Agent::Stub::AttachInterface, req, "attach");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  ASSERT_EQ(fake_.attached.size(), 1u);
  EXPECT_EQ(fake_.attached[0].mode, XdpMode::Tc);
  EXPECT_EQ(r->mode(), pb::XDP_MODE_TC);
  EXPECT_EQ(parse_xdp_mode("tc"), XdpMode::Tc);
  EXPECT_EQ(to_string(XdpMode::Tc), "tc");
}

TEST_F(AgentServiceTest, AttachPassesPeerNamespaceAndMode) {
  pb::AttachInterfaceRequest req;
  req.set_interface("veth1");
  req.set_vni(42);
  req.set_mode(pb::XDP_MODE_GENERIC);
  req.set_peer_netns("c1");
  req.set_peer_interface("eth0");
  auto r = client_->call(&pb::Agent::Stub::AttachInterface, req, "attach");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->ifindex(), 11u);
  ASSERT_EQ(fake_.attached.size(), 1u);
  EXPECT_EQ(fake_.attached[0].vni, 42u);
  EXPECT_EQ(fake_.attached[0].mode, XdpMode::Generic);
  ASSERT_TRUE(fake_.attached[0].peer.has_value());
  EXPECT_EQ(fake_.attached[0].peer->netns_path, "/run/netns/c1");
  EXPECT_EQ(fake_.attached[0].peer->ifname, "eth0");
}

TEST_F(AgentServiceTest, StatsCarryCounterNames) {
  auto s = client_->call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "stats");
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->counters_size(), FDP_COUNTER_MAX);
  EXPECT_EQ(s->counters(FDP_V_REDIRECT).name(), "verdict.redirect");
  EXPECT_EQ(s->counters(FDP_V_REDIRECT).packets(), 7u);
  EXPECT_EQ(s->bum_replicated(), 3u);
}

TEST_F(AgentServiceTest, WatchStreamsLearnedMacsOfTheRequestedVni) {
  grpc::ClientContext ctx;
  pb::WatchRequest req;
  req.set_vni(100);
  auto reader = client_->stub().Watch(&ctx, req);
  reader->WaitForInitialMetadata();
  ASSERT_TRUE(fake_.has_subscriber()) << "initial metadata must mean subscribed";
  fake_.learn(LearnEvent{200, *MacAddr::parse("02:00:00:00:00:07"), 12, false});  // other VNI: filtered
  fake_.learn(LearnEvent{100, *MacAddr::parse("02:00:00:00:00:01"), 11, false});
  fake_.learn(LearnEvent{100, *MacAddr::parse("02:00:00:00:00:01"), 12, true});
  pb::FdbEvent ev;
  ASSERT_TRUE(reader->Read(&ev));
  EXPECT_EQ(ev.kind(), pb::FdbEvent::LEARNED);
  EXPECT_EQ(ev.entry().mac(), "02:00:00:00:00:01");
  EXPECT_EQ(ev.entry().local().interface(), "veth1");
  EXPECT_TRUE(ev.entry().learned());
  ASSERT_TRUE(reader->Read(&ev));
  EXPECT_EQ(ev.kind(), pb::FdbEvent::MOVED);
  EXPECT_EQ(ev.entry().local().interface(), "veth2");
  ctx.TryCancel();
  while (reader->Read(&ev)) {
  }
  reader->Finish();
  for (int i = 0; i < 200 && fake_.has_subscriber(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(fake_.has_subscriber()) << "a cancelled watch must unsubscribe";
}

TEST(AgentClient, NoAgentIsAConnectionError) {
  AgentClient c = AgentClient::connect("unix:/nonexistent/foundry-test/agent.sock");
  auto r = c.call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "read stats from foundry-agent");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::Connection);
  EXPECT_EQ(r.error().exit_code(), 3);
  EXPECT_NE(r.error().hint().find("foundry-agent"), std::string::npos);
}

}  // namespace
}  // namespace foundry::agent
