// load_cluster_file / load_cluster_yaml: the cluster file into a
// ClusterConfig. Same shape as the VM loader: one pass reads every field and
// reports type problems as it goes, the cross-field rules (duplicate names,
// overlapping addresses, nodes outside the mesh) run at the end on whatever
// was readable, and the caller gets every problem at once.
#include <algorithm>
#include <array>
#include <map>
#include <regex>

#include <fmt/format.h>

#include "foundry/common/file.h"
#include "foundry/config/cluster_config.h"
#include "foundry/config/rules.h"
#include "yaml_reader.h"

namespace foundry::config {

namespace {

using detail::Field;
using detail::Map;
using detail::Pos;
using detail::Reader;
using detail::Value;

constexpr std::array<std::string_view, 7> kTopKeys = {"name", "nodes", "mesh", "os", "ssh_keys", "targets",
                                                      "configuration"};
constexpr std::array<std::string_view, 8> kNodeKeys = {"name",     "role",    "vcpus",   "memory_mib",
                                                       "disk_gib", "address", "gateway", "mesh_address"};
constexpr std::array<std::string_view, 3> kMeshKeys = {"cidr", "port", "interface"};
constexpr std::array<std::string_view, 2> kOsKeys = {"release", "packages"};
constexpr std::array<std::string_view, 2> kConfigurationKeys = {"settings", "workloads"};
constexpr std::array<std::string_view, 2> kRoles = {"control", "worker"};
constexpr std::array<std::string_view, 8> kTargets = {"qemu", "libvirt", "proxmox", "raw",
                                                      "bare-metal", "aws", "azure", "firecracker"};
// Debian releases a node OS can be made from (mmdebstrap knows their
// keyrings on a bookworm build machine).
constexpr std::array<std::string_view, 4> kReleases = {"bookworm", "trixie", "sid", "bullseye"};

constexpr uint64_t kMaxVcpus = 4096;
constexpr uint64_t kMaxMemoryMib = 64ull << 20;
constexpr uint64_t kMaxDiskGib = 1u << 20;
// Each node's certificate, key and WireGuard peer list go on its own config
// drive; past this a flat mesh is the wrong design anyway.
constexpr size_t kMaxNodes = 250;

std::string lowercase(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

SourcePos sp(Pos p) { return SourcePos{p.line, p.column}; }

struct NodeSeen {
  bool address_ok = false;
  Pos address_pos;
  bool mesh_given = false;
  Pos mesh_pos;
  Pos name_pos;
};

class ClusterLoader {
 public:
  ClusterLoader(Reader& r, const YAML::Node& root) : r_(r), root_(root) {}

  ClusterConfig load() {
    auto m = r_.mapping(Value{root_, detail::pos_of(root_, {1, 1}), ""}, kTopKeys, "the cluster file");
    if (!m) return std::move(c_);
    r_.require(*m, {"name", "nodes", "mesh", "ssh_keys"});
    // mesh first: node mesh addresses are derived from its CIDR.
    if (const Field* f = m->get("mesh")) mesh(f->value);
    for (const auto& f : m->fields) {
      if (f.key == "name") name(f.value);
      else if (f.key == "nodes") nodes(f.value);
      else if (f.key == "os") os(f.value);
      else if (f.key == "ssh_keys") ssh_keys(f.value);
      else if (f.key == "targets") targets(f.value);
      else if (f.key == "configuration") configuration(f.value);
    }
    if (!m->get("targets")) c_.targets = {Target::Qemu};
    check_nodes();
    return std::move(c_);
  }

 private:
  void name(const Value& v) {
    auto s = r_.string(v);
    if (!s) return;
    c_.name = lowercase(*s);
    if (auto bad = check_vm_name(c_.name))
      r_.error(v.pos, v.path, "cluster " + bad->message, bad->hint);
  }

  void mesh(const Value& v) {
    auto m = r_.mapping(v, kMeshKeys, "mesh");
    if (!m) return;
    r_.require(*m, {"cidr"});
    if (const Field* f = m->get("cidr")) {
      if (auto s = r_.string(f->value)) {
        auto cidr = net::Ipv4Cidr::parse(*s);
        if (!cidr) {
          r_.error(f->value.pos, f->value.path, fmt::format("\"{}\" is not an IPv4 network with prefix length", *s),
                   "write the mesh network as a CIDR, e.g. 10.90.0.0/24");
        } else if (cidr->prefix < 8 || cidr->prefix > 30) {
          r_.error(f->value.pos, f->value.path, fmt::format("mesh network {} has prefix /{}", *s, cidr->prefix),
                   "use a prefix from /8 to /30, e.g. 10.90.0.0/24");
        } else if (cidr->addr != cidr->network()) {
          r_.error(f->value.pos, f->value.path, fmt::format("{} has host bits set", *s),
                   fmt::format("write the network address: {}/{}", cidr->network().to_string(), cidr->prefix));
        } else {
          c_.mesh.cidr = *cidr;
          mesh_ok_ = true;
          mesh_pos_ = f->value.pos;
        }
      }
    }
    if (const Field* f = m->get("port")) {
      if (auto n = r_.positive(f->value, 1u << 30, "port: 51820")) {
        if (*n > 65535)
          r_.error(f->value.pos, f->value.path, fmt::format("port {} is not a UDP port number", *n),
                   "use a port from 1 to 65535; WireGuard's usual one is 51820");
        else
          c_.mesh.port = static_cast<uint16_t>(*n);
      }
    }
    if (const Field* f = m->get("interface")) {
      if (auto s = r_.string(f->value)) {
        if (auto bad = check_interface_name(*s)) r_.error(f->value.pos, f->value.path, bad->message, bad->hint);
        else c_.mesh.interface = *s;
      }
    }
  }

  void nodes(const Value& v) {
    auto items = r_.sequence(v, "nodes: [{name: node1, role: control, address: 192.0.2.11/24}]");
    if (!items) return;
    if (items->empty()) {
      r_.error(v.pos, v.path, "is empty: a cluster needs at least one node",
               "add `- name: node1`, `role: control`, `address: 192.0.2.11/24`");
      return;
    }
    if (items->size() > kMaxNodes) {
      r_.error(v.pos, v.path, fmt::format("has {} nodes; at most {} fit one mesh", items->size(), kMaxNodes),
               "split the cluster");
      return;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      ClusterNode n;
      NodeSeen seen;
      node((*items)[i], n, seen);
      c_.nodes.push_back(std::move(n));
      seen_.push_back(seen);
    }
  }

  void node(const Value& item, ClusterNode& n, NodeSeen& seen) {
    n.pos = sp(item.pos);
    auto m = r_.mapping(item, kNodeKeys, "a node");
    if (!m) return;
    r_.require(*m, {"name", "role", "vcpus", "memory_mib", "disk_gib", "address"});
    if (const Field* f = m->get("name")) {
      if (auto s = r_.string(f->value)) {
        std::string low = lowercase(*s);
        // The node name is its host name: no '_' (RFC 1123).
        if (auto bad = check_vm_name(low)) {
          r_.error(f->value.pos, f->value.path, "node " + bad->message, bad->hint);
        } else if (low.find('_') != std::string::npos) {
          r_.error(f->value.pos, f->value.path, fmt::format("node name {} has '_', which host names cannot", low),
                   "use '-' instead");
        } else {
          n.name = low;
          seen.name_pos = f->value.pos;
        }
      }
    }
    if (const Field* f = m->get("role")) {
      if (auto i = r_.choice(f->value, kRoles)) n.role = *i == 0 ? NodeRole::Control : NodeRole::Worker;
    }
    if (const Field* f = m->get("vcpus"))
      if (auto x = r_.positive(f->value, kMaxVcpus, "vcpus: 2")) n.vcpus = static_cast<uint32_t>(*x);
    if (const Field* f = m->get("memory_mib")) {
      if (auto x = r_.positive(f->value, kMaxMemoryMib, "memory_mib: 1024")) {
        if (*x < 256)
          r_.error(f->value.pos, f->value.path, fmt::format("memory_mib {} is too small for the node OS", *x),
                   "give a node at least 256 MiB, e.g. memory_mib: 1024");
        else
          n.memory_mib = *x;
      }
    }
    if (const Field* f = m->get("disk_gib")) {
      if (auto x = r_.positive(f->value, kMaxDiskGib, "disk_gib: 4")) {
        if (*x < 2)
          r_.error(f->value.pos, f->value.path, fmt::format("disk_gib {} is too small for the node OS", *x),
                   "the node OS needs at least 2 GiB, e.g. disk_gib: 4");
        else
          n.disk_gib = *x;
      }
    }
    if (const Field* f = m->get("address")) {
      if (auto s = r_.string(f->value)) {
        auto cidr = net::Ipv4Cidr::parse(*s);
        if (!cidr) {
          bool bare = net::Ipv4::parse(*s).has_value();
          r_.error(f->value.pos, f->value.path,
                   bare ? fmt::format("address {} has no prefix length", *s)
                        : fmt::format("address \"{}\" is not an IPv4 address with prefix length", *s),
                   bare ? fmt::format("write it with the underlay's prefix length, e.g. {}/24", *s)
                        : std::string("write the node's underlay address, e.g. 192.0.2.11/24"));
        } else if (uint32_t hm = cidr->prefix >= 31 ? 0 : ~(~0u << (32 - cidr->prefix));
                   hm && ((cidr->addr.to_u32() & hm) == 0 || (cidr->addr.to_u32() & hm) == hm)) {
          r_.error(f->value.pos, f->value.path,
                   fmt::format("address {} is the network or broadcast address of its subnet", *s),
                   "give the node a host address of the subnet");
        } else {
          n.address = *cidr;
          seen.address_ok = true;
          seen.address_pos = f->value.pos;
        }
      }
    }
    if (const Field* f = m->get("gateway")) {
      if (auto s = r_.string(f->value)) {
        auto gw = net::Ipv4::parse(*s);
        if (!gw) {
          r_.error(f->value.pos, f->value.path, fmt::format("gateway \"{}\" is not an IPv4 address", *s),
                   "write the underlay router's address, e.g. 192.0.2.1");
        } else if (seen.address_ok && !n.address.contains(*gw)) {
          r_.error(f->value.pos, f->value.path,
                   fmt::format("gateway {} is not in the node's subnet {}/{}", *s, n.address.network().to_string(),
                               n.address.prefix),
                   "check the prefix length of address or the gateway");
        } else {
          n.gateway = *gw;
          n.has_gateway = true;
        }
      }
    }
    if (const Field* f = m->get("mesh_address")) {
      if (auto s = r_.string(f->value)) {
        auto ip = net::Ipv4::parse(*s);
        if (!ip) {
          r_.error(f->value.pos, f->value.path, fmt::format("mesh_address \"{}\" is not an IPv4 address", *s),
                   "write an address of the mesh network without prefix, e.g. 10.90.0.5");
        } else if (mesh_ok_ && !c_.mesh.cidr.contains(*ip)) {
          r_.error(f->value.pos, f->value.path,
                   fmt::format("mesh_address {} is outside the mesh network {}", *s, c_.mesh.cidr.to_string()),
                   "pick an address of mesh.cidr, or leave mesh_address out to have one derived");
        } else {
          n.mesh_address = *ip;
          seen.mesh_given = true;
          seen.mesh_pos = f->value.pos;
        }
      }
    }
  }

  void os(const Value& v) {
    auto m = r_.mapping(v, kOsKeys, "os");
    if (!m) return;
    if (const Field* f = m->get("release")) {
      if (auto i = r_.choice(f->value, kReleases)) c_.os.release = std::string(kReleases[*i]);
    }
    if (const Field* f = m->get("packages")) {
      auto list = r_.sequence(f->value, "packages: [htop, tcpdump]");
      if (!list) return;
      // Debian policy 5.6.1, optionally =VERSION or /RELEASE.
      static const std::regex re(R"(^[a-z0-9][a-z0-9+.\-]+(=[A-Za-z0-9.+~:\-]+|/[A-Za-z0-9.\-]+)?$)");
      std::map<std::string, Pos> seen;
      for (const auto& item : *list) {
        auto s = r_.string(item);
        if (!s) continue;
        if (!std::regex_match(*s, re)) {
          r_.error(item.pos, item.path, fmt::format("\"{}\" is not a Debian package name", *s),
                   "package names are lower case letters, digits and + - . (optionally =VERSION or /RELEASE)");
          continue;
        }
        auto [it, fresh] = seen.emplace(*s, item.pos);
        if (!fresh) {
          r_.error(item.pos, item.path, fmt::format("package {} is already listed at line {}", *s, it->second.line),
                   "list each package once");
          continue;
        }
        c_.os.packages.push_back(PackageRef{*s, sp(item.pos)});
      }
    }
  }

  void ssh_keys(const Value& v) {
    auto list = r_.sequence(v, "ssh_keys: [\"ssh-ed25519 AAAA... admin@example.com\"]");
    if (!list) return;
    if (list->empty()) {
      r_.error(v.pos, v.path, "is empty: nobody could log in to the nodes",
               "add at least one OpenSSH public key, e.g. the line of ~/.ssh/id_ed25519.pub");
      return;
    }
    for (const auto& k : *list) {
      auto s = r_.string(k);
      if (!s) continue;
      if (auto bad = check_ssh_public_key(*s)) {
        r_.error(k.pos, k.path, bad->message, bad->hint);
        continue;
      }
      size_t b = s->find_first_not_of(" \t\r\n");
      size_t e = s->find_last_not_of(" \t\r\n");
      c_.ssh_keys.push_back(s->substr(b, e - b + 1));
    }
  }

  void targets(const Value& v) {
    auto list = r_.sequence(v, "targets: [qemu, firecracker]");
    if (!list) return;
    if (list->empty()) {
      r_.error(v.pos, v.path, "is empty", "name at least one target, e.g. targets: [qemu]");
      return;
    }
    for (const auto& item : *list) {
      auto i = r_.choice(item, kTargets);
      if (!i) continue;
      Target t = static_cast<Target>(*i);
      if (std::find(c_.targets.begin(), c_.targets.end(), t) != c_.targets.end()) {
        r_.error(item.pos, item.path, fmt::format("target {} is listed twice", kTargets[*i]), "list each target once");
        continue;
      }
      c_.targets.push_back(t);
    }
  }

  void configuration(const Value& v) {
    auto m = r_.mapping(v, kConfigurationKeys, "configuration");
    if (!m) return;
    if (const Field* f = m->get("workloads")) (void)r_.sequence(f->value, "workloads: [{name: web, ...}]");
    if (const Field* f = m->get("settings")) {
      if (!f->value.node.IsMap())
        r_.error(f->value.pos, f->value.path, fmt::format("expected a mapping, got {}", detail::describe(f->value.node)),
                 "settings are key: value lines applied after boot");
    }
    YAML::Emitter out;
    out << v.node;
    c_.configuration_yaml = std::string(out.c_str()) + "\n";
  }

  void check_nodes() {
    auto& nodes = c_.nodes;
    std::map<std::string, size_t> by_name;
    std::map<net::Ipv4, size_t> by_address;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      const auto& s = seen_[i];
      if (!n.name.empty()) {
        auto [it, fresh] = by_name.emplace(n.name, i);
        if (!fresh)
          r_.error(s.name_pos, fmt::format("nodes[{}].name", i),
                   fmt::format("node name {} is already used by nodes[{}] (line {})", n.name, it->second,
                               seen_[it->second].name_pos.line),
                   "node names are host names and must be unique in the cluster");
      }
      if (s.address_ok) {
        auto [it, fresh] = by_address.emplace(n.address.addr, i);
        if (!fresh) {
          r_.error(s.address_pos, fmt::format("nodes[{}].address", i),
                   fmt::format("address {} is already used by nodes[{}] (line {})", n.address.addr.to_string(),
                               it->second, seen_[it->second].address_pos.line),
                   "each node needs its own underlay address");
        } else if (mesh_ok_ && (c_.mesh.cidr.contains(n.address.addr) || n.address.contains(c_.mesh.cidr.addr))) {
          // WireGuard routes the mesh CIDR into the tunnel: an underlay in
          // it would send the tunnel's own packets into the tunnel.
          r_.error(s.address_pos, fmt::format("nodes[{}].address", i),
                   fmt::format("underlay address {} overlaps the mesh network {} (line {})", n.address.to_string(),
                               c_.mesh.cidr.to_string(), mesh_pos_.line),
                   "the mesh runs over the underlay; give them separate networks");
        }
      }
    }
    if (!mesh_ok_) return;
    // Mesh addresses: the given ones first, then the derived ones skip them.
    std::map<net::Ipv4, size_t> mesh_used;
    uint32_t net_base = c_.mesh.cidr.network().to_u32();
    uint32_t hosts = (c_.mesh.cidr.prefix >= 31) ? 0 : (~(~0u << (32 - c_.mesh.cidr.prefix))) - 1;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!seen_[i].mesh_given) continue;
      auto [it, fresh] = mesh_used.emplace(nodes[i].mesh_address, i);
      if (!fresh)
        r_.error(seen_[i].mesh_pos, fmt::format("nodes[{}].mesh_address", i),
                 fmt::format("mesh_address {} is already used by nodes[{}]", nodes[i].mesh_address.to_string(),
                             it->second),
                 "each node needs its own mesh address");
    }
    uint32_t next = 1;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (seen_[i].mesh_given) continue;
      while (next <= hosts && mesh_used.contains(net::Ipv4::from_u32(net_base + next))) ++next;
      if (next > hosts) {
        r_.error(mesh_pos_, "mesh.cidr",
                 fmt::format("mesh network {} has no room for {} nodes", c_.mesh.cidr.to_string(), nodes.size()),
                 "use a larger mesh network, e.g. a /24");
        return;
      }
      nodes[i].mesh_address = net::Ipv4::from_u32(net_base + next);
      mesh_used.emplace(nodes[i].mesh_address, i);
      ++next;
    }
  }

  Reader& r_;
  const YAML::Node& root_;
  ClusterConfig c_;
  bool mesh_ok_ = false;
  Pos mesh_pos_;
  std::vector<NodeSeen> seen_;
};

}  // namespace

std::string_view to_string(NodeRole r) { return kRoles[static_cast<size_t>(r)]; }
std::string_view to_string(Target t) { return kTargets[static_cast<size_t>(t)]; }
std::span<const std::string_view> target_names() { return kTargets; }

bool ClusterConfig::has_target(Target t) const {
  return std::find(targets.begin(), targets.end(), t) != targets.end();
}

const ClusterNode* ClusterConfig::node(std::string_view n) const {
  for (const auto& x : nodes)
    if (x.name == n) return &x;
  return nullptr;
}

Result<ClusterConfig> load_cluster_yaml(const std::string& text, const std::string& name_for_messages) {
  return detail::load_document<ClusterConfig>(text, name_for_messages, "examples/cluster.yaml", ErrorKind::Validation,
                                              [](Reader& r, const YAML::Node& root) { return ClusterLoader(r, root).load(); });
}

Result<ClusterConfig> load_cluster_file(const std::string& path) {
  auto c = detail::load_document_file(path, "load cluster file", load_cluster_yaml);
  if (c) c->source_file = path;
  return c;
}

}  // namespace foundry::config
