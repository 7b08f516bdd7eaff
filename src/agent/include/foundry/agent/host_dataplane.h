// The agent's data plane on a real host: the pinned forwarder (Loader), the
// BUM replicator and the learn watcher, behind DataplaneControl.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "foundry/agent/control.h"
#include "foundry/dataplane/bum_replicator.h"
#include "foundry/dataplane/learn_watcher.h"
#include "foundry/dataplane/loader.h"

namespace foundry::agent {

class HostDataplane final : public DataplaneControl {
 public:
  // Opens the data plane in the calling thread's network namespace,
  // adopting pinned state from an earlier run. Interfaces that still run an
  // earlier agent's forwarder get this build's program, swapped atomically,
  // so a restart (or an upgrade) does not interrupt traffic.
  static Result<std::unique_ptr<HostDataplane>> open(const dataplane::LoaderOptions& opts);
  ~HostDataplane() override;

  bool adopted_pinned_state() const { return loader_->adopted_pinned_state(); }
  size_t reattached() const { return reattached_; }

  Result<VtepState> set_vtep(const dataplane::UplinkSpec& spec) override;
  Result<AttachResult> attach(const dataplane::PortSpec& spec) override;
  Status detach(const std::string& ifname, const std::optional<dataplane::PeerInterface>& peer) override;
  Status add_neighbor(net::Ipv4 ip, const std::string& ifname, std::optional<dataplane::MacAddr> src,
                      dataplane::MacAddr dst) override;
  Status add_flood_vtep(dataplane::Vni vni, net::Ipv4 vtep, uint16_t port) override;
  Status delete_flood_vtep(dataplane::Vni vni, net::Ipv4 vtep) override;
  Result<uint32_t> ifindex(const std::string& ifname) override;
  std::string ifname(uint32_t ifindex) override;
  Result<size_t> put_fdb(const std::vector<std::pair<dataplane::FdbKey, dataplane::FdbEntry>>& entries) override;
  Result<size_t> delete_fdb(const std::vector<dataplane::FdbKey>& keys) override;
  Result<std::vector<std::pair<dataplane::FdbKey, dataplane::FdbEntry>>> list_fdb() override;
  Result<Stats> stats() override;
  Subscription watch(std::function<void(const dataplane::LearnEvent&)> fn) override;

 private:
  HostDataplane() = default;
  Status start_replicator();
  void dispatch(const dataplane::LearnEvent& e);

  std::mutex mu_;  // one change at a time: several maps move together
  std::unique_ptr<dataplane::Loader> loader_;
  std::unique_ptr<dataplane::BumReplicator> bum_;
  std::unique_ptr<dataplane::LearnWatcher> learn_;
  size_t reattached_ = 0;

  std::mutex subs_mu_;
  uint64_t next_sub_ = 1;
  std::map<uint64_t, std::function<void(const dataplane::LearnEvent&)>> subs_;
};

}  // namespace foundry::agent
