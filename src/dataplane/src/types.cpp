#include "foundry/dataplane/types.h"

#include <fmt/format.h>

namespace foundry::dataplane {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (size_t i = 0; i < 6; ++i) {
    size_t at = i * 3;
    int hi = hex_digit(s[at]);
    int lo = hex_digit(s[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && s[at + 2] != ':') return std::nullopt;
    m.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return m;
}

std::string MacAddr::to_string() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2], bytes[3],
                     bytes[4], bytes[5]);
}

bool MacAddr::is_zero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

Status validate_vni(uint64_t vni) {
  if (vni > kVniMax)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("VNI {} is out of range: VXLAN network identifiers are 24 bits", vni))
                    .with_hint(fmt::format("use a VNI from 0 to {}", kVniMax)));
  return ok();
}

FdbEntry FdbEntry::local(uint32_t ifindex, std::optional<MacAddr> rewrite) {
  FdbEntry e;
  e.type = FdbType::Local;
  e.ifindex = ifindex;
  e.rewrite_mac = rewrite;
  return e;
}

FdbEntry FdbEntry::remote(net::Ipv4 vtep, uint16_t port) {
  FdbEntry e;
  e.type = FdbType::Remote;
  e.remote_ip = vtep;
  e.remote_port = port;
  return e;
}

uint64_t Counters::frames() const {
  uint64_t n = 0;
  for (uint32_t v = FDP_V_ABORTED; v <= FDP_V_REDIRECT; ++v) n += values[v].packets;
  return n;
}

Counters Counters::since(const Counters& earlier) const {
  Counters d;
  for (size_t i = 0; i < values.size(); ++i) {
    d.values[i].packets = values[i].packets - earlier.values[i].packets;
    d.values[i].bytes = values[i].bytes - earlier.values[i].bytes;
  }
  return d;
}

std::string_view counter_name(uint32_t index) {
  switch (static_cast<fdp_counter>(index)) {
    case FDP_V_ABORTED: return "verdict.aborted";
    case FDP_V_DROP: return "verdict.drop";
    case FDP_V_PASS: return "verdict.pass";
    case FDP_V_TX: return "verdict.tx";
    case FDP_V_REDIRECT: return "verdict.redirect";
    case FDP_R_FWD_LOCAL: return "forward.local";
    case FDP_R_FLOOD_LOCAL: return "forward.flood";
    case FDP_R_ENCAP: return "forward.encap";
    case FDP_R_PASS_NOT_PORT: return "pass.not_port";
    case FDP_R_PASS_NOT_VXLAN: return "pass.not_vxlan";
    case FDP_R_DROP_MALFORMED: return "drop.malformed";
    case FDP_R_DROP_VLAN: return "drop.vlan";
    case FDP_R_DROP_BAD_SRC_MAC: return "drop.bad_src_mac";
    case FDP_R_DROP_BAD_CSUM: return "drop.bad_csum";
    case FDP_R_DROP_BAD_VXLAN: return "drop.bad_vxlan";
    case FDP_R_DROP_UNKNOWN_VNI: return "drop.unknown_vni";
    case FDP_R_DROP_SAME_PORT: return "drop.same_port";
    case FDP_R_DROP_SPLIT_HORIZON: return "drop.split_horizon";
    case FDP_R_DROP_NO_VTEP: return "drop.no_vtep";
    case FDP_R_DROP_NO_NEIGH: return "drop.no_neighbor";
    case FDP_R_DROP_TOO_BIG: return "drop.too_big";
    case FDP_R_DROP_NO_FLOOD_GROUP: return "drop.no_flood_group";
    case FDP_R_DROP_NO_TX_PORT: return "drop.no_tx_port";
    case FDP_R_DROP_HEADROOM: return "drop.headroom";
    case FDP_R_DROP_BAD_FDB: return "drop.bad_fdb_entry";
    case FDP_E_DECAP: return "event.decap";
    case FDP_E_LEARN_NEW: return "event.learn_new";
    case FDP_E_LEARN_MOVE: return "event.learn_move";
    case FDP_E_LEARN_FAILED: return "event.learn_failed";
    case FDP_E_LEARN_STATIC: return "event.learn_static";
    case FDP_E_BUM_TO_AGENT: return "event.bum_to_agent";
    case FDP_E_BUM_LOST: return "event.bum_lost";
    case FDP_E_LEARN_EVENT_LOST: return "event.learn_event_lost";
    case FDP_COUNTER_MAX: break;
  }
  return {};
}

std::string xdp_verdict_name(uint32_t verdict) {
  switch (verdict) {
    case 0: return "XDP_ABORTED";
    case 1: return "XDP_DROP";
    case 2: return "XDP_PASS";
    case 3: return "XDP_TX";
    case 4: return "XDP_REDIRECT";
    default: return fmt::format("XDP_{}", verdict);
  }
}

}  // namespace foundry::dataplane
