#include "foundry/agent/service.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "foundry/agent/convert.h"
#include "foundry/common/log.h"

namespace foundry::agent {

using namespace foundry::dataplane;

namespace {

// Evaluates a Result; on error returns its gRPC status from the handler.
#define GRPC_TRY(expr)                                        \
  ({                                                          \
    auto grpc_try_r_ = (expr);                                \
    if (!grpc_try_r_) return to_grpc(grpc_try_r_.error());    \
    std::move(grpc_try_r_).value();                           \
  })

#define GRPC_CHECK(expr)                                      \
  do {                                                        \
    auto grpc_check_r_ = (expr);                              \
    if (!grpc_check_r_) return to_grpc(grpc_check_r_.error()); \
  } while (0)

std::optional<PeerInterface> peer_of(const std::string& ns, const std::string& ifname) {
  if (ifname.empty()) return std::nullopt;
  return PeerInterface{netns_path(ns), ifname};
}

// Watch queues at most this many events per client; a client that reads
// slower than MACs are learned is cut off rather than growing the agent.
constexpr size_t kWatchBacklog = 65536;

}  // namespace

grpc::Status AgentService::SetVtep(grpc::ServerContext*, const v1::SetVtepRequest* req, v1::SetVtepResponse* resp) {
  UplinkSpec spec;
  spec.ifname = GRPC_TRY(parse_ifname(req->uplink(), "uplink"));
  spec.vtep_ip = GRPC_TRY(parse_ipv4(req->address(), "address"));
  spec.udp_port = req->udp_port() == 0 ? FDP_VXLAN_PORT : GRPC_TRY(parse_port(req->udp_port(), "udp_port"));
  spec.mode = from_proto(req->mode());
  VtepState st = GRPC_TRY(dp_.set_vtep(spec));
  resp->set_mode(to_proto(st.mode));
  resp->set_mtu(st.mtu);
  return grpc::Status::OK;
}

grpc::Status AgentService::AttachInterface(grpc::ServerContext*, const v1::AttachInterfaceRequest* req,
                                           v1::AttachInterfaceResponse* resp) {
  PortSpec spec;
  spec.ifname = GRPC_TRY(parse_ifname(req->interface(), "interface"));
  spec.vni = GRPC_TRY(parse_vni(req->vni(), "vni"));
  spec.learn = !req->no_learning();
  spec.mode = from_proto(req->mode());
  if (!req->peer_interface().empty()) GRPC_CHECK(parse_ifname(req->peer_interface(), "peer_interface"));
  spec.peer = peer_of(req->peer_netns(), req->peer_interface());
  AttachResult r = GRPC_TRY(dp_.attach(spec));
  resp->set_mode(to_proto(r.mode));
  resp->set_ifindex(r.ifindex);
  return grpc::Status::OK;
}

grpc::Status AgentService::DetachInterface(grpc::ServerContext*, const v1::DetachInterfaceRequest* req,
                                           v1::DetachInterfaceResponse*) {
  std::string name = GRPC_TRY(parse_ifname(req->interface(), "interface"));
  GRPC_CHECK(dp_.detach(name, peer_of(req->peer_netns(), req->peer_interface())));
  return grpc::Status::OK;
}

grpc::Status AgentService::AddNeighbor(grpc::ServerContext*, const v1::AddNeighborRequest* req,
                                       v1::AddNeighborResponse*) {
  net::Ipv4 ip = GRPC_TRY(parse_ipv4(req->address(), "address"));
  std::string name = GRPC_TRY(parse_ifname(req->interface(), "interface"));
  MacAddr dst = GRPC_TRY(parse_mac(req->mac(), "mac"));
  std::optional<MacAddr> src;
  if (!req->src_mac().empty()) src = GRPC_TRY(parse_mac(req->src_mac(), "src_mac"));
  GRPC_CHECK(dp_.add_neighbor(ip, name, src, dst));
  return grpc::Status::OK;
}

grpc::Status AgentService::AddFloodVtep(grpc::ServerContext*, const v1::FloodVtepRequest* req, v1::FloodVtepResponse*) {
  Vni vni = GRPC_TRY(parse_vni(req->vni(), "vni"));
  net::Ipv4 vtep = GRPC_TRY(parse_ipv4(req->vtep(), "vtep"));
  uint16_t port = GRPC_TRY(parse_port(req->udp_port(), "udp_port"));
  GRPC_CHECK(dp_.add_flood_vtep(vni, vtep, port));
  return grpc::Status::OK;
}

grpc::Status AgentService::DeleteFloodVtep(grpc::ServerContext*, const v1::FloodVtepRequest* req,
                                           v1::FloodVtepResponse*) {
  Vni vni = GRPC_TRY(parse_vni(req->vni(), "vni"));
  net::Ipv4 vtep = GRPC_TRY(parse_ipv4(req->vtep(), "vtep"));
  GRPC_CHECK(dp_.delete_flood_vtep(vni, vtep));
  return grpc::Status::OK;
}

grpc::Status AgentService::AddFdbEntry(grpc::ServerContext*, const v1::AddFdbEntryRequest* req,
                                       v1::AddFdbEntryResponse*) {
  auto entry = GRPC_TRY(from_proto(req->entry(), "entry", dp_));
  GRPC_CHECK(dp_.put_fdb({entry}));
  return grpc::Status::OK;
}

grpc::Status AgentService::DeleteFdbEntry(grpc::ServerContext*, const v1::DeleteFdbEntryRequest* req,
                                          v1::DeleteFdbEntryResponse*) {
  FdbKey key = GRPC_TRY(from_proto(req->key(), "key"));
  GRPC_CHECK(dp_.delete_fdb({key}));
  return grpc::Status::OK;
}

grpc::Status AgentService::AddFdbEntries(grpc::ServerContext*, const v1::AddFdbEntriesRequest* req,
                                         v1::AddFdbEntriesResponse* resp) {
  // Everything is parsed and checked before the first write.
  std::vector<std::pair<FdbKey, FdbEntry>> entries;
  entries.reserve(static_cast<size_t>(req->entries_size()));
  for (int i = 0; i < req->entries_size(); ++i)
    entries.push_back(GRPC_TRY(from_proto(req->entries(i), fmt::format("entries[{}]", i), dp_)));
  size_t n = GRPC_TRY(dp_.put_fdb(entries));
  resp->set_written(static_cast<uint32_t>(n));
  return grpc::Status::OK;
}

grpc::Status AgentService::DeleteFdbEntries(grpc::ServerContext*, const v1::DeleteFdbEntriesRequest* req,
                                            v1::DeleteFdbEntriesResponse* resp) {
  std::vector<FdbKey> keys;
  keys.reserve(static_cast<size_t>(req->keys_size()));
  for (int i = 0; i < req->keys_size(); ++i) keys.push_back(GRPC_TRY(from_proto(req->keys(i), fmt::format("keys[{}]", i))));
  size_t n = GRPC_TRY(dp_.delete_fdb(keys));
  resp->set_deleted(static_cast<uint32_t>(n));
  return grpc::Status::OK;
}

grpc::Status AgentService::ListFdb(grpc::ServerContext*, const v1::ListFdbRequest* req, v1::ListFdbResponse* resp) {
  std::optional<Vni> only;
  if (req->has_vni()) only = GRPC_TRY(parse_vni(req->vni(), "vni"));
  auto all = GRPC_TRY(dp_.list_fdb());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [k, e] : all) {
    if (only && k.vni != *only) continue;
    *resp->add_entries() = to_proto(k, e, dp_);
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::GetStats(grpc::ServerContext*, const v1::GetStatsRequest*, v1::GetStatsResponse* resp) {
  Stats s = GRPC_TRY(dp_.stats());
  for (uint32_t i = 0; i < FDP_COUNTER_MAX; ++i) {
    auto* c = resp->add_counters();
    c->set_name(std::string(counter_name(i)));
    c->set_packets(s.counters.values[i].packets);
    c->set_bytes(s.counters.values[i].bytes);
  }
  resp->set_bum_replicated(s.bum_replicated);
  return grpc::Status::OK;
}

grpc::Status AgentService::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                                 grpc::ServerWriter<v1::FdbEvent>* writer) {
  std::optional<Vni> only;
  if (req->has_vni()) only = GRPC_TRY(parse_vni(req->vni(), "vni"));
  std::mutex mu;
  std::condition_variable cv;
  std::deque<LearnEvent> queue;
  bool overflow = false;
  // Declared after what it writes to: unsubscribed before they go away.
  Subscription sub = dp_.watch([&](const LearnEvent& e) {
    if (only && e.vni != *only) return;
    std::lock_guard lk(mu);
    if (queue.size() >= kWatchBacklog) {
      overflow = true;
    } else {
      queue.push_back(e);
    }
    cv.notify_one();
  });
  // The subscription is live: tell the client, which may wait for this
  // (initial metadata) to know that nothing learned from now on is missed.
  writer->SendInitialMetadata();
  while (!ctx->IsCancelled() && !stopping_) {
    std::deque<LearnEvent> batch;
    {
      std::unique_lock lk(mu);
      cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return !queue.empty() || overflow; });
      if (overflow)
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            fmt::format("watch fell {} events behind and was ended; list the FDB and watch again",
                                        kWatchBacklog));
      batch.swap(queue);
    }
    for (const LearnEvent& e : batch) {
      v1::FdbEvent out;
      out.set_kind(e.moved ? v1::FdbEvent::MOVED : v1::FdbEvent::LEARNED);
      FdbEntry entry = FdbEntry::local(e.ifindex);
      entry.is_static = false;
      entry.learned = true;
      *out.mutable_entry() = to_proto(FdbKey{e.vni, e.mac}, entry, dp_);
      if (!writer->Write(out)) return grpc::Status::OK;  // client went away
    }
  }
  return grpc::Status::OK;
}

}  // namespace foundry::agent
