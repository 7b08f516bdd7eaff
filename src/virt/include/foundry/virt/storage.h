// Storage pools and volumes (seed 001, "Storage Management").
//
// Two default pools hold everything Foundry makes: `foundry-images` (base
// images) and `foundry-vms` (VM disks and cloud-init ISOs). Both are dir
// pools under a configurable base path and are created on first use (define,
// build, start, autostart). Users add their own pools of the libvirt types
// dir, logical, netfs, zfs and rbd.
//
// Volume names are flat within a pool and follow VolumeName below, which is
// also how `storage status` and `image info` tell which VM owns a volume.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/config/foundry_config.h"
#include "foundry/virt/libvirt.h"
#include "foundry/virt/types.h"

namespace foundry::virt {

// ---------------------------------------------------------------- naming

// ---------------------------------------------------------------- configuration

// Where the default pools live. Layering (flag > environment > config file >
// these defaults) is config::resolve_config's; from() takes its result.
struct StorageConfig {
  static StorageConfig from(const config::FoundryConfig& site) {
    return StorageConfig{site.image_pool, site.vm_pool, site.storage_path};
  }

  static constexpr const char* kDefaultImagePool = "foundry-images";
  static constexpr const char* kDefaultVmPool = "foundry-vms";
  static constexpr const char* kDefaultBasePath = "/var/lib/libvirt/images/foundry";

  std::string image_pool = kDefaultImagePool;
  std::string vm_pool = kDefaultVmPool;
  std::string base_path = kDefaultBasePath;  // pools at {base}/images and {base}/vms

  std::string image_pool_path() const { return base_path + "/images"; }
  std::string vm_pool_path() const { return base_path + "/vms"; }
};

// ---------------------------------------------------------------- pool XML

enum class PoolType { Dir, Logical, Netfs, Zfs, Rbd };
std::string_view to_string(PoolType t);
// Accepts dir, logical (alias lvm), netfs (alias nfs), zfs, rbd (alias ceph).
Result<PoolType> parse_pool_type(std::string_view s);

struct PoolHost {
  std::string name;
  int port = 0;  // 0 = the protocol's default
};

// Everything `pool add` can say about a pool. Which fields a type needs:
//   dir      path
//   logical  source_name (volume group), optional source_devices (PVs), optional path (/dev/VG)
//   netfs    hosts[0], source_path (export), path (mount point), source_format (nfs, cifs, glusterfs, auto)
//   zfs      source_name (zpool), optional source_devices
//   rbd      source_name (Ceph pool), hosts (monitors), optional auth_user + secret_uuid (cephx)
struct PoolSpec {
  std::string name;
  PoolType type = PoolType::Dir;
  std::string path;
  std::vector<PoolHost> hosts;
  std::string source_path;
  std::string source_name;
  std::vector<std::string> source_devices;
  std::string source_format;
  std::string auth_user;
  std::string secret_uuid;
};

// Pool names: letters, digits, '.', '_', '-', starting with a letter or digit.
Status validate_pool_name(std::string_view name);
// Checks the fields the type needs (ErrorKind::Validation, names the flag).
Status validate_pool_spec(const PoolSpec& spec);
// libvirt <pool> XML for the spec. Call validate_pool_spec first.
std::string pool_xml(const PoolSpec& spec);
// "host:port" or "host" into a PoolHost.
Result<PoolHost> parse_pool_host(std::string_view s);

// ---------------------------------------------------------------- volume XML

std::string volume_xml(const VolumeSpec& spec);

// ---------------------------------------------------------------- reports

struct PoolSummary {
  std::string name;
  std::string uuid;
  std::string type;  // libvirt's type attribute: dir, logical, netfs, zfs, rbd, ...
  PoolState state = PoolState::Inactive;
  bool active = false;
  bool persistent = false;
  bool autostart = false;
  uint64_t capacity = 0;
  uint64_t allocation = 0;
  uint64_t available = 0;
  std::string path;    // target path ("" when the type has none)
  std::string source;  // human summary of the source: "nfs.example.com:/export", "vg0", ...
  int volume_count = -1;  // -1 when the pool is inactive
  bool is_default = false;
};

struct PoolDetails {
  PoolSummary summary;
  std::vector<VolumeDetails> volumes;
};

// One VM's volumes, found through the naming convention.
struct VmStorage {
  std::string vm;
  std::vector<VolumeDetails> volumes;
  uint64_t capacity = 0;
  uint64_t allocation = 0;
};

struct StorageStatus {
  std::vector<PoolDetails> pools;
  std::vector<VmStorage> vms;  // sorted by name
};

// ---------------------------------------------------------------- manager

// Writes `total` bytes from `read` into a freshly created volume. The default
// streams through virStorageVolUpload. Tests against drivers without upload
// support (libvirt's test driver) substitute their own.
using VolumeUploader =
    std::function<Status(Connection& conn, Volume& vol, const ReadFn& read, uint64_t total, const ProgressFn& progress)>;
VolumeUploader stream_uploader();

// Readers for uploads: a file descriptor from its current offset to the end
// (the fd must stay open while the reader is used), or bytes in memory.
ReadFn read_from_fd(int fd);
ReadFn read_from_bytes(std::string_view data);

struct AddPoolOptions {
  // Build the pool's storage (mkdir for dir/netfs; vgcreate/zpool create for
  // logical/zfs, which formats source_devices, so off by default for those).
  std::optional<bool> build;  // nullopt = build dir and netfs only
  bool autostart = true;
};

class StorageManager {
 public:
  explicit StorageManager(Connection& conn, StorageConfig cfg = {});

  Connection& connection() { return conn_; }
  const StorageConfig& config() const { return cfg_; }
  void set_uploader(VolumeUploader u) { uploader_ = std::move(u); }
  // A flag (set e.g. from a SIGINT handler) that makes running uploads and
  // downloads stop at the next chunk; what they made is then removed.
  void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }
  const std::atomic<bool>* cancel_flag() const { return cancel_; }

  // -- pools
  bool is_default_pool(std::string_view name) const;
  // The image / VM pool, defined at its base path, built, started and set to
  // autostart if it does not exist yet; started if it exists but is inactive.
  Result<Pool> ensure_image_pool();
  Result<Pool> ensure_vm_pool();
  // A pool by name: one of the two defaults is created on first use; any
  // other must exist already (else a Storage error suggesting `pool add`)
  // and is started if inactive.
  Result<Pool> ensure_pool(const std::string& name);
  // The pool or a Storage error "pool X does not exist" with a hint.
  Result<Pool> get_pool(const std::string& name) const;

  Result<std::vector<PoolSummary>> list_pools() const;
  Result<PoolDetails> pool_details(const std::string& name) const;
  // Defines, builds (see AddPoolOptions), starts and sets autostart; undoes
  // every step if a later one fails.
  Result<PoolSummary> add_pool(const PoolSpec& spec, const AddPoolOptions& opts = {});
  // Refuses the default pools always, and pools with volumes unless force
  // (then deletes the volumes first). Stops the pool, removes the storage
  // libvirt built for dir/netfs pools, undefines it.
  Status delete_pool(const std::string& name, bool force);
  Result<PoolSummary> refresh_pool(const std::string& name);

  // -- volumes
  Result<std::optional<Volume>> find_volume(const std::string& pool, const std::string& name) const;
  Result<std::vector<VolumeDetails>> list_volumes(const std::string& pool) const;
  // Creates a volume from a spec in an existing (or default) pool. Refuses
  // names that exist (ErrorKind::Validation).
  Result<Volume> create_volume(const std::string& pool, const VolumeSpec& spec);
  // qcow2 volume backed by `base` (its path and format), with virtual size
  // `size` bytes; refuses sizes smaller than the base (ErrorKind::Validation).
  // The base's format comes from `base_format`, else from its volume XML.
  Result<Volume> create_overlay(const std::string& pool, const std::string& name, const Volume& base,
                                uint64_t size, std::optional<VolumeFormat> base_format = std::nullopt);
  // Blank volume of `size` bytes.
  Result<Volume> create_blank(const std::string& pool, const std::string& name, uint64_t size,
                              VolumeFormat format = VolumeFormat::Qcow2);
  // Raw volume holding exactly `data` (e.g. a cloud-init ISO), uploaded with
  // the uploader. Deleted again if the upload fails.
  Result<Volume> create_from_bytes(const std::string& pool, const std::string& name, std::string_view data,
                                   const ProgressFn& progress = {});
  // Raw volume of `total` bytes filled from `read`; deleted if the upload fails.
  Result<Volume> create_from_stream(const std::string& pool, const std::string& name, const ReadFn& read,
                                    uint64_t total, const ProgressFn& progress = {});
  // Deletes the volume; absent volumes are fine (returns false).
  Result<bool> delete_volume(const std::string& pool, const std::string& name);

  // Deletes every volume that VolumeName::parse() assigns to `vm`, in every
  // active pool; returns "pool/volume" of each one deleted. For `vm destroy`
  // and for cleaning up after a half-made VM whose domain is already gone.
  Result<std::vector<std::string>> delete_vm_volumes(const std::string& vm);

  // -- overview
  // Every pool (with its volumes when active) and every VM's volumes.
  Result<StorageStatus> status() const;
  // Every volume in every active pool whose backing store is `path`.
  Result<std::vector<VolumeDetails>> volumes_backed_by(const std::string& path) const;

 private:
  Result<Pool> ensure_default(const std::string& name, const std::string& path);
  Result<PoolSummary> summarize(const Pool& pool) const;

  Connection& conn_;
  StorageConfig cfg_;
  VolumeUploader uploader_;
  const std::atomic<bool>* cancel_ = nullptr;
};

}  // namespace foundry::virt
