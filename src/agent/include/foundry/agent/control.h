// What the agent's gRPC service needs from the data plane, as an interface:
// the service (parsing, validation, error mapping, streaming) is tested
// against a fake without root, and HostDataplane implements it for real.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/dataplane/learn_watcher.h"
#include "foundry/dataplane/loader.h"
#include "foundry/dataplane/types.h"

namespace foundry::agent {

struct VtepState {
  dataplane::XdpMode mode = dataplane::XdpMode::Native;
  uint32_t mtu = 0;
};

struct AttachResult {
  dataplane::XdpMode mode = dataplane::XdpMode::Native;
  uint32_t ifindex = 0;
};

struct Stats {
  dataplane::Counters counters;
  uint64_t bum_replicated = 0;
};

// Ends a watch when destroyed.
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& o) noexcept : cancel_(std::exchange(o.cancel_, nullptr)) {}
  Subscription& operator=(Subscription&& o) noexcept {
    if (this != &o) {
      reset();
      cancel_ = std::exchange(o.cancel_, nullptr);
    }
    return *this;
  }
  ~Subscription() { reset(); }
  void reset() {
    if (cancel_) std::exchange(cancel_, nullptr)();
  }

 private:
  std::function<void()> cancel_;
};

class DataplaneControl {
 public:
  virtual ~DataplaneControl() = default;

  virtual Result<VtepState> set_vtep(const dataplane::UplinkSpec& spec) = 0;
  virtual Result<AttachResult> attach(const dataplane::PortSpec& spec) = 0;
  virtual Status detach(const std::string& ifname, const std::optional<dataplane::PeerInterface>& peer) = 0;
  // src empty: the interface's own MAC.
  virtual Status add_neighbor(net::Ipv4 ip, const std::string& ifname, std::optional<dataplane::MacAddr> src,
                              dataplane::MacAddr dst) = 0;
  virtual Status add_flood_vtep(dataplane::Vni vni, net::Ipv4 vtep, uint16_t port) = 0;
  virtual Status delete_flood_vtep(dataplane::Vni vni, net::Ipv4 vtep) = 0;

  // Interface names <-> indexes in the agent's namespace. Unknown names are
  // errors with errno ENODEV.
  virtual Result<uint32_t> ifindex(const std::string& ifname) = 0;
  virtual std::string ifname(uint32_t ifindex) = 0;

  // All or nothing (see Forwarder::fdb_put_all / fdb_erase_all).
  virtual Result<size_t> put_fdb(const std::vector<std::pair<dataplane::FdbKey, dataplane::FdbEntry>>& entries) = 0;
  virtual Result<size_t> delete_fdb(const std::vector<dataplane::FdbKey>& keys) = 0;
  virtual Result<std::vector<std::pair<dataplane::FdbKey, dataplane::FdbEntry>>> list_fdb() = 0;

  virtual Result<Stats> stats() = 0;

  // Calls fn (on another thread) for each MAC learned until the returned
  // Subscription is destroyed.
  virtual Subscription watch(std::function<void(const dataplane::LearnEvent&)> fn) = 0;
};

}  // namespace foundry::agent
