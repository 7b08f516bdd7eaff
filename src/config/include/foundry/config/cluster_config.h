// The cluster file (seed 000, "Build & Target Model"): what `foundry platform
// build` manufactures, as typed data.
//
// load_cluster_file() reads it with the same care as the VM file: every
// problem at once, each with file:line:column, the field path and a hint;
// unknown keys get a "did you mean". A ClusterConfig that came out of it is
// valid on its own; whether its packages exist in the apt sources is checked
// by the platform library (it needs the build machine's package indices).
//
// Deployment and configuration are kept apart: everything above
// `configuration` is manufactured into the images; `configuration` (workloads
// and settings) is applied after boot and is never baked into an image.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/net/ip.h"

namespace foundry::config {

// control: runs the cluster's control services (and workloads when the
// cluster is small); worker: runs workloads only.
enum class NodeRole { Control, Worker };
std::string_view to_string(NodeRole r);

// Where the images are meant to run; decides which artifacts a build makes
// beyond the always-built ISO, recovery key and manifest.
//   qemu, libvirt, proxmox -> qcow2     raw, aws, bare-metal -> raw
//   azure -> vhd (fixed, vpc)           firecracker -> the Firecracker kit
enum class Target { Qemu, Libvirt, Proxmox, Raw, BareMetal, Aws, Azure, Firecracker };
std::string_view to_string(Target t);
std::span<const std::string_view> target_names();

// Where a value was written, for messages produced after loading (the
// package availability check).
struct SourcePos {
  int line = 0;
  int column = 0;
};

struct PackageRef {
  std::string name;  // validated Debian package name (optionally =version or /release)
  SourcePos pos;
};

struct ClusterNode {
  std::string name;  // lowercase host name label
  NodeRole role = NodeRole::Worker;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  uint64_t disk_gib = 0;
  net::Ipv4Cidr address;  // underlay address with prefix length
  net::Ipv4 gateway;      // underlay gateway; unset (0.0.0.0) when absent
  bool has_gateway = false;
  net::Ipv4 mesh_address;  // WireGuard address: given, or the mesh CIDR's host number index+1
  SourcePos pos;           // the node's entry
};

struct MeshConfig {
  net::Ipv4Cidr cidr;
  uint16_t port = 51820;
  std::string interface = "wg0";
};

struct OsConfig {
  std::string release = "bookworm";
  std::vector<PackageRef> packages;  // extra packages, beyond the node OS
};

struct ClusterConfig {
  std::string source_file;
  std::string name;  // lowercase
  std::vector<ClusterNode> nodes;
  MeshConfig mesh;
  OsConfig os;
  std::vector<std::string> ssh_keys;  // OpenSSH public key lines
  std::vector<Target> targets;        // unique, in file order
  // The `configuration` section as YAML text (empty when absent): kept for
  // the recovery key and `cluster apply`, never written into an image.
  std::string configuration_yaml;

  bool has_target(Target t) const;
  const ClusterNode* node(std::string_view name) const;
};

// Kind Config when the file cannot be read; Validation for its content, with
// one Diagnostic per problem.
Result<ClusterConfig> load_cluster_file(const std::string& path);
Result<ClusterConfig> load_cluster_yaml(const std::string& text, const std::string& name_for_messages);

}  // namespace foundry::config
