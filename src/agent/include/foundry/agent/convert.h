// Between the wire (agent.proto) and the library types, with the checks
// that turn bad input into INVALID_ARGUMENT before anything is touched.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>
#include <utility>

#include "agent.pb.h"
#include "foundry/agent/control.h"
#include "foundry/common/error.h"

namespace foundry::agent {

namespace pb = ::foundry::agent::v1;

// Error -> gRPC status: unknown interface / missing entry NOT_FOUND, full
// map RESOURCE_EXHAUSTED, bad input INVALID_ARGUMENT, missing prerequisite
// FAILED_PRECONDITION. The message is the error text, then "; hint: ...".
grpc::Status to_grpc(const Error& e);
// And back, for clients: INVALID_ARGUMENT/NOT_FOUND/ALREADY_EXISTS are
// validation (exit 2), UNAVAILABLE/DEADLINE_EXCEEDED connection (3), the
// rest operation (4); the hint is split off again.
Error from_grpc(const grpc::Status& s, std::string_view what);

// `field` names the request field in error messages ("entries[3].mac").
Result<dataplane::MacAddr> parse_mac(const std::string& s, std::string_view field);
Result<net::Ipv4> parse_ipv4(const std::string& s, std::string_view field);
Result<dataplane::Vni> parse_vni(uint32_t v, std::string_view field);
Result<uint16_t> parse_port(uint32_t v, std::string_view field);
Result<std::string> parse_ifname(const std::string& s, std::string_view field);
dataplane::XdpMode from_proto(pb::XdpMode m);
pb::XdpMode to_proto(dataplane::XdpMode m);
// A bare name means /run/netns/NAME.
std::string netns_path(const std::string& s);

Result<std::pair<dataplane::FdbKey, dataplane::FdbEntry>> from_proto(const pb::FdbEntry& e, std::string_view field,
                                                                     DataplaneControl& dp);
Result<dataplane::FdbKey> from_proto(const pb::FdbKey& k, std::string_view field);
pb::FdbEntry to_proto(const dataplane::FdbKey& k, const dataplane::FdbEntry& e, DataplaneControl& dp);

}  // namespace foundry::agent
