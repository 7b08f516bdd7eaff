#include "foundry/agent/convert.h"

#include <net/if.h>

#include <cerrno>

namespace foundry::agent {

using namespace foundry::dataplane;

namespace {

constexpr std::string_view kHintSep = "; hint: ";

Error invalid(std::string_view field, std::string msg, std::string hint = "") {
  Error e(ErrorKind::Validation, fmt::format("{}: {}", field, msg));
  if (!hint.empty()) e.with_hint(std::move(hint));
  return e;
}

}  // namespace

grpc::Status to_grpc(const Error& e) {
  std::string msg = e.to_string();
  if (!e.hint().empty()) msg += std::string(kHintSep) + e.hint();
  grpc::StatusCode code;
  switch (e.sys_errno()) {
    case ENODEV:
    case ENXIO:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case ENOENT:
      code = e.kind() == ErrorKind::Validation ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case E2BIG:
    case ENOSPC:
    case ENOMEM:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case EEXIST:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case EPERM:
    case EACCES:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    default:
      switch (e.kind()) {
        case ErrorKind::Config:
        case ErrorKind::Validation: code = grpc::StatusCode::INVALID_ARGUMENT; break;
        case ErrorKind::Connection: code = grpc::StatusCode::UNAVAILABLE; break;
        case ErrorKind::Operation: code = grpc::StatusCode::FAILED_PRECONDITION; break;
        case ErrorKind::Storage: code = grpc::StatusCode::INTERNAL; break;
        default: code = grpc::StatusCode::INTERNAL; break;
      }
  }
  return grpc::Status(code, msg);
}

Error from_grpc(const grpc::Status& s, std::string_view what) {
  std::string msg = s.error_message();
  std::string hint;
  if (auto at = msg.find(kHintSep); at != std::string::npos) {
    hint = msg.substr(at + kHintSep.size());
    msg.resize(at);
  }
  ErrorKind kind = ErrorKind::Operation;
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
      kind = ErrorKind::Validation;
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      kind = ErrorKind::Connection;
      if (hint.empty()) hint = "is foundry-agent running? (systemctl status foundry-agent)";
      break;
    default:
      break;
  }
  Error e(kind, msg.empty() ? fmt::format("gRPC status {}", static_cast<int>(s.error_code())) : msg);
  if (!hint.empty()) e.with_hint(hint);
  e.wrap(std::string(what));
  return e;
}

Result<MacAddr> parse_mac(const std::string& s, std::string_view field) {
  auto m = MacAddr::parse(s);
  if (!m)
    return fail(invalid(field, fmt::format("malformed MAC address '{}'", s), "write it as aa:bb:cc:dd:ee:ff"));
  return *m;
}

Result<net::Ipv4> parse_ipv4(const std::string& s, std::string_view field) {
  auto ip = net::Ipv4::parse(s);
  if (!ip) return fail(invalid(field, fmt::format("malformed IPv4 address '{}'", s), "write it as a.b.c.d"));
  return *ip;
}

Result<Vni> parse_vni(uint32_t v, std::string_view field) {
  if (v > kVniMax)
    return fail(invalid(field, fmt::format("VNI {} is out of range: VXLAN network identifiers are 24 bits", v),
                        fmt::format("use a VNI from 0 to {}", kVniMax)));
  return v;
}

Result<uint16_t> parse_port(uint32_t v, std::string_view field) {
  if (v > 0xffff) return fail(invalid(field, fmt::format("UDP port {} is out of range", v), "use 1 to 65535"));
  return static_cast<uint16_t>(v);
}

Result<std::string> parse_ifname(const std::string& s, std::string_view field) {
  if (s.empty()) return fail(invalid(field, "interface name is missing"));
  if (s.size() >= IF_NAMESIZE || s.find('/') != std::string::npos || s.find(' ') != std::string::npos)
    return fail(invalid(field, fmt::format("'{}' is not an interface name", s),
                        fmt::format("interface names have 1 to {} characters, no '/' or spaces", IF_NAMESIZE - 1)));
  return s;
}

XdpMode from_proto(pb::XdpMode m) {
  switch (m) {
    case pb::XDP_MODE_NATIVE: return XdpMode::Native;
    case pb::XDP_MODE_GENERIC: return XdpMode::Generic;
    case pb::XDP_MODE_TC: return XdpMode::Tc;
    default: return XdpMode::Auto;
  }
}

pb::XdpMode to_proto(XdpMode m) {
  switch (m) {
    case XdpMode::Native: return pb::XDP_MODE_NATIVE;
    case XdpMode::Generic: return pb::XDP_MODE_GENERIC;
    case XdpMode::Tc: return pb::XDP_MODE_TC;
    case XdpMode::Auto: return pb::XDP_MODE_AUTO;
  }
  return pb::XDP_MODE_AUTO;
}

std::string netns_path(const std::string& s) {
  if (s.empty() || s.find('/') != std::string::npos) return s;
  return "/run/netns/" + s;
}

Result<FdbKey> from_proto(const pb::FdbKey& k, std::string_view field) {
  FdbKey key;
  key.vni = FOUNDRY_TRY(parse_vni(k.vni(), fmt::format("{}.vni", field)));
  key.mac = FOUNDRY_TRY(parse_mac(k.mac(), fmt::format("{}.mac", field)));
  return key;
}

Result<std::pair<FdbKey, FdbEntry>> from_proto(const pb::FdbEntry& e, std::string_view field, DataplaneControl& dp) {
  FdbKey key;
  key.vni = FOUNDRY_TRY(parse_vni(e.vni(), fmt::format("{}.vni", field)));
  key.mac = FOUNDRY_TRY(parse_mac(e.mac(), fmt::format("{}.mac", field)));
  if (key.mac.is_multicast())
    return fail(invalid(fmt::format("{}.mac", field),
                        fmt::format("{} is a multicast address; the FDB holds unicast MACs", e.mac()),
                        "broadcast and multicast are flooded; add the VTEP with AddFloodVtep instead"));
  FdbEntry entry;
  switch (e.destination_case()) {
    case pb::FdbEntry::kLocal: {
      std::string f = fmt::format("{}.local.interface", field);
      std::string name = FOUNDRY_TRY(parse_ifname(e.local().interface(), f));
      auto idx = dp.ifindex(name);
      if (!idx) return fail(std::move(idx.error()).wrap(f));
      std::optional<MacAddr> rewrite;
      if (!e.local().rewrite_mac().empty())
        rewrite = FOUNDRY_TRY(parse_mac(e.local().rewrite_mac(), fmt::format("{}.local.rewrite_mac", field)));
      entry = FdbEntry::local(*idx, rewrite);
      break;
    }
    case pb::FdbEntry::kRemote: {
      net::Ipv4 vtep = FOUNDRY_TRY(parse_ipv4(e.remote().vtep(), fmt::format("{}.remote.vtep", field)));
      uint16_t port = FOUNDRY_TRY(parse_port(e.remote().udp_port(), fmt::format("{}.remote.udp_port", field)));
      entry = FdbEntry::remote(vtep, port);
      break;
    }
    default:
      return fail(invalid(field, "entry has neither a local interface nor a remote VTEP"));
  }
  return std::pair{key, entry};
}

pb::FdbEntry to_proto(const FdbKey& k, const FdbEntry& e, DataplaneControl& dp) {
  pb::FdbEntry out;
  out.set_vni(k.vni);
  out.set_mac(k.mac.to_string());
  out.set_learned(e.learned);
  if (e.type == FdbType::Remote) {
    out.mutable_remote()->set_vtep(e.remote_ip.to_string());
    out.mutable_remote()->set_udp_port(e.remote_port);
  } else {
    out.mutable_local()->set_interface(dp.ifname(e.ifindex));
    if (e.rewrite_mac) out.mutable_local()->set_rewrite_mac(e.rewrite_mac->to_string());
  }
  return out;
}

}  // namespace foundry::agent
