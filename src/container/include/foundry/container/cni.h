// CNI (Container Network Interface, spec 1.0.0): networks described by
// .conflist files, configured by plugin executables (Debian's
// containernetworking-plugins in /usr/lib/cni).
//
// ADD runs the list's plugins in order, each getting the previous one's
// result as prevResult; if one fails, the ones already added are deleted
// again (reverse order). DEL runs them in reverse with the stored ADD
// result; CHECK in order with it. VERSION asks one plugin what it speaks.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"

namespace foundry::container {

inline constexpr const char* kDefaultCniConfDir = "/etc/foundry/cni";
inline constexpr const char* kCniVersion = "1.0.0";

struct CniNetwork {
  std::string file;  // where it was read from ("" if built in code)
  std::string name;
  std::string cni_version;
  nlohmann::json list;  // the whole conflist document
  std::vector<nlohmann::json> plugins;
};

// Parses a .conflist document; errors name the JSON path (plugins[1].type).
Result<CniNetwork> parse_conflist(const std::string& text, const std::string& file = "conflist");
// The network called `name` among dir/*.conflist.
Result<CniNetwork> find_network(const std::string& dir, const std::string& name);
// Writes the default bridge network (foundry0, 10.88.0.0/16, NAT) as
// dir/10-foundry.conflist unless a network of that name exists.
Status install_default_network(const std::string& dir);

struct CniRuntime {
  std::string container_id;
  std::string netns;           // /proc/<pid>/ns/net, or "" for a DEL after the namespace is gone
  std::string ifname = "eth0";
  std::vector<std::string> plugin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  std::chrono::seconds timeout{30};
};

// ADD: the final result (the last plugin's), to be kept for DEL and CHECK.
Result<nlohmann::json> cni_add(const CniNetwork& net, const CniRuntime& rt);
// DEL: every plugin runs even if one fails; the first failure is returned.
Status cni_del(const CniNetwork& net, const CniRuntime& rt, const nlohmann::json& prev_result);
Status cni_check(const CniNetwork& net, const CniRuntime& rt, const nlohmann::json& prev_result);
// The VERSION answer of one plugin type.
Result<nlohmann::json> cni_version(const std::string& type, const CniRuntime& rt);

// The first IPv4 address ("192.0.2.5/24") of a result, "" if none.
std::string cni_first_ipv4(const nlohmann::json& result);

}  // namespace foundry::container
