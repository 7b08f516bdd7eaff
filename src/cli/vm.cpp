// foundry vm ...: VM files and VM lifecycle (seed 001), plus the seed's
// top-level spellings `foundry create FILE`, `foundry destroy NAME`,
// `foundry list`.
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "foundry/cloudinit/cloudinit.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/common/file.h"
#include "foundry/config/foundry_config.h"
#include "foundry/config/vm_config.h"
#include "foundry/virt/host_check.h"
#include "foundry/virt/libvirt_hypervisor.h"
#include "foundry/virt/storage.h"
#include "foundry/virt/vm.h"
#include "output.h"
#include "virt_cli.h"

namespace foundry::cli {

namespace {

struct CreateArgs {
  std::string file;
  bool dry_run = false;
  std::string output_dir;
  std::string pool;
  std::string image_pool;
  bool no_start = false;
  bool skip_bridge_check = false;
  std::string default_route = "cidr";
  std::string bundle_path;   // seed 002 spelling: a container, not a VM
  std::string container_id;
};

struct DestroyArgs {
  std::string name;
  int timeout = 5;
  std::string pool;
};

struct ListArgs {
  bool all = false;
};

Status vm_validate(const std::vector<std::string>& files, const Globals& g) {
  std::optional<Error> first;
  size_t invalid = 0;
  auto report = nlohmann::json::array();
  for (const auto& f : files) {
    auto vm = config::load_vm_file(f);
    if (g.output == OutputFormat::Json) {
      nlohmann::json j = {{"file", f}, {"valid", bool(vm)}};
      if (vm) j["name"] = vm->name;
      else j["problems"] = diagnostics_json(vm.error());
      report.push_back(j);
    } else if (vm) {
      step(g, fmt::format("{}: VM '{}' is valid", f, vm->name));
    } else {
      print_error(vm.error(), g);
    }
    if (!vm) ++invalid;
    if (!vm && !first) first = vm.error();
  }
  if (g.output == OutputFormat::Json) print_json(report);
  if (first) {
    // Each problem was printed above; this only carries the exit code.
    return fail(Error(first->kind(), fmt::format("{} of {} file(s) not valid", invalid, files.size()))
                    .wrap("vm validate"));
  }
  return ok();
}

// The site settings with this command's own pool flags on top.
Result<config::FoundryConfig> site_config(const Globals& g, const std::string& pool, const std::string& image_pool) {
  config::ConfigValues flags;
  if (!pool.empty()) flags.vm_pool = pool;
  if (!image_pool.empty()) flags.image_pool = image_pool;
  return cli::site_config(g, std::move(flags));
}

// The hypervisor, with the default pools named as the site configures them
// ($FOUNDRY_VM_POOL / $FOUNDRY_IMAGE_POOL / config file), so those pools are
// created on first use wherever they are named. A --pool flag is not a
// default: that pool must already exist.
Result<std::unique_ptr<virt::LibvirtHypervisor>> open_hypervisor(const Globals& g) {
  auto defaults = FOUNDRY_TRY(cli::site_config(g));
  return virt::open_libvirt_hypervisor(defaults.uri, virt::StorageConfig::from(defaults));
}

// Loads the file and derives everything create needs, without a hypervisor.
struct Prepared {
  config::VmConfig vm;
  config::FoundryConfig site;
  cloudinit::Documents docs;
  std::string iso;
  virt::Firmware fw;
};

Result<Prepared> prepare(const CreateArgs& a, const Globals& g) {
  Prepared p;
  p.vm = FOUNDRY_TRY(config::load_vm_file(a.file));
  p.site = FOUNDRY_TRY(site_config(g, a.pool, a.image_pool));
  config::apply_site_config(p.vm, p.site);
  p.fw = FOUNDRY_TRY_CTX(virt::resolve_firmware(p.vm), "{}", a.file);
  if (p.vm.cloud_init) {
    auto epoch = FOUNDRY_TRY(cloudinit::source_date_epoch_from_env());
    cloudinit::GenerateOptions o;
    o.source_date_epoch = epoch;
    // cloud-init before 25.3 (Debian 12 has 22.4) cannot render the seed's
    // `to: default` for ENI/networkd/sysconfig; 0.0.0.0/0 works everywhere.
    o.default_route_style =
        a.default_route == "keyword" ? cloudinit::DefaultRouteStyle::Keyword : cloudinit::DefaultRouteStyle::ZeroCidr;
    p.docs = FOUNDRY_TRY_CTX(cloudinit::generate(p.vm, o), "generate cloud-init for VM '{}'", p.vm.name);
    auto bytes = FOUNDRY_TRY_CTX(cloudinit::build_cloud_init_iso(p.docs, epoch.value_or(0)),
                                 "build cloud-init ISO for VM '{}'", p.vm.name);
    p.iso.assign(bytes.begin(), bytes.end());
  }
  return p;
}

Status vm_create_dry_run(const CreateArgs& a, const Globals& g) {
  auto p = FOUNDRY_TRY(prepare(a, g));
  std::string dir = a.output_dir.empty() ? p.vm.name + "-dry-run" : a.output_dir;
  // Without a hypervisor the base image stays as written in the file.
  auto image = p.vm.boot_disk.image;
  auto plan = FOUNDRY_TRY(virt::plan_vm(p.vm, p.fw, image, std::string(config::to_string(p.vm.boot_disk.format))));
  plan.cloudinit_iso = p.iso;
  FOUNDRY_TRY(make_dirs(dir));
  auto write = [&](const std::string& name, const std::string& data) -> Status {
    return write_file_atomic(dir + "/" + name, data);
  };
  FOUNDRY_TRY(write("domain.xml", plan.domain_xml));
  auto files = nlohmann::json::array({"domain.xml"});
  if (p.vm.cloud_init) {
    FOUNDRY_TRY(write("user-data", p.docs.user_data));
    FOUNDRY_TRY(write("meta-data", p.docs.meta_data));
    FOUNDRY_TRY(write("network-config", p.docs.network_config));
    FOUNDRY_TRY(write("cloudinit.iso", p.iso));
    for (auto f : {"user-data", "meta-data", "network-config", "cloudinit.iso"}) files.push_back(f);
  }
  auto volumes = nlohmann::json::array();
  for (const auto& v : plan.volumes)
    volumes.push_back({{"name", v.name},
                       {"pool", p.vm.storage_pool},
                       {"format", std::string(virt::to_string(v.format))},
                       {"capacity_bytes", v.capacity},
                       {"backing", v.backing ? v.backing->path : ""}});
  if (p.vm.cloud_init)
    volumes.push_back({{"name", virt::VolumeName::cloudinit(p.vm.name)}, {"pool", p.vm.storage_pool},
                       {"format", "raw"}, {"capacity_bytes", p.iso.size()}, {"backing", ""}});
  nlohmann::json summary = {{"name", p.vm.name},     {"output_dir", dir},       {"files", files},
                            {"volumes", volumes},    {"instance_id", p.docs.instance_id},
                            {"uri", p.site.uri}};
  FOUNDRY_TRY(write("plan.json", summary.dump(2) + "\n"));
  if (g.output == OutputFormat::Json) {
    print_json(summary);
    return ok();
  }
  std::printf("Dry run for VM '%s' (nothing sent to %s)\n", p.vm.name.c_str(), p.site.uri.c_str());
  step(g, "Configuration validated");
  if (p.vm.cloud_init) step(g, fmt::format("Cloud-init ISO generated ({} bytes)", p.iso.size()));
  step(g, "Domain XML generated");
  std::printf("Wrote %s/{%s}\n", dir.c_str(),
              p.vm.cloud_init ? "domain.xml,user-data,meta-data,network-config,cloudinit.iso,plan.json"
                              : "domain.xml,plan.json");
  return ok();
}

Status vm_create(const CreateArgs& a, const Globals& g) {
  if (a.dry_run) return vm_create_dry_run(a, g);
  auto p = FOUNDRY_TRY(prepare(a, g));
  std::printf("Creating VM '%s'...\n", p.vm.name.c_str());
  std::fflush(stdout);
  if (auto w = virt::kvm_access_warning(p.site.uri, virt::stat_kvm())) std::fprintf(stderr, "warning: %s\n", w->c_str());
  auto hv = FOUNDRY_TRY(open_hypervisor(g));
  std::string base_path, base_format;
  if (!p.vm.boot_disk.empty) {
    auto base = FOUNDRY_TRY(virt::resolve_base_image(*hv, p.vm, p.site.image_pool));
    base_path = base.path;
    base_format = base.format;
  }
  auto plan = FOUNDRY_TRY(virt::plan_vm(p.vm, p.fw, base_path, base_format));
  plan.cloudinit_iso = p.iso;
  virt::CreateOptions o;
  o.image_pool = p.site.image_pool;
  o.start = !a.no_start;
  o.verify_bridges = !a.skip_bridge_check;
  o.on_step = [&g](const std::string& s) { step(g, s); };
  FOUNDRY_TRY(virt::create_vm(*hv, plan, o));
  std::printf("Successfully created VM '%s'\n", p.vm.name.c_str());
  return ok();
}

Status vm_destroy(const DestroyArgs& a, const Globals& g) {
  auto site = FOUNDRY_TRY(site_config(g, a.pool, ""));
  auto hv = FOUNDRY_TRY(open_hypervisor(g));
  std::printf("Destroying VM '%s'...\n", a.name.c_str());
  std::fflush(stdout);
  virt::DestroyOptions o;
  o.shutdown_timeout_s = a.timeout;
  o.on_step = [&g](const std::string& s) { step(g, s); };
  FOUNDRY_TRY(virt::destroy_vm(*hv, a.name, site.vm_pool, o));
  std::printf("Successfully destroyed VM '%s'\n", a.name.c_str());
  return ok();
}

std::string memory_text(uint64_t kib) {
  if (kib % (1024 * 1024) == 0) return fmt::format("{} GiB", kib / (1024 * 1024));
  return fmt::format("{} MiB", kib / 1024);
}

std::string address_only(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

nlohmann::json vm_json(const virt::VmSummary& v) {
  return {{"name", v.name},         {"state", std::string(virt::to_string(v.state))},
          {"vcpus", v.vcpus},       {"memory_kib", v.memory_kib},
          {"addresses", v.addresses}, {"pool", v.pool},
          {"autostart", v.autostart}, {"uuid", v.uuid}};
}

Status vm_list(const ListArgs& a, const Globals& g) {
  auto hv = FOUNDRY_TRY(open_hypervisor(g));
  auto vms = FOUNDRY_TRY(virt::list_vms(*hv, a.all));
  if (g.output == OutputFormat::Json) {
    auto arr = nlohmann::json::array();
    for (const auto& v : vms) arr.push_back(vm_json(v));
    print_json(arr);
    return ok();
  }
  Table t({"NAME", "STATE", "VCPUS", "MEMORY", "IP ADDRESS"});
  for (const auto& v : vms)
    t.add({v.name, std::string(virt::to_string(v.state)), std::to_string(v.vcpus), memory_text(v.memory_kib),
           v.addresses.empty() ? "-" : address_only(v.addresses.front())});
  t.print();
  return ok();
}

Status vm_info(const std::string& name, const Globals& g) {
  auto hv = FOUNDRY_TRY(open_hypervisor(g));
  if (!FOUNDRY_TRY(hv->domain_exists(name)))
    return fail(Error(ErrorKind::Operation, fmt::format("VM '{}' not found", name)).with_hint("see foundry vm list --all"));
  auto info = FOUNDRY_TRY(hv->domain_info(name));
  auto s = virt::summarize(info);
  if (g.output == OutputFormat::Json) {
    print_json(vm_json(s));
    return ok();
  }
  std::vector<std::vector<std::string>> rows = {
      {"Name:", s.name},
      {"UUID:", s.uuid},
      {"State:", std::string(virt::to_string(s.state))},
      {"VCPUs:", std::to_string(s.vcpus)},
      {"Memory:", memory_text(s.memory_kib)},
      {"Autostart:", s.autostart ? "yes" : "no"},
      {"Pool:", s.pool.empty() ? "-" : s.pool},
  };
  for (const auto& a : s.addresses) rows.push_back({"Address:", a});
  for (const auto& r : rows) std::printf("%-12s %s\n", r[0].c_str(), r[1].c_str());
  return ok();
}

void add_create(CLI::App* parent, const char* name, Globals& g, bool hidden) {
  static CreateArgs a;
  auto* c = parent->add_subcommand(name, "Create a VM from a YAML file");
  if (hidden) c->group("");
  c->footer(R"(
Runs the seed's workflow: validate the file, check the name is free, the base
image is in the image pool and every bridge exists; create the boot disk
(qcow2 overlay on the base image), data disks and the cloud-init ISO in the VM
pool; define the domain, set autostart, start it. If any step fails,
everything this run made is removed again.

--dry-run touches no hypervisor: it writes domain.xml, user-data, meta-data,
network-config, cloudinit.iso and plan.json into --output-dir.

Examples:
  foundry vm create examples/simple-vm.yaml
  foundry vm create web.yaml --pool foundry-ssd
  foundry vm create web.yaml --dry-run --output-dir /tmp/web)");
  auto* file = c->add_option("FILE", a.file, "VM file");
  if (!hidden) file->required();
  c->add_flag("--dry-run", a.dry_run, "Generate everything, touch no hypervisor");
  c->add_option("--output-dir", a.output_dir, "Where --dry-run writes (default: NAME-dry-run)");
  c->add_option("--pool", a.pool, "VM storage pool (beats storage_pool in the file)");
  c->add_option("--image-pool", a.image_pool, "Pool holding base images (default foundry-images)");
  c->add_flag("--no-start", a.no_start, "Define the VM but do not start it");
  c->add_flag("--skip-bridge-check", a.skip_bridge_check, "Do not check that bridges exist (remote hypervisors)");
  c->add_option("--default-route", a.default_route,
                "How network-config writes a default route: cidr (to: 0.0.0.0/0, every cloud-init) or keyword "
                "(to: default, as seed 001; needs netplan or cloud-init >= 25.3)")
      ->check(CLI::IsMember({"cidr", "keyword"}))
      ->capture_default_str();
  if (hidden) {
    // `foundry create --bundle-path P --container-id ID` (seed 002) creates a
    // container through foundryd; `foundry create FILE` (seed 001) a VM.
    auto* b = c->add_option("--bundle-path", a.bundle_path, "OCI bundle (container create, seed 002)");
    auto* i = c->add_option("--container-id", a.container_id, "Container id (container create, seed 002)");
    b->needs(i);
    i->needs(b);
  }
  set_action(c, [&g]() -> Status {
    if (!a.bundle_path.empty()) return container_create(a.bundle_path, a.container_id, g);
    if (a.file.empty())
      return fail(Error(ErrorKind::Config, "create: give a VM file, or --bundle-path and --container-id")
                      .with_hint("foundry create vm.yaml | foundry create --bundle-path DIR --container-id ID"));
    return vm_create(a, g);
  });
}

void add_destroy(CLI::App* parent, const char* name, Globals& g, bool hidden) {
  static DestroyArgs a;
  auto* c = parent->add_subcommand(name, "Stop a VM and remove it with its storage");
  if (hidden) c->group("");
  c->footer(R"(
Asks the guest to shut down, waits --timeout seconds, forces it off, undefines
the domain (with its NVRAM) and deletes its boot disk, data disks and
cloud-init ISO. A half-made VM (domain gone, volumes left) is cleaned too.

Examples:
  foundry vm destroy my-vm
  foundry vm destroy my-vm --timeout 30)");
  c->add_option("NAME", a.name, "VM name")->required();
  c->add_option("--timeout", a.timeout, "Seconds to wait for a graceful shutdown")->capture_default_str();
  c->add_option("--pool", a.pool, "Pool to look in for leftover volumes");
  set_action(c, [&g] { return vm_destroy(a, g); });
}

void add_list(CLI::App* parent, const char* name, Globals& g, bool hidden) {
  static ListArgs a;
  auto* c = parent->add_subcommand(name, "List VMs");
  if (hidden) c->group("");
  c->footer(R"(
Shows running VMs (with --all also stopped ones): name, state, vCPUs, memory
and the first address from the VM file. -o json prints every field.

Examples:
  foundry vm list --all
  foundry -o json vm list)");
  c->add_flag("-a,--all", a.all, "Include stopped VMs");
  set_action(c, [&g] { return vm_list(a, g); });
}

void register_vm(CLI::App& app, Globals& g) {
  auto* vm = app.add_subcommand("vm", "Virtual machines from YAML files (libvirt)");
  vm->require_subcommand(1);

  auto* validate = vm->add_subcommand("validate", "Check VM files without touching libvirt");
  validate->footer(R"(
Loads each FILE, applies defaults and normalization, and checks every rule
(see docs/config.md). Every problem is printed as FILE:LINE:COLUMN: FIELD:
MESSAGE (hint: FIX). Exit 0 when all files are valid, 2 when any breaks a
rule, 1 when a file cannot be read.

Examples:
  foundry vm validate examples/simple-vm.yaml
  foundry -o json vm validate vms/*.yaml)");
  static std::vector<std::string> files;
  validate->add_option("FILE", files, "VM files")->required();
  set_action(validate, [&g] { return vm_validate(files, g); });

  add_create(vm, "create", g, false);
  add_destroy(vm, "destroy", g, false);
  add_list(vm, "list", g, false);

  auto* info = vm->add_subcommand("info", "Show one VM");
  info->footer(R"(
Examples:
  foundry vm info my-vm
  foundry -o json vm info my-vm)");
  static std::string info_name;
  info->add_option("NAME", info_name, "VM name")->required();
  set_action(info, [&g] { return vm_info(info_name, g); });

  // Seed 001's spellings.
  add_create(&app, "create", g, true);
  add_destroy(&app, "destroy", g, true);
  add_list(&app, "list", g, true);
}

const CommandGroup reg(10, register_vm);

}  // namespace

}  // namespace foundry::cli
