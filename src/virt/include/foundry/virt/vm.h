// VM lifecycle (seed 001, "Core Workflows"): create with rollback, destroy
// that also cleans half-made VMs, list and info.
//
// The orchestration talks to the hypervisor through the narrow Hypervisor
// interface below. The real implementation sits on libvirt
// (LibvirtHypervisor); unit tests use a fake, and integration tests wrap the
// real one to inject a failure at any step.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/vm_config.h"
#include "foundry/virt/domain_xml.h"
#include "foundry/virt/types.h"

namespace foundry::virt {

// What the orchestration reads about a domain.
struct DomainFacts {
  std::string name;
  std::string uuid;
  DomainState state = DomainState::NoState;
  unsigned vcpus = 0;
  uint64_t memory_kib = 0;
  bool autostart = false;
  std::string xml;  // current definition, for metadata and devices
};

// What Foundry needs from a hypervisor. Every call names the object it acts
// on in its error; "not found" cases return Error kind Operation/Storage with
// errno ENOENT so callers can tell them apart.
class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // Domains.
  virtual Result<bool> domain_exists(const std::string& name) = 0;
  virtual Result<DomainFacts> domain_info(const std::string& name) = 0;
  virtual Result<std::vector<DomainFacts>> list_domains(bool include_inactive) = 0;
  virtual Status define_domain(const std::string& xml) = 0;
  virtual Status undefine_domain(const std::string& name) = 0;  // incl. NVRAM
  virtual Status set_autostart(const std::string& name, bool on) = 0;
  virtual Status start_domain(const std::string& name) = 0;
  virtual Status shutdown_domain(const std::string& name) = 0;  // ACPI request
  virtual Status destroy_domain(const std::string& name) = 0;   // power off now

  // Storage. ensure_pool creates a Foundry default pool on first use and
  // says whether it did; other pools must exist. delete_empty_pool removes a
  // pool this run made (undo of ensure_pool) when nothing is left in it.
  virtual Result<bool> pool_exists(const std::string& pool) = 0;
  virtual Result<bool> ensure_pool(const std::string& pool) = 0;
  virtual Status delete_empty_pool(const std::string& pool) = 0;
  virtual Result<std::optional<VolumeDetails>> find_volume(const std::string& pool, const std::string& name) = 0;
  // The volume whose target path is `path`, in any pool.
  virtual Result<std::optional<VolumeDetails>> find_volume_by_path(const std::string& path) = 0;
  virtual Status create_volume(const std::string& pool, const VolumeSpec& spec) = 0;
  // A raw volume holding exactly `bytes` (the cloud-init ISO), streamed to the
  // hypervisor so remote ones work; nothing is left if the upload fails.
  virtual Status create_volume_from_bytes(const std::string& pool, const std::string& name,
                                          const std::string& bytes) = 0;
  virtual Status delete_volume(const std::string& pool, const std::string& name) = 0;

  // Host networking: names of bridges a VM can attach to.
  virtual Result<std::vector<std::string>> list_bridges() = 0;
};

// Everything `create` will make, derived from the file before anything is
// touched: what --dry-run writes out and what the orchestration executes.
struct VmPlan {
  config::VmConfig vm;
  Firmware firmware;
  std::string image_pool = "foundry-images";
  std::vector<VolumeSpec> volumes;  // boot first, then data disks
  std::string cloudinit_iso;        // ISO bytes; empty when no cloud_init
  std::string domain_xml;
};

struct CreateOptions {
  std::string image_pool = "foundry-images";
  bool verify_bridges = true;
  bool start = true;
  std::function<void(const std::string&)> on_step;  // "Storage created (...)"
};

struct DestroyOptions {
  int shutdown_timeout_s = 5;
  std::function<void(const std::string&)> on_step;
};

// Pure: derives volumes, ISO and XML. The base image path is resolved by the
// caller (resolve_base_image) so this stays free of I/O.
Result<VmPlan> plan_vm(const config::VmConfig& vm, const Firmware& fw, const std::string& base_image_path,
                       const std::string& base_image_format);

// Finds the base image: an image name is a volume in the image pool; a path
// must be a volume libvirt knows (any pool). Errors say how to import it.
Result<VolumeDetails> resolve_base_image(Hypervisor& hv, const config::VmConfig& vm, const std::string& image_pool);

// The seed's nine steps. On any failure everything this call made is removed
// (newest first) and the error says which step failed.
Status create_vm(Hypervisor& hv, const VmPlan& plan, const CreateOptions& opts);

// Graceful shutdown, wait, force off, undefine, delete the VM's volumes.
// Works on half-made VMs: a missing domain or volume is skipped, not an error,
// as long as something of the VM was found.
Status destroy_vm(Hypervisor& hv, const std::string& name, const std::string& pool_hint,
                  const DestroyOptions& opts);

struct VmSummary {
  std::string name;
  DomainState state = DomainState::NoState;
  unsigned vcpus = 0;
  uint64_t memory_kib = 0;
  std::vector<std::string> addresses;  // from Foundry metadata (CIDR form)
  std::string pool;                     // from Foundry metadata; empty if not Foundry's
  bool autostart = false;
  std::string uuid;
};

Result<std::vector<VmSummary>> list_vms(Hypervisor& hv, bool include_inactive);
// Reads Foundry's <metadata> from a domain's XML (pool, addresses).
VmSummary summarize(const DomainFacts& d);

// "did you mean" for bridges: the existing names closest to `want`.
std::vector<std::string> closest_names(const std::string& want, const std::vector<std::string>& have, size_t max = 3);

}  // namespace foundry::virt
