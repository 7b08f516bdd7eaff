#include "foundry/agent/host_dataplane.h"

#include <net/if.h>

#include "foundry/common/log.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/tc.h"
#include "foundry/dataplane/xdp.h"

namespace foundry::agent {

using namespace foundry::dataplane;

Result<std::unique_ptr<HostDataplane>> HostDataplane::open(const LoaderOptions& opts) {
  std::unique_ptr<HostDataplane> h(new HostDataplane());
  h->loader_ = FOUNDRY_TRY(Loader::open(opts));
  Forwarder& fw = h->loader_->forwarder();

  // Ports (and the uplink) that an earlier agent attached still run its
  // program instance, on the same pinned maps. Swap in ours in place.
  auto ports = FOUNDRY_TRY_CTX(fw.ports().entries(), "adopt attached interfaces");
  for (const auto& [ifindex, cfg] : ports) {
    if (auto tc = tc_query(ifindex); tc && *tc && (*tc)->prog_name == "foundry_tc") {
      if (auto r = tc_attach(ifindex, fw.tc_program_fd()); !r) {
        spdlog::warn("agent: could not re-attach the TC forwarder to ifindex {}: {}", ifindex, r.error().to_string());
        continue;
      }
      h->reattached_++;
      continue;
    }
    auto att = xdp_query(ifindex);
    if (!att || !*att || (*att)->prog_name != "foundry_forward") continue;
    auto r = xdp_attach(ifindex, fw.program_fd(), (*att)->mode);
    if (!r) {
      spdlog::warn("agent: could not re-attach the forwarder to ifindex {}: {}", ifindex, r.error().to_string());
      continue;
    }
    h->reattached_++;
  }

  if (auto vt = FOUNDRY_TRY(fw.vtep()); vt) FOUNDRY_TRY(h->start_replicator());
  HostDataplane* self = h.get();
  h->learn_ = FOUNDRY_TRY(LearnWatcher::create(fw, [self](const LearnEvent& e) { self->dispatch(e); }));
  h->learn_->start();
  return h;
}

HostDataplane::~HostDataplane() {
  // Threads first: they call back into this object.
  learn_.reset();
  bum_.reset();
}

Status HostDataplane::start_replicator() {
  bum_.reset();
  bum_ = FOUNDRY_TRY(BumReplicator::create(loader_->forwarder()));
  bum_->start();
  return ok();
}

void HostDataplane::dispatch(const LearnEvent& e) {
  std::lock_guard lk(subs_mu_);
  for (auto& [id, fn] : subs_) fn(e);
}

Subscription HostDataplane::watch(std::function<void(const LearnEvent&)> fn) {
  std::lock_guard lk(subs_mu_);
  uint64_t id = next_sub_++;
  subs_.emplace(id, std::move(fn));
  return Subscription([this, id] {
    std::lock_guard lk2(subs_mu_);
    subs_.erase(id);
  });
}

Result<VtepState> HostDataplane::set_vtep(const UplinkSpec& spec) {
  std::lock_guard lk(mu_);
  XdpMode mode = FOUNDRY_TRY(loader_->attach_uplink(spec));
  FOUNDRY_TRY(start_replicator());
  auto vt = FOUNDRY_TRY(loader_->forwarder().vtep());
  return VtepState{mode, vt ? vt->mtu : 0u};
}

Result<AttachResult> HostDataplane::attach(const PortSpec& spec) {
  std::lock_guard lk(mu_);
  XdpMode mode = FOUNDRY_TRY(loader_->attach_port(spec));
  uint32_t idx = FOUNDRY_TRY(ifindex_of(spec.ifname));
  return AttachResult{mode, idx};
}

Status HostDataplane::detach(const std::string& name, const std::optional<PeerInterface>& peer) {
  std::lock_guard lk(mu_);
  return loader_->detach_port(name, peer);
}

Status HostDataplane::add_neighbor(net::Ipv4 ip, const std::string& name, std::optional<MacAddr> src, MacAddr dst) {
  std::lock_guard lk(mu_);
  auto ctx = [&] { return fmt::format("add neighbour {} via {}", ip.to_string(), name); };
  uint32_t idx = FOUNDRY_TRY_CTX(ifindex_of(name), "{}", ctx());
  MacAddr own = src ? *src : FOUNDRY_TRY_CTX(interface_mac(name), "{}", ctx());
  return loader_->forwarder().add_neighbor(ip, Neighbor{idx, own, dst});
}

Status HostDataplane::add_flood_vtep(Vni vni, net::Ipv4 vtep, uint16_t port) {
  std::lock_guard lk(mu_);
  return loader_->forwarder().add_flood_remote(vni, vtep, port);
}

Status HostDataplane::delete_flood_vtep(Vni vni, net::Ipv4 vtep) {
  std::lock_guard lk(mu_);
  return loader_->forwarder().remove_flood_remote(vni, vtep);
}

Result<uint32_t> HostDataplane::ifindex(const std::string& name) { return ifindex_of(name); }

std::string HostDataplane::ifname(uint32_t idx) {
  char buf[IF_NAMESIZE] = {};
  if (::if_indextoname(idx, buf)) return buf;
  return "ifindex " + std::to_string(idx);
}

Result<size_t> HostDataplane::put_fdb(const std::vector<std::pair<FdbKey, FdbEntry>>& entries) {
  std::lock_guard lk(mu_);
  return loader_->forwarder().fdb_put_all(entries);
}

Result<size_t> HostDataplane::delete_fdb(const std::vector<FdbKey>& keys) {
  std::lock_guard lk(mu_);
  return loader_->forwarder().fdb_erase_all(keys);
}

Result<std::vector<std::pair<FdbKey, FdbEntry>>> HostDataplane::list_fdb() {
  return loader_->forwarder().fdb().entries();
}

Result<Stats> HostDataplane::stats() {
  Stats s;
  s.counters = FOUNDRY_TRY(loader_->forwarder().counters());
  std::lock_guard lk(mu_);
  s.bum_replicated = bum_ ? bum_->datagrams() : 0;
  return s;
}

}  // namespace foundry::agent
