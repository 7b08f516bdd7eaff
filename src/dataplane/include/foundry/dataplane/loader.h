// The data plane as a host runs it: the forwarder loaded with its maps
// pinned on the BPF filesystem, attached to container ports and the uplink.
//
//   auto dp = Loader::open();                    // mounts bpffs if needed, adopts pinned maps
//   dp->attach_uplink({"eth1", vtep_ip});        // VTEP + decapsulation on the underlay
//   dp->attach_port({"veth1a", 100, ..., PeerInterface{"/run/netns/c1", "eth0"}});
//
// Everything is resolved in the calling thread's network namespace (the
// host's), except the veth peer, which is looked up in its own namespace.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "foundry/common/error.h"
#include "foundry/dataplane/forwarder.h"
#include "foundry/dataplane/pin.h"
#include "foundry/dataplane/xdp.h"

namespace foundry::dataplane {

struct LoaderOptions {
  // Where a BPF filesystem is mounted, or is mounted by open() if absent.
  std::string bpffs_mount = kBpffsMountPoint;
  // Pinned maps live here and are reused on the next open(). Empty: no
  // pinning (the state goes away with the Loader).
  std::string pin_dir = kDefaultPinDir;
  uint32_t fdb_max_entries = FDP_FDB_MAX_ENTRIES;
};

// The container end of a veth pair.
struct PeerInterface {
  std::string netns_path;  // /run/netns/NAME or /proc/PID/ns/net; empty = the caller's namespace
  std::string ifname;
};

struct PortSpec {
  std::string ifname;  // host end, in the caller's namespace
  Vni vni = 0;
  bool learn = true;
  XdpMode mode = XdpMode::Auto;
  // For veth ports: the container end gets foundry_pass attached. veth
  // hands frames that XDP redirected into it only to a peer that runs NAPI,
  // which it does when it has an XDP program (or GRO); otherwise they are
  // dropped silently.
  std::optional<PeerInterface> peer;
};

struct UplinkSpec {
  std::string ifname;
  net::Ipv4 vtep_ip;  // the VTEP's own underlay address
  uint16_t udp_port = FDP_VXLAN_PORT;
  XdpMode mode = XdpMode::Auto;
};

class Loader {
 public:
  static Result<std::unique_ptr<Loader>> open(const LoaderOptions& opts = {});

  Forwarder& forwarder() { return *fw_; }
  // True when open() found pinned state from an earlier run and adopted it.
  bool adopted_pinned_state() const { return fw_->reused_pinned_maps(); }

  // Adds the port to the maps, then attaches foundry_pass to the peer and
  // foundry_forward to the port. With a VTEP configured, the port's (and its
  // peer's) MTU must leave room for VXLAN: at most uplink MTU - 50. On any
  // failure nothing of the port is left behind.
  Result<XdpMode> attach_port(const PortSpec& spec);
  // Detaches both programs and removes the port from the maps.
  Status detach_port(const std::string& ifname, const std::optional<PeerInterface>& peer = std::nullopt);

  // Configures the VTEP on ifname (its MTU is read from the interface) and
  // attaches the forwarder there to decapsulate.
  Result<XdpMode> attach_uplink(const UplinkSpec& spec);
  Status detach_uplink();

 private:
  Loader() = default;
  Status check_mtu(const std::string& ifname, const std::optional<PeerInterface>& peer);

  std::unique_ptr<Forwarder> fw_;
};

}  // namespace foundry::dataplane
