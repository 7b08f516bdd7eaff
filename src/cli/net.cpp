// foundry net ...: the XDP data plane, through foundry-agent (seed 002,
// part B). Every command is one gRPC call; the agent does the work.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli.h"
#include "foundry/agent/client.h"
#include "foundry/agent/server.h"

namespace foundry::cli {

namespace {

namespace pb = ::foundry::agent::v1;
using agent::AgentClient;

struct NetOptions {
  std::string agent;  // gRPC address of foundry-agent
};

std::string agent_address(const NetOptions& o) {
  if (!o.agent.empty()) return o.agent;
  if (const char* env = std::getenv("FOUNDRY_AGENT"); env && *env) return env;
  return agent::kDefaultAgentAddress;
}

pb::XdpMode parse_mode(const std::string& m) {
  if (m == "native") return pb::XDP_MODE_NATIVE;
  if (m == "generic") return pb::XDP_MODE_GENERIC;
  if (m == "tc") return pb::XDP_MODE_TC;
  return pb::XDP_MODE_AUTO;
}

std::string mode_name(pb::XdpMode m) {
  switch (m) {
    case pb::XDP_MODE_NATIVE: return "native";
    case pb::XDP_MODE_GENERIC: return "generic";
    case pb::XDP_MODE_TC: return "tc";
    default: return "auto";
  }
}

// "native XDP", "generic XDP" or "TC", for the one-line confirmations.
std::string mode_label(pb::XdpMode m) { return m == pb::XDP_MODE_TC ? "TC" : mode_name(m) + " XDP"; }

Status print_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  auto st = google::protobuf::util::MessageToJsonString(m, &out, o);
  if (!st.ok()) return fail(ErrorKind::Operation, "format JSON: {}", st.ToString());
  std::fputs(out.c_str(), stdout);
  return ok();
}

// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

void register_net(CLI::App& app, Globals& g) {
  auto* net = app.add_subcommand("net", "XDP data plane: ports, VTEP, forwarding database (via foundry-agent)");
  net->require_subcommand(1);
  auto opts = std::make_shared<NetOptions>();
  net->add_option("--agent", opts->agent, "foundry-agent address (default: $FOUNDRY_AGENT, unix:/run/foundry/agent.sock)");

  // foundry net attach IFACE --vni N [--peer-netns NS --peer-if IF] [--mode M] [--no-learning]
  {
    auto* cmd = net->add_subcommand("attach", "Put an interface into a VNI and attach the forwarder");
    auto req = std::make_shared<pb::AttachInterfaceRequest>();
    auto ifname = std::make_shared<std::string>();
    auto vni = std::make_shared<uint32_t>(0);
    auto mode = std::make_shared<std::string>("auto");
    auto peer_ns = std::make_shared<std::string>();
    auto peer_if = std::make_shared<std::string>();
    auto no_learn = std::make_shared<bool>(false);
    cmd->add_option("interface", *ifname, "Host-side interface, e.g. a container's veth")->required();
    cmd->add_option("--vni", *vni, "VXLAN network identifier (0-16777215)")->required();
    cmd->add_option("--peer-netns", *peer_ns, "Network namespace of the veth's other end (name or path)");
    cmd->add_option("--peer-if", *peer_if, "The veth's other end, which gets an XDP_PASS program to receive");
    cmd->add_option("--mode", *mode, "attach mode: XDP (auto, native, generic) or tc (clsact ingress; keeps TCP GSO packets whole)")->check(CLI::IsMember({"auto", "native", "generic", "tc"}))->capture_default_str();
    cmd->add_flag("--no-learning", *no_learn, "Do not learn source MACs on this interface");
    set_action(cmd, [=, &g]() -> Status {
      req->set_interface(*ifname);
      req->set_vni(*vni);
      req->set_mode(parse_mode(*mode));
      req->set_peer_netns(*peer_ns);
      req->set_peer_interface(*peer_if);
      req->set_no_learning(*no_learn);
      AgentClient c = AgentClient::connect(agent_address(*opts));
      auto r = FOUNDRY_TRY(c.call(&pb::Agent::Stub::AttachInterface, *req, fmt::format("attach {}", *ifname)));
      if (g.output == OutputFormat::Json) return print_json(r);
      std::printf("✓ %s attached to VNI %u (%s)\n", ifname->c_str(), *vni, mode_label(r.mode()).c_str());
      return ok();
    });
  }

  // foundry net detach IFACE [--peer-netns NS --peer-if IF]
  {
    auto* cmd = net->add_subcommand("detach", "Detach the forwarder from an interface and forget it");
    auto ifname = std::make_shared<std::string>();
    auto peer_ns = std::make_shared<std::string>();
    auto peer_if = std::make_shared<std::string>();
    cmd->add_option("interface", *ifname, "Host-side interface")->required();
    cmd->add_option("--peer-netns", *peer_ns, "Network namespace of the veth's other end");
    cmd->add_option("--peer-if", *peer_if, "The veth's other end (its XDP_PASS program is removed)");
    set_action(cmd, [=]() -> Status {
      pb::DetachInterfaceRequest req;
      req.set_interface(*ifname);
      req.set_peer_netns(*peer_ns);
      req.set_peer_interface(*peer_if);
      AgentClient c = AgentClient::connect(agent_address(*opts));
      FOUNDRY_TRY(c.call(&pb::Agent::Stub::DetachInterface, req, fmt::format("detach {}", *ifname)));
      std::printf("✓ %s detached\n", ifname->c_str());
      return ok();
    });
  }

  // foundry net vtep --uplink IF --address IP [--port P] [--mode M]
  {
    auto* cmd = net->add_subcommand("vtep", "Set this host's VXLAN tunnel endpoint");
    auto req = std::make_shared<pb::SetVtepRequest>();
    auto uplink = std::make_shared<std::string>();
    auto address = std::make_shared<std::string>();
    auto port = std::make_shared<uint32_t>(4789);
    auto mode = std::make_shared<std::string>("auto");
    cmd->add_option("--uplink", *uplink, "Underlay interface")->required();
    cmd->add_option("--address", *address, "The VTEP's underlay IPv4 address")->required();
    cmd->add_option("--port", *port, "VXLAN UDP port")->capture_default_str();
    cmd->add_option("--mode", *mode, "attach mode: XDP (auto, native, generic) or tc (clsact ingress; keeps TCP GSO packets whole)")->check(CLI::IsMember({"auto", "native", "generic", "tc"}))->capture_default_str();
    set_action(cmd, [=, &g]() -> Status {
      req->set_uplink(*uplink);
      req->set_address(*address);
      req->set_udp_port(*port);
      req->set_mode(parse_mode(*mode));
      AgentClient c = AgentClient::connect(agent_address(*opts));
      auto r = FOUNDRY_TRY(c.call(&pb::Agent::Stub::SetVtep, *req, "set VTEP"));
      if (g.output == OutputFormat::Json) return print_json(r);
      std::printf("✓ VTEP %s on %s (%s); attached interfaces may have MTU %u at most\n", address->c_str(),
                  uplink->c_str(), mode_label(r.mode()).c_str(), r.mtu() > 50 ? r.mtu() - 50 : 0);
      return ok();
    });
  }

  // foundry net neighbor IP --dev IF --mac MAC [--src-mac MAC]: the underlay
  // next hop of a remote VTEP (outer Ethernet header of encapsulated frames).
  {
    auto* cmd = net->add_subcommand("neighbor", "Set the underlay next hop (MAC) of a remote VTEP");
    auto address = std::make_shared<std::string>();
    auto dev = std::make_shared<std::string>();
    auto mac = std::make_shared<std::string>();
    auto src_mac = std::make_shared<std::string>();
    cmd->add_option("address", *address, "Remote VTEP (or next hop) IPv4 address")->required();
    cmd->add_option("--dev", *dev, "Egress interface, usually the uplink")->required();
    cmd->add_option("--mac", *mac, "Next hop's MAC address")->required();
    cmd->add_option("--src-mac", *src_mac, "Source MAC (default: the interface's own)");
    set_action(cmd, [=]() -> Status {
      pb::AddNeighborRequest req;
      req.set_address(*address);
      req.set_interface(*dev);
      req.set_mac(*mac);
      req.set_src_mac(*src_mac);
      AgentClient c = AgentClient::connect(agent_address(*opts));
      FOUNDRY_TRY(c.call(&pb::Agent::Stub::AddNeighbor, req, fmt::format("add neighbour {}", *address)));
      std::printf("✓ %s is behind %s via %s\n", address->c_str(), mac->c_str(), dev->c_str());
      return ok();
    });
  }

  // foundry net flood add|del VNI VTEP [--port P]: remote VTEPs that get the
  // VNI's broadcast, multicast and unknown unicast (head-end replication).
  {
    auto* flood = net->add_subcommand("flood", "Remote VTEPs that receive a VNI's BUM traffic (head-end replication)");
    flood->require_subcommand(1);
    for (bool adding : {true, false}) {
      auto* cmd = flood->add_subcommand(adding ? "add" : "del",
                                        adding ? "Replicate the VNI's BUM frames to a remote VTEP" : "Stop replicating to it");
      auto vni = std::make_shared<uint32_t>(0);
      auto vtep = std::make_shared<std::string>();
      auto port = std::make_shared<uint32_t>(0);
      cmd->add_option("vni", *vni, "VNI")->required();
      cmd->add_option("vtep", *vtep, "Remote VTEP IPv4 address")->required();
      if (adding) cmd->add_option("--port", *port, "VXLAN UDP port (default: the local VTEP's)");
      set_action(cmd, [=]() -> Status {
        pb::FloodVtepRequest req;
        req.set_vni(*vni);
        req.set_vtep(*vtep);
        req.set_udp_port(*port);
        AgentClient c = AgentClient::connect(agent_address(*opts));
        if (adding) {
          FOUNDRY_TRY(c.call(&pb::Agent::Stub::AddFloodVtep, req, fmt::format("add flood VTEP {} to VNI {}", *vtep, *vni)));
          std::printf("✓ BUM frames of VNI %u are replicated to %s\n", *vni, vtep->c_str());
        } else {
          FOUNDRY_TRY(
              c.call(&pb::Agent::Stub::DeleteFloodVtep, req, fmt::format("delete flood VTEP {} from VNI {}", *vtep, *vni)));
          std::printf("✓ BUM frames of VNI %u are no longer replicated to %s\n", *vni, vtep->c_str());
        }
        return ok();
      });
    }
  }

  // foundry net fdb add|del|list
  {
    auto* fdb = net->add_subcommand("fdb", "Forwarding database: {VNI, MAC} -> local interface or remote VTEP");
    fdb->require_subcommand(1);

    auto* add = fdb->add_subcommand("add", "Add or replace an entry");
    auto vni = std::make_shared<uint32_t>(0);
    auto mac = std::make_shared<std::string>();
    auto dev = std::make_shared<std::string>();
    auto rewrite = std::make_shared<std::string>();
    auto vtep = std::make_shared<std::string>();
    auto port = std::make_shared<uint32_t>(0);
    add->add_option("vni", *vni, "VNI")->required();
    add->add_option("mac", *mac, "MAC address aa:bb:cc:dd:ee:ff")->required();
    auto* dev_opt = add->add_option("--dev", *dev, "Local interface the MAC is behind");
    add->add_option("--rewrite-mac", *rewrite, "Local: destination MAC to write before delivery")->needs(dev_opt);
    auto* vtep_opt = add->add_option("--vtep", *vtep, "Remote VTEP the MAC is behind");
    add->add_option("--port", *port, "Remote: VXLAN UDP port (default: the local VTEP's)")->needs(vtep_opt);
    dev_opt->excludes(vtep_opt);
    set_action(add, [=]() -> Status {
      if (dev->empty() == vtep->empty())
        return fail(Error(ErrorKind::Config, "fdb add: say where the MAC is").with_hint("give --dev IFACE or --vtep IP"));
      pb::AddFdbEntryRequest req;
      auto* e = req.mutable_entry();
      e->set_vni(*vni);
      e->set_mac(*mac);
      if (!dev->empty()) {
        e->mutable_local()->set_interface(*dev);
        e->mutable_local()->set_rewrite_mac(*rewrite);
      } else {
        e->mutable_remote()->set_vtep(*vtep);
        e->mutable_remote()->set_udp_port(*port);
      }
      AgentClient c = AgentClient::connect(agent_address(*opts));
      FOUNDRY_TRY(c.call(&pb::Agent::Stub::AddFdbEntry, req, fmt::format("add FDB entry {} in VNI {}", *mac, *vni)));
      std::printf("✓ %s in VNI %u -> %s\n", mac->c_str(), *vni,
                  dev->empty() ? ("VTEP " + *vtep).c_str() : dev->c_str());
      return ok();
    });

    auto* del = fdb->add_subcommand("del", "Delete an entry");
    auto dvni = std::make_shared<uint32_t>(0);
    auto dmac = std::make_shared<std::string>();
    del->add_option("vni", *dvni, "VNI")->required();
    del->add_option("mac", *dmac, "MAC address")->required();
    set_action(del, [=]() -> Status {
      pb::DeleteFdbEntryRequest req;
      req.mutable_key()->set_vni(*dvni);
      req.mutable_key()->set_mac(*dmac);
      AgentClient c = AgentClient::connect(agent_address(*opts));
      FOUNDRY_TRY(c.call(&pb::Agent::Stub::DeleteFdbEntry, req, fmt::format("delete FDB entry {} in VNI {}", *dmac, *dvni)));
      std::printf("✓ %s in VNI %u deleted\n", dmac->c_str(), *dvni);
      return ok();
    });

    auto* list = fdb->add_subcommand("list", "List entries, learned and static");
    auto lvni = std::make_shared<int64_t>(-1);
    list->add_option("--vni", *lvni, "Only this VNI");
    set_action(list, [=, &g]() -> Status {
      pb::ListFdbRequest req;
      if (*lvni >= 0) req.set_vni(static_cast<uint32_t>(*lvni));
      AgentClient c = AgentClient::connect(agent_address(*opts));
      auto r = FOUNDRY_TRY(c.call(&pb::Agent::Stub::ListFdb, req, "list the FDB"));
      if (g.output == OutputFormat::Json) return print_json(r);
      std::vector<std::vector<std::string>> rows{{"VNI", "MAC", "TYPE", "DESTINATION", "ORIGIN"}};
      for (const auto& e : r.entries()) {
        std::string dest;
        if (e.has_remote())
          dest = e.remote().udp_port() ? fmt::format("{}:{}", e.remote().vtep(), e.remote().udp_port()) : e.remote().vtep();
        else
          dest = e.local().rewrite_mac().empty() ? e.local().interface()
                                                 : fmt::format("{} (as {})", e.local().interface(), e.local().rewrite_mac());
        rows.push_back({std::to_string(e.vni()), e.mac(), e.has_remote() ? "remote" : "local", dest,
                        e.learned() ? "learned" : "static"});
      }
      print_table(rows);
      return ok();
    });
  }

  // foundry net stats [--all]
  {
    auto* cmd = net->add_subcommand("stats", "Data plane counters");
    auto all = std::make_shared<bool>(false);
    cmd->add_flag("--all", *all, "Also show counters that are zero");
    set_action(cmd, [=, &g]() -> Status {
      AgentClient c = AgentClient::connect(agent_address(*opts));
      auto r = FOUNDRY_TRY(c.call(&pb::Agent::Stub::GetStats, pb::GetStatsRequest{}, "read data plane counters"));
      if (g.output == OutputFormat::Json) return print_json(r);
      std::vector<std::vector<std::string>> rows{{"COUNTER", "PACKETS", "BYTES"}};
      for (const auto& ctr : r.counters())
        if (*all || ctr.packets() != 0)
          rows.push_back({ctr.name(), std::to_string(ctr.packets()), std::to_string(ctr.bytes())});
      rows.push_back({"agent.bum_replicated", std::to_string(r.bum_replicated()), "-"});
      print_table(rows);
      return ok();
    });
  }
}

const CommandGroup reg(60, register_net);

}  // namespace

}  // namespace foundry::cli
