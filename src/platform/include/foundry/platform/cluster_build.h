// `foundry platform build`: a cluster file becomes the node OS image, its
// artifacts, per-node config drives and a manifest (seed 000, "Build & Target
// Model"; docs/platform.md, "Cluster builds").
//
// Stages: validate (the file, then its packages against the package index,
// before any work) -> identity (CA, node certificates, WireGuard keys) ->
// rootfs (mmdebstrap) -> node-os (Foundry binaries, node agent, cluster
// trust anchor) -> disk (GPT, ESP, ext4) -> artifacts -> config-drives ->
// manifest. Everything is written below OUT/.tmp-build-*, and moved into OUT
// only when every stage worked; manifest.json is moved last, so a directory
// with a manifest is a complete build.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/cluster_config.h"
#include "foundry/platform/apt_sources.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/identity.h"
#include "foundry/platform/progress.h"
#include "foundry/platform/rootfs.h"

namespace foundry::platform {

// kNodeReadyLine (artifacts.h): the line the node agent prints on the
// serial console once the node is up; the boot tests wait for it.

// Which of `names` (bare package names) the package index can install.
using PackageAvailability = std::function<Result<std::set<std::string>>(const std::vector<std::string>& names)>;

// The build machine's apt indices (`apt-cache policy`): a package with a
// candidate version is available. Cheap (one process, ~1 s), no network.
PackageAvailability apt_cache_availability();
// The .debs in a package cache directory (what an --offline build can use).
PackageAvailability deb_cache_availability(const std::string& cache_dir);

// Every package of the cluster file the index does not have, as one
// Validation error with a Diagnostic (file:line:col, os.packages[i]) each.
Status check_cluster_packages(const config::ClusterConfig& c, const PackageAvailability& available);

// The packages of the node OS beyond the VM base image (WireGuard tools...).
std::vector<std::string> node_os_packages();

struct ClusterBuildOptions {
  std::string cluster_file;
  std::string output_dir;
  std::string sources_file;  // --sources: deb822 or one-line; empty = the build machine's
  bool offline = false;      // packages only from cache_dir, no network
  std::string secrets_dir;   // empty = OUT/secrets
  std::string cache_dir = "/var/cache/foundry/apt";
  // The Foundry binaries put into the node OS (/usr/lib/foundry/bin); empty
  // = the running foundry and its siblings foundryd, foundry-agent.
  std::vector<std::string> binaries;
  // Timestamps and certificate validity. Default: $SOURCE_DATE_EPOCH, else
  // the cluster file's modification time (so two builds of one file agree).
  std::optional<int64_t> source_date_epoch;
  std::string etc_apt = "/etc/apt";
  // Skip the package availability check (tests with fake package sets).
  PackageAvailability availability;
  // Non-empty: the finished node OS tree is moved here (a new directory on
  // the output's file system) instead of being removed. Not an artifact;
  // for comparing the trees of two builds (diffoscope, diff -r).
  std::string keep_rootfs;
  ProgressFn progress;
};

struct ArtifactRecord {
  std::string path;  // relative to OUT
  std::string kind;  // "disk-raw", "disk-qcow2", "config-drive", ...
  uint64_t size = 0;
  std::string sha256;
};

struct ClusterBuildResult {
  std::string output_dir;
  std::vector<ArtifactRecord> artifacts;
  std::vector<InstalledPackage> packages;
  std::vector<std::string> generated_secrets;  // paths of keys made by this build
  std::chrono::milliseconds elapsed{0};
};

// Loads and checks the cluster file and its packages; builds nothing.
Result<config::ClusterConfig> validate_cluster(const std::string& path, const PackageAvailability& available);

Result<ClusterBuildResult> build_cluster(const ClusterBuildOptions& opts);

// Hex SHA-256 of a file (streamed).
Result<std::string> sha256_file(const std::string& path);

// The node agent and its unit, as written into the node OS (exposed for tests).
std::string node_agent_script();
std::string node_agent_unit();
// The cloud-init write_files a node's config drive carries: identity and
// mesh configuration (WireGuard `wg setconf` file with every other node as a
// peer). Contains private keys.
std::string node_mesh_conf(const config::ClusterConfig& c, const ClusterIdentity& id, const std::string& node);

}  // namespace foundry::platform
