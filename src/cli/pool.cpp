// foundry pool ...: libvirt storage pools (seed 001, "Storage Pool Management").
#include <memory>

#include "cli.h"
#include "virt_cli.h"

namespace foundry::cli {

namespace {

std::string yes_no(bool b) { return b ? "yes" : "no"; }

Status pool_list(const Globals& g) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  auto pools = FOUNDRY_TRY(sm.list_pools());
  if (g.output == OutputFormat::Json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : pools) arr.push_back(to_json(p));
    print_json(arr);
    return ok();
  }
  Table t({"NAME", "TYPE", "STATE", "AUTOSTART", "CAPACITY", "ALLOCATION", "AVAILABLE", "VOLUMES", "PATH"});
  for (const auto& p : pools)
    t.add({p.name, p.type, std::string(virt::to_string(p.state)), yes_no(p.autostart), human_bytes(p.capacity),
           human_bytes(p.allocation), human_bytes(p.available),
           p.volume_count < 0 ? "-" : std::to_string(p.volume_count), p.path.empty() ? p.source : p.path});
  t.print();
  return ok();
}

Status pool_info(const Globals& g, const std::string& name) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  auto d = FOUNDRY_TRY(sm.pool_details(name));
  if (g.output == OutputFormat::Json) {
    auto j = to_json(d.summary);
    nlohmann::json vols = nlohmann::json::array();
    for (const auto& v : d.volumes) vols.push_back(to_json(v));
    j["volume_list"] = vols;
    print_json(j);
    return ok();
  }
  const auto& s = d.summary;
  Table kv({"Name:", s.name});
  kv.add({"UUID:", s.uuid});
  kv.add({"Type:", s.type});
  kv.add({"State:", std::string(virt::to_string(s.state))});
  kv.add({"Persistent:", yes_no(s.persistent)});
  kv.add({"Autostart:", yes_no(s.autostart)});
  if (!s.path.empty()) kv.add({"Path:", s.path});
  if (!s.source.empty()) kv.add({"Source:", s.source});
  kv.add({"Capacity:", human_bytes(s.capacity)});
  kv.add({"Allocation:", human_bytes(s.allocation)});
  kv.add({"Available:", human_bytes(s.available)});
  kv.add({"Volumes:", s.volume_count < 0 ? "- (pool inactive)" : std::to_string(s.volume_count)});
  if (s.is_default) kv.add({"Default:", "yes (Foundry manages it; it cannot be deleted)"});
  kv.print();
  if (!d.volumes.empty()) {
    std::printf("\n");
    Table t({"VOLUME", "FORMAT", "CAPACITY", "ALLOCATION", "VM", "BACKING"});
    for (const auto& v : d.volumes) {
      auto parsed = virt::VolumeName::parse(v.name);
      t.add({v.name, v.format.empty() ? "-" : v.format, human_bytes(v.capacity), human_bytes(v.allocation),
             parsed ? parsed->vm : "-", v.backing_path.empty() ? "-" : v.backing_path});
    }
    t.print();
  }
  return ok();
}

struct AddArgs {
  std::string name;
  std::string type = "dir";
  std::string path;
  std::vector<std::string> hosts;
  std::string source_path;
  std::string source_name;
  std::vector<std::string> devices;
  std::string source_format;
  std::string auth_user;
  std::string secret_uuid;
  bool build = false;
  bool no_build = false;
  bool no_autostart = false;
  bool print_xml = false;
};

Result<virt::PoolSpec> spec_from(const AddArgs& a) {
  virt::PoolSpec s;
  s.name = a.name;
  s.type = FOUNDRY_TRY(virt::parse_pool_type(a.type));
  s.path = a.path;
  for (const auto& h : a.hosts) s.hosts.push_back(FOUNDRY_TRY(virt::parse_pool_host(h)));
  s.source_path = a.source_path;
  s.source_name = a.source_name;
  s.source_devices = a.devices;
  s.source_format = a.source_format;
  s.auth_user = a.auth_user;
  s.secret_uuid = a.secret_uuid;
  FOUNDRY_TRY(virt::validate_pool_spec(s));
  return s;
}

Status pool_add(const Globals& g, const AddArgs& a) {
  auto spec = FOUNDRY_TRY(spec_from(a));
  if (a.print_xml) {
    auto xml = virt::pool_xml(spec);
    if (!xml.empty() && xml.back() != '\n') xml += '\n';
    std::fputs(xml.c_str(), stdout);
    return ok();
  }
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::AddPoolOptions opts;
  if (a.build) opts.build = true;
  if (a.no_build) opts.build = false;
  opts.autostart = !a.no_autostart;
  auto s = FOUNDRY_TRY(sm.add_pool(spec, opts));
  if (g.output == OutputFormat::Json) {
    print_json(to_json(s));
    return ok();
  }
  step(g, fmt::format("Pool {} defined ({})", s.name, s.type));
  step(g, fmt::format("Pool {} started{}", s.name, s.autostart ? " and set to autostart" : ""));
  std::printf("Added pool '%s' at %s (%s available)\n", s.name.c_str(), (s.path.empty() ? s.source : s.path).c_str(),
              human_bytes(s.available).c_str());
  return ok();
}

Status pool_delete(const Globals& g, const std::string& name, bool force) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  FOUNDRY_TRY(sm.delete_pool(name, force));
  if (g.output == OutputFormat::Json)
    print_json({{"deleted", name}});
  else
    std::printf("Deleted pool '%s'\n", name.c_str());
  return ok();
}

Status pool_refresh(const Globals& g, const std::string& name) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  auto s = FOUNDRY_TRY(sm.refresh_pool(name));
  if (g.output == OutputFormat::Json) {
    print_json(to_json(s));
    return ok();
  }
  std::printf("Refreshed pool '%s': %d volume%s, %s of %s allocated, %s available\n", s.name.c_str(),
              s.volume_count, s.volume_count == 1 ? "" : "s", human_bytes(s.allocation).c_str(),
              human_bytes(s.capacity).c_str(), human_bytes(s.available).c_str());
  return ok();
}

constexpr const char* kExitCodes =
    "EXIT CODES:\n"
    "  0 success, 1 usage or unreadable input, 2 validation (bad name, refused default pool),\n"
    "  3 cannot connect to libvirt, 5 storage error (pool missing, not empty, libvirt failure)\n";

void register_pool(CLI::App& app, Globals& g) {
  auto* pool = app.add_subcommand("pool", "Storage pools: list, inspect, add, delete, refresh");
  pool->require_subcommand(1);

  auto* list = pool->add_subcommand("list", "List all storage pools with capacity and volume count");
  set_description(list, 
      "List every storage pool the hypervisor knows: type, state, autostart, capacity, allocation,\n"
      "available space, number of volumes (- when the pool is inactive) and path or source.");
  add_footer(list, "EXAMPLES:\n  foundry pool list\n  foundry -o json pool list | jq '.[].name'\n");
  set_action(list, [&g] { return pool_list(g); });

  auto info_name = std::make_shared<std::string>();
  auto* info = pool->add_subcommand("info", "Show a pool's details and its volumes");
  set_description(info, 
      "Show one pool: UUID, type, state, path or source, capacity, allocation, available space and\n"
      "every volume with its format, sizes, owning VM (from the {vm}_boot / {vm}_data-{dev} /\n"
      "{vm}_cloudinit naming) and backing image.");
  info->add_option("name", *info_name, "Pool name")->required();
  add_footer(info, "EXAMPLES:\n  foundry pool info foundry-vms\n  foundry -o json pool info foundry-images\n");
  set_action(info, [&g, info_name] { return pool_info(g, *info_name); });

  auto a = std::make_shared<AddArgs>();
  auto* add = pool->add_subcommand("add", "Add a storage pool (dir, logical, netfs, zfs, rbd)");
  set_description(add, 
      "Define a storage pool, build its storage, start it and set it to autostart. Any failing step\n"
      "undoes the earlier ones. What each type needs:\n"
      "  dir      --path DIR                              (the directory is created)\n"
      "  logical  --source-name VG [--source-dev /dev/sdX ...] (--build runs vgcreate on the devices)\n"
      "  netfs    --source-host HOST --source-path EXPORT --path MOUNTPOINT [--source-format nfs|cifs|glusterfs|auto]\n"
      "  zfs      --source-name ZPOOL [--source-dev /dev/sdX ...] (--build runs zpool create)\n"
      "  rbd      --source-name CEPHPOOL --source-host MON[:PORT] ... [--auth-user U --secret-uuid UUID]\n"
      "--print-xml shows the libvirt pool XML without touching the hypervisor.");
  add->add_option("name", a->name, "Pool name (letters, digits, '.', '_', '-')")->required();
  add->add_option("-t,--type", a->type, "Pool type: dir, logical, netfs, zfs, rbd")->capture_default_str();
  add->add_option("-p,--path", a->path, "Target directory (dir), mount point (netfs) or device dir (logical)");
  add->add_option("--source-host", a->hosts, "NFS server or Ceph monitor, HOST[:PORT] (repeatable)");
  add->add_option("--source-path", a->source_path, "Exported directory on the NFS server");
  add->add_option("--source-name", a->source_name, "Volume group, zpool or Ceph pool name");
  add->add_option("--source-dev", a->devices, "Block device for logical/zfs pools (repeatable)");
  add->add_option("--source-format", a->source_format, "netfs: nfs, cifs, glusterfs, auto; logical: lvm2");
  add->add_option("--auth-user", a->auth_user, "rbd: cephx user name");
  add->add_option("--secret-uuid", a->secret_uuid, "rbd: UUID of the libvirt secret holding the cephx key");
  add->add_flag("--build", a->build, "Build the storage also for logical/zfs (formats the source devices)");
  add->add_flag("--no-build", a->no_build, "Do not build the storage (it exists already)");
  add->add_flag("--no-autostart", a->no_autostart, "Do not start the pool when the host boots");
  add->add_flag("--print-xml", a->print_xml, "Print the pool XML and exit");
  add_footer(add, 
      "EXAMPLES:\n"
      "  foundry pool add ssd --type dir --path /mnt/ssd/foundry\n"
      "  foundry pool add bulk --type netfs --source-host nas.example.com --source-path /export/vms --path /mnt/bulk\n"
      "  foundry pool add lvm --type logical --source-name vg_vms\n"
      "  foundry pool add tank --type zfs --source-name tank/vms\n"
      "  foundry pool add ceph --type rbd --source-name vms --source-host mon1:6789 \\\n"
      "      --auth-user libvirt --secret-uuid 2a5b08e4-3dae-4e0f-9d0a-5b1d2a3c4e5f\n" +
      std::string(kExitCodes));
  set_action(add, [&g, a] { return pool_add(g, *a); });

  auto del_name = std::make_shared<std::string>();
  auto del_force = std::make_shared<bool>(false);
  auto* del = pool->add_subcommand("delete", "Delete a custom pool (not foundry-images / foundry-vms)");
  set_description(del, 
      "Stop and undefine a pool, and remove the directory libvirt made for dir and netfs pools (only\n"
      "when it is empty). The default pools foundry-images and foundry-vms are never deleted.\n"
      "A pool that still holds volumes is refused unless --force, which deletes the volumes first.");
  del->add_option("name", *del_name, "Pool name")->required();
  del->add_flag("-f,--force", *del_force, "Delete the pool's volumes too");
  add_footer(del, "EXAMPLES:\n  foundry pool delete ssd\n  foundry pool delete scratch --force\n" + std::string(kExitCodes));
  set_action(del, [&g, del_name, del_force] { return pool_delete(g, *del_name, *del_force); });

  auto ref_name = std::make_shared<std::string>();
  auto* ref = pool->add_subcommand("refresh", "Rescan a pool's volumes and sizes");
  set_description(ref, 
      "Ask libvirt to rescan a pool, e.g. after files were copied into its directory by hand.\n"
      "An inactive pool is started (starting scans it).");
  ref->add_option("name", *ref_name, "Pool name")->required();
  add_footer(ref, "EXAMPLES:\n  foundry pool refresh foundry-images\n");
  set_action(ref, [&g, ref_name] { return pool_refresh(g, *ref_name); });
  // Last: subcommands copy their parent's footer when they are created.
  set_description(pool, 
      "Storage pools (libvirt). Foundry keeps base images in the pool foundry-images and VM disks\n"
      "in foundry-vms; both are dir pools under /var/lib/libvirt/images/foundry (set\n"
      "FOUNDRY_STORAGE_PATH to move them, FOUNDRY_IMAGE_POOL / FOUNDRY_VM_POOL to rename them)\n"
      "and are created on first use. Add your own pools for fast, bulk or network storage.");
  add_footer(pool, kExitCodes);
}

const CommandGroup reg(20, register_pool);

}  // namespace

}  // namespace foundry::cli
