// foundry storage status: every pool and what each VM uses.
#include <map>

#include "cli.h"
#include "virt_cli.h"

namespace foundry::cli {

namespace {

// Base image of a VM: the backing store of its boot volume, by file name.
std::string base_image(const virt::VmStorage& vm) {
  for (const auto& v : vm.volumes) {
    auto p = virt::VolumeName::parse(v.name);
    if (p && p->role == virt::VolumeName::Role::Boot && !v.backing_path.empty()) {
      auto slash = v.backing_path.rfind('/');
      return slash == std::string::npos ? v.backing_path : v.backing_path.substr(slash + 1);
    }
  }
  return "";
}

Status storage_status(const Globals& g) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  auto st = FOUNDRY_TRY(sm.status());
  if (g.output == OutputFormat::Json) {
    nlohmann::json pools = nlohmann::json::array();
    for (const auto& p : st.pools) {
      auto j = to_json(p.summary);
      j["free"] = p.summary.available;
      pools.push_back(j);
    }
    nlohmann::json vms = nlohmann::json::array();
    for (const auto& vm : st.vms) {
      nlohmann::json vols = nlohmann::json::array();
      for (const auto& v : vm.volumes) vols.push_back(to_json(v));
      auto img = base_image(vm);
      vms.push_back({{"vm", vm.vm},
                     {"capacity", vm.capacity},
                     {"allocation", vm.allocation},
                     {"image", img.empty() ? nlohmann::json(nullptr) : nlohmann::json(img)},
                     {"volumes", vols}});
    }
    print_json({{"pools", pools}, {"vms", vms}});
    return ok();
  }
  Table pools({"POOL", "TYPE", "STATE", "CAPACITY", "ALLOCATION", "FREE", "VOLUMES"});
  for (const auto& p : st.pools) {
    const auto& s = p.summary;
    pools.add({s.name, s.type, std::string(virt::to_string(s.state)), human_bytes(s.capacity),
               human_bytes(s.allocation), human_bytes(s.available),
               s.volume_count < 0 ? "-" : std::to_string(s.volume_count)});
  }
  pools.print();
  std::printf("\n");
  if (st.vms.empty()) {
    std::printf("No VM volumes ({vm}_boot, {vm}_data-{dev}, {vm}_cloudinit) in any pool.\n");
    return ok();
  }
  Table vms({"VM", "POOL", "VOLUMES", "IMAGE", "CAPACITY", "ALLOCATION"});
  for (const auto& vm : st.vms) {
    std::map<std::string, int> per_pool;
    std::string names;
    for (const auto& v : vm.volumes) {
      per_pool[v.pool]++;
      auto p = virt::VolumeName::parse(v.name);
      if (!names.empty()) names += ",";
      names += p->role == virt::VolumeName::Role::Data ? "data-" + p->device : std::string(virt::to_string(p->role));
    }
    std::string pool_list;
    for (const auto& [pool, n] : per_pool) pool_list += (pool_list.empty() ? "" : ",") + pool;
    auto img = base_image(vm);
    vms.add({vm.vm, pool_list, names, img.empty() ? "-" : img, human_bytes(vm.capacity), human_bytes(vm.allocation)});
  }
  vms.print();
  return ok();
}

void register_storage(CLI::App& app, Globals& g) {
  auto* storage = app.add_subcommand("storage", "Storage overview across all pools");
  storage->require_subcommand(1);
  auto* status = storage->add_subcommand("status", "Capacity of every pool and what each VM uses");
  set_description(status, 
      "Show every storage pool with capacity, allocation, free space and volume count, then every VM\n"
      "that has volumes (found by the names {vm}_boot, {vm}_data-{dev}, {vm}_cloudinit): its pools,\n"
      "volumes, base image, and their total capacity and allocation. VMs whose domain is gone but\n"
      "whose volumes are left show up here too.");
  add_footer(status, 
      "EXAMPLES:\n  foundry storage status\n  foundry -o json storage status | jq '.vms[].vm'\n"
      "EXIT CODES:\n  0 success, 3 cannot connect to libvirt, 5 storage error\n");
  set_action(status, [&g] { return storage_status(g); });
  set_description(storage,
                  "An overview of Foundry's storage across every libvirt pool: `storage status`. Pools\n"
                  "are managed with `foundry pool`, base images with `foundry image`.");
}

const CommandGroup reg(40, register_storage);

}  // namespace

}  // namespace foundry::cli
