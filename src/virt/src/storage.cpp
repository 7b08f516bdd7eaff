#include "foundry/virt/storage.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>

#include <pugixml.hpp>

#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"

namespace foundry::virt {

namespace {

std::string gib(uint64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

// Fields of a pool's XML that the runtime API does not give.
struct PoolXmlFacts {
  std::string type;
  std::string path;
  std::string source;
};

PoolXmlFacts parse_pool_facts(const std::string& xml) {
  PoolXmlFacts f;
  pugi::xml_document doc;
  if (!doc.load_string(xml.c_str())) return f;
  auto pool = doc.child("pool");
  f.type = pool.attribute("type").as_string();
  f.path = pool.child("target").child_value("path");
  auto src = pool.child("source");
  std::string hosts;
  for (auto h : src.children("host")) {
    if (!hosts.empty()) hosts += ",";
    hosts += h.attribute("name").as_string();
    if (h.attribute("port")) hosts += fmt::format(":{}", h.attribute("port").as_int());
  }
  std::string dir = src.child("dir").attribute("path").as_string();
  std::string name = src.child_value("name");
  if (!hosts.empty() && !dir.empty())
    f.source = hosts + ":" + dir;
  else if (!name.empty() && !hosts.empty())
    f.source = name + "@" + hosts;
  else if (!name.empty())
    f.source = name;
  else if (src.child("device"))
    f.source = src.child("device").attribute("path").as_string();
  return f;
}

bool storage_libvirt_builds(const std::string& type) { return type == "dir" || type == "netfs"; }

}  // namespace

// ---------------------------------------------------------------- readers

ReadFn read_from_fd(int fd) {
  return [fd](char* buf, size_t len) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, len);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return fail_errno(ErrorKind::Storage, "read the image data");
    }
  };
}

ReadFn read_from_bytes(std::string_view data) {
  auto pos = std::make_shared<size_t>(0);
  return [data, pos](char* buf, size_t len) -> Result<size_t> {
    size_t n = std::min(len, data.size() - *pos);
    std::copy_n(data.data() + *pos, n, buf);
    *pos += n;
    return n;
  };
}

VolumeUploader stream_uploader() {
  return [](Connection& conn, Volume& vol, const ReadFn& read, uint64_t total, const ProgressFn& progress) {
    return vol.upload(conn.get(), read, total, progress);
  };
}

// ---------------------------------------------------------------- manager

StorageManager::StorageManager(Connection& conn, StorageConfig cfg)
    : conn_(conn), cfg_(std::move(cfg)), uploader_(stream_uploader()) {}

bool StorageManager::is_default_pool(std::string_view name) const {
  return name == cfg_.image_pool || name == cfg_.vm_pool || name == StorageConfig::kDefaultImagePool ||
         name == StorageConfig::kDefaultVmPool;
}

Result<Pool> StorageManager::ensure_image_pool() { return ensure_default(cfg_.image_pool, cfg_.image_pool_path()); }
Result<Pool> StorageManager::ensure_vm_pool() { return ensure_default(cfg_.vm_pool, cfg_.vm_pool_path()); }

Result<Pool> StorageManager::ensure_pool(const std::string& name) {
  if (name == cfg_.image_pool) return ensure_image_pool();
  if (name == cfg_.vm_pool) return ensure_vm_pool();
  auto pool = FOUNDRY_TRY(get_pool(name));
  if (!FOUNDRY_TRY(pool.is_active())) FOUNDRY_TRY(pool.start());
  return pool;
}

Result<Pool> StorageManager::get_pool(const std::string& name) const {
  auto found = FOUNDRY_TRY(conn_.find_pool(name));
  if (!found)
    return fail(Error(ErrorKind::Storage, fmt::format("storage pool {} does not exist", name))
                    .with_hint(fmt::format("see `foundry pool list`, or add it with "
                                           "`foundry pool add {} --type dir --path /PATH`",
                                           name)));
  return std::move(*found);
}

Result<Pool> StorageManager::ensure_default(const std::string& name, const std::string& path) {
  auto found = FOUNDRY_TRY(conn_.find_pool(name));
  if (found) {
    Pool pool = std::move(*found);
    if (!FOUNDRY_TRY(pool.is_active())) {
      // A dir pool whose directory vanished starts only after a build.
      if (!pool.start()) {
        FOUNDRY_TRY_CTX(pool.build(), "start pool {}", name);
        FOUNDRY_TRY(pool.start());
      }
    }
    return pool;
  }

  spdlog::debug("creating default pool {} at {}", name, path);
  PoolSpec spec;
  spec.name = name;
  spec.type = PoolType::Dir;
  spec.path = path;
  auto defined = conn_.define_pool(pool_xml(spec));
  if (!defined) {
    // Another foundry may have defined it a moment ago.
    auto again = FOUNDRY_TRY(conn_.find_pool(name));
    if (!again) return fail(std::move(defined.error()).wrap(fmt::format("create pool {} at {}", name, path)));
    return ensure_default(name, path);
  }
  Pool pool = std::move(*defined);
  UndoList undo;
  undo.push("undefine", [&] { (void)pool.undefine(); });
  auto hint = fmt::format(
      "check that libvirtd can create and write {} (or choose another base path with "
      "FOUNDRY_STORAGE_PATH)",
      path);
  if (auto r = pool.build(); !r) return fail(std::move(r.error()).wrap(fmt::format("create pool {}", name)).with_hint(hint));
  if (auto r = pool.start(); !r) return fail(std::move(r.error()).wrap(fmt::format("create pool {}", name)).with_hint(hint));
  undo.push("stop", [&] { (void)pool.stop(); });
  FOUNDRY_TRY_CTX(pool.set_autostart(true), "create pool {}", name);
  undo.commit();
  return pool;
}

Result<PoolSummary> StorageManager::summarize(const Pool& pool) const {
  PoolSummary s;
  s.name = pool.name();
  s.uuid = pool.uuid();
  auto facts = parse_pool_facts(FOUNDRY_TRY(pool.xml()));
  s.type = facts.type;
  s.path = facts.path;
  s.source = facts.source;
  auto rt = FOUNDRY_TRY(pool.runtime());
  s.state = rt.state;
  s.capacity = rt.capacity;
  s.allocation = rt.allocation;
  s.available = rt.available;
  s.active = FOUNDRY_TRY(pool.is_active());
  s.persistent = FOUNDRY_TRY(pool.is_persistent());
  s.autostart = FOUNDRY_TRY(pool.autostart());
  s.is_default = is_default_pool(s.name);
  if (s.active) s.volume_count = static_cast<int>(FOUNDRY_TRY(pool.volumes()).size());
  return s;
}

Result<std::vector<PoolSummary>> StorageManager::list_pools() const {
  auto pools = FOUNDRY_TRY(conn_.pools());
  std::vector<PoolSummary> out;
  for (const auto& p : pools) out.push_back(FOUNDRY_TRY(summarize(p)));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<PoolDetails> StorageManager::pool_details(const std::string& name) const {
  auto pool = FOUNDRY_TRY(get_pool(name));
  PoolDetails d;
  d.summary = FOUNDRY_TRY(summarize(pool));
  if (d.summary.active) {
    for (const auto& v : FOUNDRY_TRY(pool.volumes())) {
      // A volume whose file vanished since the listing is no longer there.
      auto vd = v.details();
      if (vd) d.volumes.push_back(std::move(*vd));
      else spdlog::debug("skipping unreadable volume in pool {}: {}", name, vd.error().to_string());
    }
    std::sort(d.volumes.begin(), d.volumes.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  return d;
}

Result<PoolSummary> StorageManager::add_pool(const PoolSpec& spec, const AddPoolOptions& opts) {
  FOUNDRY_TRY(validate_pool_spec(spec));
  if (FOUNDRY_TRY(conn_.find_pool(spec.name)))
    return fail(Error(ErrorKind::Validation, fmt::format("storage pool {} already exists", spec.name))
                    .with_hint(fmt::format("see `foundry pool info {}`, or choose another name", spec.name)));
  auto ctx = fmt::format("add {} pool {}", to_string(spec.type), spec.name);
  Pool pool = FOUNDRY_TRY_CTX(conn_.define_pool(pool_xml(spec)), "{}", ctx);
  UndoList undo;
  undo.push("undefine", [&] { (void)pool.undefine(); });
  bool build = opts.build.value_or(spec.type == PoolType::Dir || spec.type == PoolType::Netfs);
  if (build) {
    FOUNDRY_TRY_CTX(pool.build(), "{}", ctx);
    // Only the directory kinds are undone: removing a volume group or zpool
    // that a later step failed on is not ours to decide.
    if (spec.type == PoolType::Dir || spec.type == PoolType::Netfs)
      undo.push("delete storage", [&] { (void)pool.delete_storage(); });
  }
  FOUNDRY_TRY_CTX(pool.start(), "{}", ctx);
  undo.push("stop", [&] { (void)pool.stop(); });
  if (opts.autostart) FOUNDRY_TRY_CTX(pool.set_autostart(true), "{}", ctx);
  auto summary = FOUNDRY_TRY_CTX(summarize(pool), "{}", ctx);
  undo.commit();
  return summary;
}

Status StorageManager::delete_pool(const std::string& name, bool force) {
  if (is_default_pool(name))
    return fail(Error(ErrorKind::Validation, fmt::format("refusing to delete {}: it is a default Foundry pool", name))
                    .with_hint("the default pools hold base images and VM disks; delete their volumes "
                               "with `foundry image delete` / `foundry vm destroy` instead"));
  auto pool = FOUNDRY_TRY(get_pool(name));
  auto ctx = fmt::format("delete pool {}", name);
  auto facts = parse_pool_facts(FOUNDRY_TRY_CTX(pool.xml(), "{}", ctx));
  bool active = FOUNDRY_TRY_CTX(pool.is_active(), "{}", ctx);
  if (!active) {
    // Volumes can be counted only in a running pool.
    auto st = pool.start();
    if (st) {
      active = true;
    } else if (!force) {
      return fail(std::move(st.error())
                      .wrap(fmt::format("{}: cannot check that it is empty", ctx))
                      .with_hint("use --force to remove the pool definition anyway"));
    }
  }
  if (active) {
    FOUNDRY_TRY_CTX(pool.refresh(), "{}", ctx);
    auto vols = FOUNDRY_TRY_CTX(pool.volumes(), "{}", ctx);
    if (!vols.empty() && !force) {
      std::vector<std::string> sorted;
      for (const auto& v : vols) sorted.push_back(v.name());
      std::sort(sorted.begin(), sorted.end());
      std::string names;
      for (size_t i = 0; i < sorted.size() && i < 5; ++i) names += (i ? ", " : "") + sorted[i];
      if (sorted.size() > 5) names += ", ...";
      return fail(Error(ErrorKind::Storage,
                        fmt::format("refusing to delete pool {}: it holds {} volume{} ({})", name, vols.size(),
                                    vols.size() == 1 ? "" : "s", names))
                      .with_hint("use --force to delete the volumes and the pool"));
    }
    for (auto& v : vols) {
      std::string vname = v.name();
      FOUNDRY_TRY_CTX(v.remove(), "{}", ctx);
      spdlog::debug("deleted volume {} of pool {}", vname, name);
    }
    FOUNDRY_TRY_CTX(pool.stop(), "{}", ctx);
  }
  if (storage_libvirt_builds(facts.type)) {
    // rmdir of the pool directory; it fails harmlessly when the directory
    // holds files libvirt did not list, which Foundry must not remove.
    if (auto r = pool.delete_storage(); !r) spdlog::debug("{}: {}", ctx, r.error().to_string());
  }
  if (FOUNDRY_TRY_CTX(pool.is_persistent(), "{}", ctx)) FOUNDRY_TRY_CTX(pool.undefine(), "{}", ctx);
  return ok();
}

Result<PoolSummary> StorageManager::refresh_pool(const std::string& name) {
  auto pool = FOUNDRY_TRY(get_pool(name));
  if (!FOUNDRY_TRY(pool.is_active()))
    FOUNDRY_TRY_CTX(pool.start(), "refresh pool {}", name);  // starting scans the pool
  else
    FOUNDRY_TRY(pool.refresh());
  return summarize(pool);
}

// ---------------------------------------------------------------- volumes

Result<std::optional<Volume>> StorageManager::find_volume(const std::string& pool, const std::string& name) const {
  auto found = FOUNDRY_TRY(conn_.find_pool(pool));
  if (!found || !FOUNDRY_TRY(found->is_active())) return std::optional<Volume>();
  return found->find_volume(name);
}

Result<std::vector<VolumeDetails>> StorageManager::list_volumes(const std::string& pool) const {
  auto p = FOUNDRY_TRY(get_pool(pool));
  std::vector<VolumeDetails> out;
  if (!FOUNDRY_TRY(p.is_active())) return out;
  for (const auto& v : FOUNDRY_TRY(p.volumes())) out.push_back(FOUNDRY_TRY(v.details()));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<Volume> StorageManager::create_volume(const std::string& pool_name, const VolumeSpec& spec) {
  auto ctx = fmt::format("create volume {} in pool {}", spec.name, pool_name);
  if (spec.name.empty() || spec.name.find('/') != std::string::npos)
    return fail(ErrorKind::Validation, "{}: invalid volume name", ctx);
  if (spec.capacity == 0) return fail(ErrorKind::Validation, "{}: size must be greater than 0", ctx);
  auto pool = FOUNDRY_TRY_CTX(ensure_pool(pool_name), "{}", ctx);
  if (FOUNDRY_TRY_CTX(pool.find_volume(spec.name), "{}", ctx))
    return fail(Error(ErrorKind::Validation, fmt::format("{}: the volume exists already", ctx))
                    .with_hint("a leftover from an earlier run? remove it with `virsh vol-delete` or "
                               "`foundry vm destroy`"));
  return FOUNDRY_TRY_CTX(pool.create_volume(volume_xml(spec)), "{}", ctx);
}

Result<Volume> StorageManager::create_overlay(const std::string& pool, const std::string& name, const Volume& base,
                                              uint64_t size, std::optional<VolumeFormat> base_format) {
  auto b = FOUNDRY_TRY_CTX(base.details(), "create volume {}", name);
  VolumeFormat bf;
  if (base_format) {
    bf = *base_format;
  } else if (b.format == "qcow2") {
    bf = VolumeFormat::Qcow2;
  } else if (b.format == "raw" || b.format.empty()) {
    bf = VolumeFormat::Raw;
  } else {
    return fail(ErrorKind::Storage, "create volume {}: base volume {} has unsupported format {}", name, b.name,
                b.format);
  }
  if (size < b.capacity)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("create volume {}: size {} is smaller than its base {} ({})", name, gib(size),
                                  b.name, gib(b.capacity)))
                    .with_hint(fmt::format("make the disk at least {} bytes", b.capacity)));
  VolumeSpec spec;
  spec.name = name;
  spec.format = VolumeFormat::Qcow2;
  spec.capacity = size;
  spec.backing = BackingStore{b.path, bf};
  return create_volume(pool, spec);
}

Result<Volume> StorageManager::create_blank(const std::string& pool, const std::string& name, uint64_t size,
                                            VolumeFormat format) {
  VolumeSpec spec;
  spec.name = name;
  spec.format = format;
  spec.capacity = size;
  return create_volume(pool, spec);
}

Result<Volume> StorageManager::create_from_bytes(const std::string& pool, const std::string& name,
                                                 std::string_view data, const ProgressFn& progress) {
  return create_from_stream(pool, name, read_from_bytes(data), data.size(), progress);
}

Result<Volume> StorageManager::create_from_stream(const std::string& pool, const std::string& name,
                                                  const ReadFn& read, uint64_t total, const ProgressFn& progress) {
  VolumeSpec spec;
  spec.name = name;
  // Raw and exactly `total` bytes long: the upload overwrites every byte, so
  // no tail of a pre-made header survives; libvirt probes qcow2 contents
  // when it refreshes the pool after the upload.
  spec.format = VolumeFormat::Raw;
  spec.capacity = total;
  Volume vol = FOUNDRY_TRY(create_volume(pool, spec));
  UndoList undo;
  undo.push("delete volume", [&] {
    if (auto r = vol.remove(); !r) spdlog::debug("cleanup: {}", r.error().to_string());
  });
  ReadFn guarded = [&](char* buf, size_t len) -> Result<size_t> {
    if (cancel_ && cancel_->load()) return fail(ErrorKind::Storage, "interrupted");
    return read(buf, len);
  };
  // The uploader names the volume in its error; callers add what they were doing.
  FOUNDRY_TRY(uploader_(conn_, vol, guarded, total, progress));
  undo.commit();
  // libvirt refreshes the pool when the upload stream closes, but
  // asynchronously; refresh now so callers see the final size and format.
  if (auto p = conn_.find_pool(pool); p && *p) (void)(*p)->refresh();
  auto again = FOUNDRY_TRY(find_volume(pool, name));
  if (again) return std::move(*again);
  return vol;
}

Result<bool> StorageManager::delete_volume(const std::string& pool, const std::string& name) {
  auto vol = FOUNDRY_TRY(find_volume(pool, name));
  if (!vol) return false;
  FOUNDRY_TRY_CTX(vol->remove(), "in pool {}", pool);
  return true;
}

Result<std::vector<std::string>> StorageManager::delete_vm_volumes(const std::string& vm) {
  std::vector<std::string> deleted;
  for (auto& p : FOUNDRY_TRY(conn_.pools())) {
    if (!FOUNDRY_TRY(p.is_active())) continue;
    for (auto& v : FOUNDRY_TRY(p.volumes())) {
      auto parsed = VolumeName::parse(v.name());
      if (!parsed || parsed->vm != vm) continue;
      std::string what = fmt::format("{}/{}", p.name(), v.name());
      FOUNDRY_TRY_CTX(v.remove(), "delete the volumes of VM {}", vm);
      deleted.push_back(std::move(what));
    }
  }
  std::sort(deleted.begin(), deleted.end());
  return deleted;
}

// ---------------------------------------------------------------- overview

Result<StorageStatus> StorageManager::status() const {
  StorageStatus st;
  std::map<std::string, VmStorage> vms;
  for (const auto& s : FOUNDRY_TRY(list_pools())) {
    PoolDetails d = FOUNDRY_TRY(pool_details(s.name));
    for (const auto& v : d.volumes) {
      auto parsed = VolumeName::parse(v.name);
      if (!parsed) continue;
      auto& vm = vms[parsed->vm];
      vm.vm = parsed->vm;
      vm.volumes.push_back(v);
      vm.capacity += v.capacity;
      vm.allocation += v.allocation;
    }
    st.pools.push_back(std::move(d));
  }
  for (auto& [name, vm] : vms) st.vms.push_back(std::move(vm));
  return st;
}

Result<std::vector<VolumeDetails>> StorageManager::volumes_backed_by(const std::string& path) const {
  std::vector<VolumeDetails> out;
  for (const auto& p : FOUNDRY_TRY(conn_.pools())) {
    if (!FOUNDRY_TRY(p.is_active())) continue;
    for (const auto& v : FOUNDRY_TRY(p.volumes())) {
      // Other tools' pools may list a volume whose file is already gone
      // (deleted behind libvirt's back, or by a concurrent delete): it backs
      // nothing, so it must not fail this scan.
      auto d = v.details();
      if (!d) {
        spdlog::debug("skipping unreadable volume in pool {}: {}", p.name(), d.error().to_string());
        continue;
      }
      if (!d->backing_path.empty() && d->backing_path == path) out.push_back(std::move(*d));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return std::tie(a.pool, a.name) < std::tie(b.pool, b.name); });
  return out;
}

}  // namespace foundry::virt
