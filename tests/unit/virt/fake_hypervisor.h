// In-memory Hypervisor for unit tests of the VM orchestration logic.
// `fail_at` makes the named operation fail ("create_volume:my-vm_data-vdb",
// "define_domain", "start_domain", ...), to check rollback at every step.
#pragma once

#include <cerrno>
#include <map>
#include <set>
#include <string>

#include <pugixml.hpp>

#include "foundry/virt/vm.h"
#include "foundry/virt/storage.h"

namespace foundry::virt::testing {

class FakeHypervisor : public Hypervisor {
 public:
  struct Dom {
    std::string xml;
    bool running = false;
    bool autostart = false;
  };
  std::map<std::string, Dom> domains;
  std::map<std::string, std::map<std::string, VolumeDetails>> pools;  // pool -> volumes
  std::set<std::string> default_pools{"foundry-vms", "foundry-images"};
  std::vector<std::string> bridges{"br0", "br1"};
  std::string fail_at;
  std::vector<std::string> calls;
  std::map<std::string, std::string> uploads;
  bool ignore_shutdown = false;

  Status maybe_fail(const std::string& op, const std::string& obj = "") {
    calls.push_back(obj.empty() ? op : op + ":" + obj);
    if (fail_at == op || (!obj.empty() && fail_at == op + ":" + obj))
      return fail(Error(ErrorKind::Operation, "injected failure in " + calls.back()));
    return ok();
  }

  Result<bool> domain_exists(const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("domain_exists", name));
    return domains.count(name) > 0;
  }
  Result<DomainFacts> domain_info(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end()) return fail(Error(ErrorKind::Operation, "no domain " + name).with_errno(ENOENT));
    DomainFacts i;
    i.name = name;
    i.state = it->second.running ? DomainState::Running : DomainState::ShutOff;
    i.autostart = it->second.autostart;
    i.xml = it->second.xml;
    pugi::xml_document d;
    d.load_string(i.xml.c_str());
    i.vcpus = d.child("domain").child("vcpu").text().as_uint();
    i.memory_kib = d.child("domain").child("memory").text().as_ullong() * 1024 * 1024;
    return i;
  }
  Result<std::vector<DomainFacts>> list_domains(bool include_inactive) override {
    std::vector<DomainFacts> out;
    for (auto& [n, d] : domains)
      if (include_inactive || d.running) out.push_back(*domain_info(n));
    return out;
  }
  Status define_domain(const std::string& xml) override {
    pugi::xml_document d;
    d.load_string(xml.c_str());
    std::string name = d.child("domain").child_value("name");
    FOUNDRY_TRY(maybe_fail("define_domain", name));
    domains[name].xml = xml;
    return ok();
  }
  Status undefine_domain(const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("undefine_domain", name));
    domains.erase(name);
    return ok();
  }
  Status set_autostart(const std::string& name, bool on) override {
    FOUNDRY_TRY(maybe_fail("set_autostart", name));
    domains[name].autostart = on;
    return ok();
  }
  Status start_domain(const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("start_domain", name));
    domains[name].running = true;
    return ok();
  }
  Status shutdown_domain(const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("shutdown_domain", name));
    if (!ignore_shutdown) domains[name].running = false;
    return ok();
  }
  Status destroy_domain(const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("destroy_domain", name));
    if (domains.count(name)) domains[name].running = false;
    return ok();
  }
  Result<bool> pool_exists(const std::string& pool) override { return pools.count(pool) > 0; }
  Result<bool> ensure_pool(const std::string& pool) override {
    FOUNDRY_TRY(maybe_fail("ensure_pool", pool));
    if (pools.count(pool)) return false;
    if (!default_pools.count(pool)) return fail(Error(ErrorKind::Storage, "pool " + pool + " not found"));
    pools[pool];
    return true;
  }
  Status delete_empty_pool(const std::string& pool) override {
    if (pools.count(pool) && pools[pool].empty()) pools.erase(pool);
    return ok();
  }
  Result<std::optional<VolumeDetails>> find_volume(const std::string& pool, const std::string& name) override {
    auto p = pools.find(pool);
    if (p == pools.end()) return fail(Error(ErrorKind::Storage, "pool " + pool + " not found"));
    auto v = p->second.find(name);
    if (v == p->second.end()) return std::optional<VolumeDetails>{};
    return std::optional<VolumeDetails>{v->second};
  }
  Result<std::optional<VolumeDetails>> find_volume_by_path(const std::string& path) override {
    for (auto& [p, vols] : pools)
      for (auto& [n, v] : vols)
        if (v.path == path) return std::optional<VolumeDetails>{v};
    return std::optional<VolumeDetails>{};
  }
  Status create_volume(const std::string& pool, const VolumeSpec& spec) override {
    FOUNDRY_TRY(maybe_fail("create_volume", spec.name));
    VolumeDetails v;
    v.name = spec.name;
    v.pool = pool;
    v.path = "/pools/" + pool + "/" + spec.name;
    v.format = std::string(to_string(spec.format));
    v.capacity = spec.capacity;
    if (spec.backing) v.backing_path = spec.backing->path;
    pools[pool][spec.name] = v;
    return ok();
  }
  Status create_volume_from_bytes(const std::string& pool, const std::string& name,
                                  const std::string& bytes) override {
    FOUNDRY_TRY(maybe_fail("create_volume_from_bytes", name));
    VolumeSpec spec{name, VolumeFormat::Raw, bytes.size(), 0, std::nullopt};
    pools[pool][name] = VolumeDetails{name, pool, "/pools/" + pool + "/" + name, "", "raw", bytes.size(), 0, "", ""};
    uploads[pool + "/" + name] = bytes;
    return ok();
  }
  Status delete_volume(const std::string& pool, const std::string& name) override {
    FOUNDRY_TRY(maybe_fail("delete_volume", name));
    pools[pool].erase(name);
    return ok();
  }
  Result<std::vector<std::string>> list_bridges() override { return bridges; }
};

}  // namespace foundry::virt::testing
