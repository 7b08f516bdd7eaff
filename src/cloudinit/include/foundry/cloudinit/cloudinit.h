// cloud-init NoCloud documents for a VM (seed 001, "Cloud-init Generation").
//
// generate() turns a validated VmConfig into the three files a NoCloud
// datasource reads: user-data (#cloud-config), meta-data and network-config
// (version 2). The text is written by hand, not by a YAML emitter, so that the
// layout is exactly the seed's and stays byte-stable across library versions;
// every scalar that could be misread goes through yaml_scalar().
//
// The same VmConfig and options always give the same bytes. The instance-id
// (which tells cloud-init whether this is a new instance and must run again)
// is "{name}-{SOURCE_DATE_EPOCH}" when an epoch is given, else
// "{name}-{N}" where N is a 10-digit number derived from a hash of the
// documents' content, so any change of the config yields a new instance-id.
// See docs/cloudinit.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "foundry/common/error.h"
#include "foundry/config/vm_config.h"

namespace foundry::cloudinit {

// How a default route is written in network-config.
enum class DefaultRouteStyle {
  // `to: default`, as the seed shows. Netplan understands it; cloud-init
  // without upstream PR #6391 (merged August 2025; Debian 12 ships 22.4)
  // cannot turn it into ENI, networkd or sysconfig files, the renderers of
  // Debian and Fedora guests. See docs/cloudinit.md.
  Keyword,
  // `to: "0.0.0.0/0"`: the same route, understood by those renderers too.
  ZeroCidr,
};

struct GenerateOptions {
  // SOURCE_DATE_EPOCH; nullopt = content-derived instance-id.
  std::optional<int64_t> source_date_epoch;
  DefaultRouteStyle default_route_style = DefaultRouteStyle::Keyword;
};

struct Documents {
  std::string instance_id;
  std::string user_data;
  std::string meta_data;
  std::string network_config;
};

// Reads SOURCE_DATE_EPOCH from the environment: nullopt when unset or empty,
// a Config error when it is not a decimal number of seconds >= 0.
Result<std::optional<int64_t>> source_date_epoch_from_env();

// The three documents for a VM. Fails with a Validation error when the VM has
// no cloud_init section, or when a value cannot be carried by the documents
// (a newline in the password hash, text that is not UTF-8).
Result<Documents> generate(const config::VmConfig& vm, const GenerateOptions& opts = {});

// The hostname cloud-init sets: cloud_init.hostname, else the first label of
// cloud_init.fqdn, else the VM name.
std::string effective_hostname(const config::VmConfig& vm);

// The 10-digit decimal used in a content-derived instance-id: FNV-1a (64 bit)
// over the given text, reduced modulo 10^10 and zero-padded.
std::string content_id_digits(std::string_view text);

// A YAML scalar for `s`: the text itself when a YAML 1.1 or 1.2 parser reads
// it back as that same string in block and flow context; else a double-quoted
// scalar with escapes. Callers must pass valid UTF-8.
std::string yaml_scalar(std::string_view s);

// A double-quoted YAML scalar, always.
std::string yaml_quoted(std::string_view s);

}  // namespace foundry::cloudinit
