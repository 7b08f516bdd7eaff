// libvirt domain XML for a VM file (seed 001, "Libvirt Domain XML").
//
// Pure: the same VmConfig and DomainOptions give the same bytes. Host lookups
// (which OVMF file exists) happen in resolve_firmware(), not here.
#pragma once

#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/vm_config.h"
#include "foundry/virt/types.h"

namespace foundry::virt {

// UEFI firmware files. Empty code path = BIOS boot (SeaBIOS).
struct Firmware {
  std::string code;           // read-only pflash (OVMF_CODE*.fd)
  std::string vars_template;  // NVRAM template (OVMF_VARS*.fd); may be empty
};

// Finds OVMF on this host (or checks the configured path). BIOS needs nothing.
// Errors are Validation with a hint (install ovmf, set firmware_path, or use
// firmware: bios).
Result<Firmware> resolve_firmware(const config::VmConfig& vm);
// Same, with the candidate list injectable for tests.
Result<Firmware> resolve_firmware(const config::VmConfig& vm, const std::vector<Firmware>& candidates);

// The XML namespace of Foundry's <metadata> element, which records what
// destroy and list need without re-reading the VM file.
inline constexpr const char* kMetadataNamespace = "urn:foundry:vm:1";

struct DomainOptions {
  Firmware firmware;        // from resolve_firmware()
  bool has_cloudinit_iso = true;
};

std::string domain_xml(const config::VmConfig& vm, const DomainOptions& opts);

}  // namespace foundry::virt
