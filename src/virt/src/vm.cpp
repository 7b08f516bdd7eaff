#include "foundry/virt/vm.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include <pugixml.hpp>

#include "foundry/common/scope_exit.h"
#include "foundry/virt/image.h"

namespace foundry::virt {

namespace {

constexpr uint64_t kGiB = 1024ull * 1024 * 1024;

void step(const std::function<void(const std::string&)>& cb, const std::string& what) {
  if (cb) cb(what);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::vector<std::string> closest_names(const std::string& want, const std::vector<std::string>& have, size_t max) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& h : have) {
    size_t d = edit_distance(want, h);
    // Only suggest names that are plausibly a typo of what was asked for.
    if (d <= std::max<size_t>(2, want.size() / 2)) scored.emplace_back(d, h);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < max; ++i) out.push_back(scored[i].second);
  return out;
}

Result<VmPlan> plan_vm(const config::VmConfig& vm, const Firmware& fw, const std::string& base_image_path,
                       const std::string& base_image_format) {
  VmPlan p;
  p.vm = vm;
  p.firmware = fw;
  VolumeSpec boot;
  boot.name = VolumeName::boot(vm.name);
  boot.capacity = vm.boot_disk.size_gb * kGiB;
  boot.format = VolumeFormat::Qcow2;
  if (!vm.boot_disk.empty) {
    if (base_image_path.empty())
      return fail(ErrorKind::Storage, "boot disk of VM '{}' needs a base image, none was resolved", vm.name);
    std::string fmt = base_image_format.empty() ? std::string(config::to_string(vm.boot_disk.format))
                                                : base_image_format;
    boot.backing = BackingStore{base_image_path, fmt == "raw" ? VolumeFormat::Raw : VolumeFormat::Qcow2};
  }
  p.volumes.push_back(boot);
  for (const auto& d : vm.data_disks) {
    VolumeSpec v;
    v.name = VolumeName::data(vm.name, d.device);
    v.capacity = d.size_gb * kGiB;
    v.format = VolumeFormat::Qcow2;
    p.volumes.push_back(v);
  }
  DomainOptions o;
  o.firmware = fw;
  o.has_cloudinit_iso = vm.cloud_init.has_value();
  p.domain_xml = domain_xml(vm, o);
  return p;
}

Result<VolumeDetails> resolve_base_image(Hypervisor& hv, const config::VmConfig& vm, const std::string& image_pool) {
  const auto& image = vm.boot_disk.image;
  if (image.find('/') == std::string::npos) {
    std::optional<VolumeDetails> v;
    // Same rule as ImageStore::resolve: `foundry image import` requires a
    // .qcow2/.raw name, so `image: debian` means debian, debian.qcow2 or
    // debian.raw; a name with an extension means exactly that volume.
    if (FOUNDRY_TRY_CTX(hv.pool_exists(image_pool), "look up base image '{}'", image))
      for (const auto& cand : {image, image + ".qcow2", image + ".raw"}) {
        v = FOUNDRY_TRY_CTX(hv.find_volume(image_pool, cand), "look up base image '{}'", cand);
        if (v || format_from_extension(image)) break;
      }
    if (!v) {
      const std::string named = format_from_extension(image) ? image : image + ".qcow2";
      return fail(Error(ErrorKind::Storage,
                        fmt::format("base image '{}' not found in pool {}", image, image_pool))
                      .with_errno(ENOENT)
                      .with_hint(fmt::format("import it: foundry image import FILE --name {}  (see foundry image list)",
                                             named)));
    }
    return *v;
  }
  auto v = FOUNDRY_TRY_CTX(hv.find_volume_by_path(image), "look up base image {}", image);
  if (!v)
    return fail(Error(ErrorKind::Storage, fmt::format("base image {} is not a volume in any libvirt pool", image))
                    .with_errno(ENOENT)
                    .with_hint("import it: foundry image import " + image + " --name NAME, then set image: NAME"));
  return *v;
}

Status create_vm(Hypervisor& hv, const VmPlan& plan, const CreateOptions& opts) {
  const auto& vm = plan.vm;
  const auto& pool = vm.storage_pool;
  auto ctx = [&](const char* what) { return fmt::format("create VM '{}': {}", vm.name, what); };

  // Runtime checks first: nothing is made until they all pass.
  if (FOUNDRY_TRY_CTX(hv.domain_exists(vm.name), "{}", ctx("check name")))
    return fail(Error(ErrorKind::Validation, fmt::format("a domain named '{}' already exists", vm.name))
                    .with_hint(fmt::format("pick another name, or remove it first: foundry vm destroy {}", vm.name)));
  if (opts.verify_bridges) {
    auto bridges = FOUNDRY_TRY_CTX(hv.list_bridges(), "{}", ctx("list bridges"));
    for (size_t i = 0; i < vm.network_interfaces.size(); ++i) {
      const auto& br = vm.network_interfaces[i].bridge;
      if (std::find(bridges.begin(), bridges.end(), br) != bridges.end()) continue;
      auto near = closest_names(br, bridges);
      std::string hint = near.empty() ? "" : "did you mean " + join(near, " or ") + "? ";
      hint += bridges.empty() ? "this host has no bridges; create one (ip link add NAME type bridge)"
                              : "existing bridges: " + join(bridges);
      return fail(Error(ErrorKind::Validation,
                        fmt::format("network_interfaces[{}].bridge: bridge '{}' does not exist on the hypervisor", i, br))
                      .with_hint(hint));
    }
  }
  step(opts.on_step, "Configuration validated");

  UndoList undo;
  if (FOUNDRY_TRY_CTX(hv.ensure_pool(pool), "{}", ctx(("prepare pool " + pool).c_str())))
    undo.push("pool " + pool, [&hv, pool] { (void)hv.delete_empty_pool(pool); });
  uint64_t total_data = 0;
  std::vector<std::string> names;
  for (const auto& v : plan.volumes) names.push_back(v.name);
  if (vm.cloud_init) names.push_back(VolumeName::cloudinit(vm.name));
  for (const auto& n : names) {
    if (FOUNDRY_TRY_CTX(hv.find_volume(pool, n), "{}", ctx("check volumes")))
      return fail(Error(ErrorKind::Storage, fmt::format("volume {} already exists in pool {}", n, pool))
                      .with_hint(fmt::format("a previous VM '{}' left it behind: foundry vm destroy {} removes it",
                                             vm.name, vm.name)));
  }
  for (const auto& v : plan.volumes) {
    FOUNDRY_TRY_CTX(hv.create_volume(pool, v), "{}", ctx(("create volume " + v.name).c_str()));
    undo.push("volume " + v.name, [&hv, pool, name = v.name] { (void)hv.delete_volume(pool, name); });
    if (&v != &plan.volumes.front()) total_data += v.capacity / kGiB;
  }
  step(opts.on_step, total_data > 0 ? fmt::format("Storage created ({} GB boot + {} GB data)", vm.boot_disk.size_gb,
                                                  total_data)
                                    : fmt::format("Storage created ({} GB boot)", vm.boot_disk.size_gb));

  if (vm.cloud_init) {
    auto iso = VolumeName::cloudinit(vm.name);
    FOUNDRY_TRY_CTX(hv.create_volume_from_bytes(pool, iso, plan.cloudinit_iso), "{}",
                    ctx(("upload cloud-init ISO as volume " + iso).c_str()));
    undo.push("volume " + iso, [&hv, pool, iso] { (void)hv.delete_volume(pool, iso); });
    step(opts.on_step, "Cloud-init ISO generated");
  }

  FOUNDRY_TRY_CTX(hv.define_domain(plan.domain_xml), "{}", ctx("define domain"));
  undo.push("domain " + vm.name, [&hv, name = vm.name] {
    (void)hv.destroy_domain(name);
    (void)hv.undefine_domain(name);
  });
  step(opts.on_step, "Domain defined");

  FOUNDRY_TRY_CTX(hv.set_autostart(vm.name, vm.autostart), "{}", ctx("set autostart"));
  if (opts.start) {
    FOUNDRY_TRY_CTX(hv.start_domain(vm.name), "{}", ctx("start domain"));
    step(opts.on_step, "VM started");
  }
  undo.commit();
  return ok();
}

Status destroy_vm(Hypervisor& hv, const std::string& name, const std::string& pool_hint, const DestroyOptions& opts) {
  auto ctx = [&](const std::string& what) { return fmt::format("destroy VM '{}': {}", name, what); };
  std::string pool = pool_hint;
  std::vector<std::string> volumes;
  bool found_any = false;

  if (FOUNDRY_TRY_CTX(hv.domain_exists(name), "{}", ctx("look up domain"))) {
    found_any = true;
    auto info = FOUNDRY_TRY_CTX(hv.domain_info(name), "{}", ctx("read domain"));
    auto sum = summarize(info);
    if (!sum.pool.empty()) pool = sum.pool;
    // The disks the domain really has: covers data disks we would not know
    // from the naming convention alone.
    pugi::xml_document doc;
    if (doc.load_string(info.xml.c_str())) {
      for (auto d : doc.child("domain").child("devices").children("disk")) {
        auto src = d.child("source");
        std::string vol = src.attribute("volume").value();
        if (!vol.empty() && std::string(src.attribute("pool").value()) == pool) volumes.push_back(vol);
      }
    }
    if (info.state == DomainState::Running || info.state == DomainState::Paused) {
      bool stopped = false;
      if (info.state == DomainState::Running && opts.shutdown_timeout_s > 0 && hv.shutdown_domain(name)) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opts.shutdown_timeout_s);
        while (std::chrono::steady_clock::now() < deadline) {
          auto i = hv.domain_info(name);
          if (i && i->state == DomainState::ShutOff) {
            stopped = true;
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      }
      if (!stopped) FOUNDRY_TRY_CTX(hv.destroy_domain(name), "{}", ctx("force off"));
      step(opts.on_step, "VM stopped");
    }
    FOUNDRY_TRY_CTX(hv.undefine_domain(name), "{}", ctx("undefine"));
    step(opts.on_step, "Domain undefined");
  }

  // Half-made VMs: also look for volumes by the naming convention.
  if (pool.empty()) pool = "foundry-vms";
  for (auto v : {VolumeName::boot(name), VolumeName::cloudinit(name)})
    if (std::find(volumes.begin(), volumes.end(), v) == volumes.end()) volumes.push_back(v);
  size_t removed = 0;
  for (const auto& v : volumes) {
    auto found = hv.find_volume(pool, v);
    if (!found || !*found) continue;
    FOUNDRY_TRY_CTX(hv.delete_volume(pool, v), "{}", ctx("delete volume " + v));
    ++removed;
  }
  if (removed > 0) {
    found_any = true;
    step(opts.on_step, fmt::format("Storage removed ({} volume{})", removed, removed == 1 ? "" : "s"));
  }
  if (!found_any)
    return fail(Error(ErrorKind::Operation, fmt::format("VM '{}' not found (no domain, no volumes in pool {})", name, pool))
                    .with_errno(ENOENT)
                    .with_hint("see foundry vm list --all"));
  return ok();
}

VmSummary summarize(const DomainFacts& d) {
  VmSummary s;
  s.name = d.name;
  s.state = d.state;
  s.vcpus = d.vcpus;
  s.memory_kib = d.memory_kib;
  s.autostart = d.autostart;
  s.uuid = d.uuid;
  pugi::xml_document doc;
  if (!doc.load_string(d.xml.c_str())) return s;
  // libvirt keeps the element but may rename the prefix; match by namespace.
  for (auto m : doc.child("domain").child("metadata").children()) {
    bool ours = false;
    for (auto a : m.attributes())
      if (std::string_view(a.name()).rfind("xmlns", 0) == 0 && std::string_view(a.value()) == kMetadataNamespace)
        ours = true;
    if (!ours) continue;
    std::string prefix;
    std::string_view n = m.name();
    if (auto colon = n.find(':'); colon != std::string_view::npos) prefix = std::string(n.substr(0, colon + 1));
    s.pool = m.child_value((prefix + "pool").c_str());
    for (auto i : m.children((prefix + "interface").c_str())) s.addresses.push_back(i.attribute("ip").value());
  }
  return s;
}

Result<std::vector<VmSummary>> list_vms(Hypervisor& hv, bool include_inactive) {
  auto doms = FOUNDRY_TRY_CTX(hv.list_domains(include_inactive), "list VMs");
  std::vector<VmSummary> out;
  for (const auto& d : doms) out.push_back(summarize(d));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace foundry::virt
