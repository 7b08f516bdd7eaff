#include "foundry/dataplane/maps.h"

#include <fmt/format.h>

namespace foundry::dataplane {

static_assert(sizeof(fdp_fdb_key) == 12);
static_assert(sizeof(fdp_fdb_entry) == 20);
static_assert(sizeof(fdp_port) == 8);
static_assert(sizeof(fdp_neigh) == 16);
static_assert(sizeof(fdp_vtep) == 16);
static_assert(sizeof(fdp_vni) == 8);
static_assert(sizeof(fdp_flood_key) == 8);
static_assert(sizeof(fdp_flood_remote) == 8);
static_assert(sizeof(fdp_counter_val) == 16);

namespace {

__u32 ip_to_be(net::Ipv4 ip) {
  __u32 v;
  std::memcpy(&v, ip.octets.data(), 4);
  return v;
}

net::Ipv4 ip_from_be(__u32 v) {
  net::Ipv4 ip;
  std::memcpy(ip.octets.data(), &v, 4);
  return ip;
}

}  // namespace

Error map_error(int err, std::string_view map, std::string_view op, std::string_view key) {
  int e = err < 0 ? -err : err;
  std::string what = key.empty() ? fmt::format("{} map {}", op, map)
                                 : fmt::format("{} {} in map {}", op, key, map);
  Error out(ErrorKind::Operation, what);
  out.with_errno(e);
  if (e == E2BIG || e == ENOSPC || e == ENOMEM)
    out.with_hint(fmt::format("map {} is full; delete entries or load with a larger size", map));
  else if (e == EPERM || e == EACCES)
    out.with_hint("BPF map access needs root (CAP_BPF and CAP_NET_ADMIN)");
  return out;
}

// ---- scalar keys ------------------------------------------------------------

__u32 MapCodec<uint32_t>::encode(const uint32_t& v) { return v; }
uint32_t MapCodec<uint32_t>::decode(const __u32& a) { return a; }
std::string MapCodec<uint32_t>::describe(const uint32_t& v) { return std::to_string(v); }

__u32 MapCodec<net::Ipv4>::encode(const net::Ipv4& v) { return ip_to_be(v); }
net::Ipv4 MapCodec<net::Ipv4>::decode(const __u32& a) { return ip_from_be(a); }
std::string MapCodec<net::Ipv4>::describe(const net::Ipv4& v) { return v.to_string(); }

// ---- fdb --------------------------------------------------------------------

fdp_fdb_key MapCodec<FdbKey>::encode(const FdbKey& v) {
  fdp_fdb_key k{};  // zero padding: the kernel hashes every byte of a key
  k.vni = v.vni;
  std::memcpy(k.mac, v.mac.bytes.data(), 6);
  return k;
}

FdbKey MapCodec<FdbKey>::decode(const fdp_fdb_key& a) {
  FdbKey k;
  k.vni = a.vni;
  std::memcpy(k.mac.bytes.data(), a.mac, 6);
  return k;
}

std::string MapCodec<FdbKey>::describe(const FdbKey& v) {
  return fmt::format("{{vni {}, {}}}", v.vni, v.mac.to_string());
}

fdp_fdb_entry MapCodec<FdbEntry>::encode(const FdbEntry& v) {
  fdp_fdb_entry e{};
  e.type = static_cast<__u8>(v.type);
  e.flags = static_cast<__u8>((v.is_static ? FDP_FDB_F_STATIC : 0) | (v.learned ? FDP_FDB_F_LEARNED : 0) |
                              (v.rewrite_mac ? FDP_FDB_F_REWRITE : 0));
  if (v.rewrite_mac) std::memcpy(e.rewrite_mac, v.rewrite_mac->bytes.data(), 6);
  e.ifindex = v.ifindex;
  e.remote_ip = ip_to_be(v.remote_ip);
  e.remote_port = v.remote_port;
  return e;
}

FdbEntry MapCodec<FdbEntry>::decode(const fdp_fdb_entry& a) {
  FdbEntry e;
  e.type = static_cast<FdbType>(a.type);
  e.is_static = (a.flags & FDP_FDB_F_STATIC) != 0;
  e.learned = (a.flags & FDP_FDB_F_LEARNED) != 0;
  if (a.flags & FDP_FDB_F_REWRITE) {
    MacAddr m;
    std::memcpy(m.bytes.data(), a.rewrite_mac, 6);
    e.rewrite_mac = m;
  }
  e.ifindex = a.ifindex;
  e.remote_ip = ip_from_be(a.remote_ip);
  e.remote_port = a.remote_port;
  return e;
}

std::string MapCodec<FdbEntry>::describe(const FdbEntry& v) {
  if (v.type == FdbType::Remote) return fmt::format("remote {}:{}", v.remote_ip.to_string(), v.remote_port);
  return fmt::format("local ifindex {}", v.ifindex);
}

// ---- ports, neighbours, vtep, vnis, flood list ------------------------------

fdp_port MapCodec<PortConfig>::encode(const PortConfig& v) {
  fdp_port p{};
  p.vni = v.vni;
  p.flags = (v.uplink ? FDP_PORT_F_UPLINK : 0) | (v.learn ? FDP_PORT_F_LEARN : 0);
  return p;
}

PortConfig MapCodec<PortConfig>::decode(const fdp_port& a) {
  return PortConfig{a.vni, (a.flags & FDP_PORT_F_UPLINK) != 0, (a.flags & FDP_PORT_F_LEARN) != 0};
}

std::string MapCodec<PortConfig>::describe(const PortConfig& v) {
  return v.uplink ? std::string("uplink") : fmt::format("vni {}", v.vni);
}

fdp_neigh MapCodec<Neighbor>::encode(const Neighbor& v) {
  fdp_neigh n{};
  n.ifindex = v.ifindex;
  std::memcpy(n.src_mac, v.src_mac.bytes.data(), 6);
  std::memcpy(n.dst_mac, v.dst_mac.bytes.data(), 6);
  return n;
}

Neighbor MapCodec<Neighbor>::decode(const fdp_neigh& a) {
  Neighbor n;
  n.ifindex = a.ifindex;
  std::memcpy(n.src_mac.bytes.data(), a.src_mac, 6);
  std::memcpy(n.dst_mac.bytes.data(), a.dst_mac, 6);
  return n;
}

std::string MapCodec<Neighbor>::describe(const Neighbor& v) {
  return fmt::format("ifindex {} {} -> {}", v.ifindex, v.src_mac.to_string(), v.dst_mac.to_string());
}

fdp_vtep MapCodec<VtepConfig>::encode(const VtepConfig& v) {
  fdp_vtep t{};
  t.ip = ip_to_be(v.ip);
  t.uplink_ifindex = v.uplink_ifindex;
  t.port = v.udp_port;
  t.mtu = v.mtu;
  return t;
}

VtepConfig MapCodec<VtepConfig>::decode(const fdp_vtep& a) {
  return VtepConfig{ip_from_be(a.ip), a.uplink_ifindex, a.port, a.mtu};
}

std::string MapCodec<VtepConfig>::describe(const VtepConfig& v) {
  return fmt::format("{} port {} uplink {}", v.ip.to_string(), v.udp_port, v.uplink_ifindex);
}

fdp_vni MapCodec<VniConfig>::encode(const VniConfig& v) {
  fdp_vni n{};
  n.flags = v.remote_flood ? FDP_VNI_F_REMOTE_FLOOD : 0;
  return n;
}

VniConfig MapCodec<VniConfig>::decode(const fdp_vni& a) {
  return VniConfig{(a.flags & FDP_VNI_F_REMOTE_FLOOD) != 0};
}

std::string MapCodec<VniConfig>::describe(const VniConfig& v) {
  return v.remote_flood ? "remote flood" : "local";
}

fdp_flood_key MapCodec<FloodRemoteKey>::encode(const FloodRemoteKey& v) {
  fdp_flood_key k{};
  k.vni = v.vni;
  k.remote_ip = ip_to_be(v.vtep);
  return k;
}

FloodRemoteKey MapCodec<FloodRemoteKey>::decode(const fdp_flood_key& a) {
  return FloodRemoteKey{a.vni, ip_from_be(a.remote_ip)};
}

std::string MapCodec<FloodRemoteKey>::describe(const FloodRemoteKey& v) {
  return fmt::format("{{vni {}, {}}}", v.vni, v.vtep.to_string());
}

fdp_flood_remote MapCodec<FloodRemote>::encode(const FloodRemote& v) {
  fdp_flood_remote r{};
  r.port = v.port;
  return r;
}

FloodRemote MapCodec<FloodRemote>::decode(const fdp_flood_remote& a) { return FloodRemote{a.port}; }

std::string MapCodec<FloodRemote>::describe(const FloodRemote& v) { return fmt::format("port {}", v.port); }

}  // namespace foundry::dataplane
