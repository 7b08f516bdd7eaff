// VmConfig values built by hand (the YAML loader is tested on its own).
#pragma once

#include <string>
#include <vector>

#include "foundry/config/vm_config.h"

namespace foundry::cloudinit::testing {

inline config::NetworkInterface nic(const std::string& cidr, const std::string& gw,
                                    std::vector<std::string> dns, bool default_route) {
  config::NetworkInterface n;
  n.ip = *net::Ipv4Cidr::parse(cidr);
  n.gateway = *net::Ipv4::parse(gw);
  n.dns_servers = std::move(dns);
  n.bridge = "br0";
  n.default_route = default_route;
  return n;
}

// The example of seed 001, "Cloud-init Generation".
inline config::VmConfig seed_vm() {
  config::VmConfig vm;
  vm.name = "my-vm";
  vm.vcpus = 4;
  vm.memory_gib = 8;
  vm.network_interfaces.push_back(
      nic("10.55.22.22/24", "10.55.22.1", {"8.8.8.8", "1.1.1.1"}, true));
  config::CloudInit ci;
  ci.fqdn = "my-vm.example.com";
  ci.hostname = "my-vm";
  ci.ssh_keys = {"ssh-ed25519 AAAA..."};
  ci.root_password_hash = "$6$...";
  ci.ssh_pwauth = false;
  vm.cloud_init = ci;
  return vm;
}

}  // namespace foundry::cloudinit::testing
