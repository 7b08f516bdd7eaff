#include "foundry/dataplane/loader.h"

#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/dataplane/iface.h"
#include "foundry/dataplane/netns.h"
#include "foundry/dataplane/tc.h"

namespace foundry::dataplane {

namespace {

// Runs fn in the peer's namespace, or right here when it has none.
template <typename F>
auto in_peer_netns(const PeerInterface& peer, F&& fn) -> decltype(fn()) {
  if (peer.netns_path.empty()) return fn();
  return in_netns(peer.netns_path, std::forward<F>(fn));
}

std::string peer_name(const PeerInterface& p) {
  return p.netns_path.empty() ? p.ifname : fmt::format("{} in {}", p.ifname, p.netns_path);
}

// The container end of the veth: foundry_pass so that it receives what XDP
// redirects into it, and no transmit checksum offload so that what it sends
// is complete when XDP forwards it. A veth hands the peer's XDP program
// frames whose TCP/UDP checksum is only CHECKSUM_PARTIAL (to be finished by
// "hardware" that never comes); XDP sees bytes, not that state, so the
// receiver would get a wrong checksum and drop the segment (TcpInCsumErrors)
// while ICMP, checksummed in software, works.
Status attach_peer(const PeerInterface& peer, int prog_fd) {
  return in_peer_netns(peer, [&]() -> Status {
    uint32_t idx = FOUNDRY_TRY(ifindex_of(peer.ifname));
    FOUNDRY_TRY(xdp_attach(idx, prog_fd, XdpMode::Auto));
    if (auto st = set_tx_checksum_offload(peer.ifname, false); !st) {
      (void)xdp_detach(idx);
      return st;
    }
    return ok();
  });
}

// The peer of a port in TC mode: TC redirects hand skbs to the peer like any
// transmit (no NAPI needed) and keep their checksum state, so the peer needs
// neither foundry_pass nor checksum offload off. Undoes XDP mode's changes
// if the port was in it.
Status release_peer_for_tc(const PeerInterface& peer) {
  return in_peer_netns(peer, [&]() -> Status {
    uint32_t idx = FOUNDRY_TRY(ifindex_of(peer.ifname));
    auto att = FOUNDRY_TRY(xdp_query(idx));
    if (!att || !is_foundry_program(att->prog_name)) return ok();
    FOUNDRY_TRY(xdp_detach(idx));
    return set_tx_checksum_offload(peer.ifname, true);
  });
}

// Only one of Foundry's two programs runs on an interface: XDP comes first
// on receive, so a Foundry XDP program left from XDP mode would take every
// frame from the TC program; a TC program left from TC mode would see what
// XDP passes (uplink traffic that is not VXLAN) and count it twice.
Status drop_foundry_xdp(uint32_t ifindex) {
  auto att = FOUNDRY_TRY(xdp_query(ifindex));
  if (att && is_foundry_program(att->prog_name)) FOUNDRY_TRY(xdp_detach(ifindex));
  return ok();
}

Status drop_foundry_tc(uint32_t ifindex) {
  auto att = FOUNDRY_TRY(tc_query(ifindex));
  if (att && is_foundry_program(att->prog_name)) FOUNDRY_TRY(tc_detach(ifindex));
  return ok();
}

// Attaches the forwarder in mode: foundry_tc for XdpMode::Tc, else
// foundry_forward. The new program goes on before the other kind comes off,
// so there is no moment without a forwarder.
Result<XdpMode> attach_forwarder(const Forwarder& fw, uint32_t ifindex, XdpMode mode) {
  if (mode == XdpMode::Tc) {
    FOUNDRY_TRY(tc_attach(ifindex, fw.tc_program_fd()));
    FOUNDRY_TRY(drop_foundry_xdp(ifindex));
    return XdpMode::Tc;
  }
  XdpMode used = FOUNDRY_TRY(xdp_attach(ifindex, fw.program_fd(), mode));
  FOUNDRY_TRY(drop_foundry_tc(ifindex));
  return used;
}

Status detach_forwarder(uint32_t ifindex) {
  FOUNDRY_TRY(xdp_detach(ifindex));
  return drop_foundry_tc(ifindex);
}

// Back to the veth default (checksum offload on) once XDP is gone.
Status detach_peer(const PeerInterface& peer) {
  return in_peer_netns(peer, [&]() -> Status {
    uint32_t idx = FOUNDRY_TRY(ifindex_of(peer.ifname));
    FOUNDRY_TRY(xdp_detach(idx));
    return set_tx_checksum_offload(peer.ifname, true);
  });
}

}  // namespace

Result<std::unique_ptr<Loader>> Loader::open(const LoaderOptions& opts) {
  std::unique_ptr<Loader> l(new Loader());
  ForwarderOptions fo;
  fo.fdb_max_entries = opts.fdb_max_entries;
  if (!opts.pin_dir.empty()) {
    bool mounted = FOUNDRY_TRY_CTX(ensure_bpffs(opts.bpffs_mount), "open data plane");
    if (mounted) spdlog::debug("dataplane: mounted a BPF filesystem on {}", opts.bpffs_mount);
    fo.pin_dir = opts.pin_dir;
  }
  l->fw_ = FOUNDRY_TRY_CTX(Forwarder::load(fo), "open data plane");
  return l;
}

Status Loader::check_mtu(const std::string& ifname, const std::optional<PeerInterface>& peer) {
  auto vtep = FOUNDRY_TRY(fw_->vtep());
  if (!vtep) return ok();  // no tunnel, no overhead
  uint32_t limit = vtep->mtu - FDP_ENCAP_OVERHEAD;
  auto check = [&](const std::string& name, uint32_t mtu) -> Status {
    if (mtu <= limit) return ok();
    return fail(Error(ErrorKind::Validation,
                      fmt::format("interface {} has MTU {}, but VXLAN over an uplink with MTU {} leaves at most {} "
                                  "(the uplink MTU minus {} bytes of outer headers)",
                                  name, mtu, vtep->mtu, limit, FDP_ENCAP_OVERHEAD))
                    .with_hint(fmt::format("lower it: ip link set dev {} mtu {}", name, limit)));
  };
  uint32_t host_mtu = FOUNDRY_TRY(interface_mtu(ifname));
  FOUNDRY_TRY(check(ifname, host_mtu));
  if (peer) {
    auto read_peer_mtu = [&] { return interface_mtu(peer->ifname); };
    uint32_t peer_mtu = FOUNDRY_TRY(in_peer_netns(*peer, read_peer_mtu));
    FOUNDRY_TRY(check(peer_name(*peer), peer_mtu));
  }
  return ok();
}

Result<XdpMode> Loader::attach_port(const PortSpec& spec) {
  auto ctx = [&] { return fmt::format("attach port {} (VNI {})", spec.ifname, spec.vni); };
  FOUNDRY_TRY_CTX(validate_vni(spec.vni), "{}", ctx());
  uint32_t ifindex = FOUNDRY_TRY_CTX(ifindex_of(spec.ifname), "{}", ctx());
  FOUNDRY_TRY_CTX(check_mtu(spec.ifname, spec.peer), "{}", ctx());

  UndoList undo;
  auto existing = FOUNDRY_TRY_CTX(fw_->ports().get(ifindex), "{}", ctx());
  FOUNDRY_TRY_CTX(fw_->add_port(ifindex, PortConfig{spec.vni, false, spec.learn}), "{}", ctx());
  if (!existing) undo.push("port maps", [this, ifindex] { (void)fw_->remove_port(ifindex); });

  if (spec.peer && spec.mode == XdpMode::Tc) {
    FOUNDRY_TRY_CTX(release_peer_for_tc(*spec.peer), "{}: receive side {}", ctx(), peer_name(*spec.peer));
  } else if (spec.peer) {
    const PeerInterface& peer = *spec.peer;
    FOUNDRY_TRY_CTX(attach_peer(peer, fw_->pass_program_fd()), "{}: receive side {}", ctx(), peer_name(peer));
    undo.push("peer program", [peer] { (void)detach_peer(peer); });
  }

  XdpMode mode = FOUNDRY_TRY_CTX(attach_forwarder(*fw_, ifindex, spec.mode), "{}", ctx());
  undo.commit();
  spdlog::debug("dataplane: {} attached ({})", ctx(), to_string(mode));
  return mode;
}

Status Loader::detach_port(const std::string& ifname, const std::optional<PeerInterface>& peer) {
  auto ctx = [&] { return fmt::format("detach port {}", ifname); };
  uint32_t ifindex = FOUNDRY_TRY_CTX(ifindex_of(ifname), "{}", ctx());
  // Program off first: after that no frame can hit a half-removed port.
  FOUNDRY_TRY_CTX(detach_forwarder(ifindex), "{}", ctx());
  if (peer) {
    FOUNDRY_TRY_CTX(detach_peer(*peer), "{}: receive side {}", ctx(), peer_name(*peer));
  }
  auto cfg = FOUNDRY_TRY_CTX(fw_->ports().get(ifindex), "{}", ctx());
  if (cfg) FOUNDRY_TRY_CTX(fw_->remove_port(ifindex), "{}", ctx());
  return ok();
}

Result<XdpMode> Loader::attach_uplink(const UplinkSpec& spec) {
  auto ctx = [&] { return fmt::format("attach uplink {} (VTEP {})", spec.ifname, spec.vtep_ip.to_string()); };
  uint32_t ifindex = FOUNDRY_TRY_CTX(ifindex_of(spec.ifname), "{}", ctx());
  uint32_t mtu = FOUNDRY_TRY_CTX(interface_mtu(spec.ifname), "{}", ctx());
  if (mtu > 0xffff) mtu = 0xffff;
  FOUNDRY_TRY_CTX(fw_->set_vtep(VtepConfig{spec.vtep_ip, ifindex, spec.udp_port, static_cast<uint16_t>(mtu)}),
                  "{}", ctx());
  UndoList undo;
  undo.push("vtep", [this] { (void)fw_->clear_vtep(); });
  XdpMode mode = FOUNDRY_TRY_CTX(attach_forwarder(*fw_, ifindex, spec.mode), "{}", ctx());
  undo.commit();
  return mode;
}

Status Loader::detach_uplink() {
  auto vtep = FOUNDRY_TRY_CTX(fw_->vtep(), "detach uplink");
  if (!vtep) return ok();
  FOUNDRY_TRY_CTX(detach_forwarder(vtep->uplink_ifindex), "detach uplink");
  FOUNDRY_TRY_CTX(fw_->clear_vtep(), "detach uplink");
  return ok();
}

}  // namespace foundry::dataplane
