// The libvirt C API behind RAII types.
//
// Connection owns a virConnectPtr; Domain, Pool, Volume and Stream own their
// libvirt objects (each is a unique_ptr with the matching virXFree). Every
// failing call returns an Error whose message says what Foundry was doing
// ("start storage pool foundry-vms") and whose detail() carries libvirt's own
// message (shown by the CLI with --verbose).
//
// Errors: libvirt reports through a thread-local "last error" and through
// error callbacks. Foundry installs a quiet global callback (libvirt's default
// one prints to stderr) and a per-connection callback that copies the message
// into the Connection; libvirt_error() reads virGetLastError() right after the
// failed call. No C++ exception ever crosses these C callbacks.
//
// Handles hold a libvirt reference to their connection, so they stay usable
// even if the Connection object is destroyed first; the per-connection
// callback is detached before the Connection closes.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/virt/types.h"

namespace foundry::virt {

// ---------------------------------------------------------------- errors

// The libvirt error code of the last failed call on this thread (VIR_ERR_OK
// when none), and its message.
int last_libvirt_code();
std::string last_libvirt_message();

// Error(kind, message) with libvirt's last error as detail.
Error libvirt_error(ErrorKind kind, std::string message);

// libvirt's last error, copied out. Every libvirt API call (even
// virStoragePoolGetName) clears the thread's last error, so it must be
// copied before anything else touches libvirt.
struct LibvirtErrorSnapshot {
  int code = 0;
  std::string message;
  static LibvirtErrorSnapshot take();
  Error to_error(ErrorKind kind, std::string what) const;
};

// Same, for messages that call libvirt to describe the object (its name):
// the error is snapshotted first, then make_message() runs.
template <typename F>
  requires std::is_invocable_r_v<std::string, F>
Error libvirt_error(ErrorKind kind, F&& make_message) {
  auto snap = LibvirtErrorSnapshot::take();
  return snap.to_error(kind, std::forward<F>(make_message)());
}

// A hint for a failed connection: which daemon and socket the URI needs and
// how to start it. Pure function of the URI (unit-tested).
std::string connection_hint(std::string_view uri);
// The Unix socket a local URI connects to ("" for remote or test URIs).
std::string socket_for_uri(std::string_view uri);

// ---------------------------------------------------------------- handles

namespace detail {
template <typename Obj, int (*FreeFn)(Obj*)>
struct Free {
  void operator()(Obj* p) const noexcept {
    if (p) FreeFn(p);
  }
};
}  // namespace detail

using DomainPtr = std::unique_ptr<virDomain, detail::Free<virDomain, virDomainFree>>;
using PoolPtr = std::unique_ptr<virStoragePool, detail::Free<virStoragePool, virStoragePoolFree>>;
using VolumePtr = std::unique_ptr<virStorageVol, detail::Free<virStorageVol, virStorageVolFree>>;

// Progress of a transfer: bytes done, bytes total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Reads up to `len` bytes into buf; returns 0 at the end of the data.
using ReadFn = std::function<Result<size_t>(char* buf, size_t len)>;

// A data stream (upload/download). Unless finish() succeeded, the destructor
// aborts the stream so the daemon drops the partial transfer.
class Stream {
 public:
  Stream() = default;
  explicit Stream(virStreamPtr s) : s_(s) {}
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  virStreamPtr get() const { return s_; }
  // Sends everything `read` yields, then finishes the stream.
  Status send_all(const ReadFn& read, uint64_t total, const ProgressFn& progress);
  Status finish();
  void abort() noexcept;

 private:
  virStreamPtr s_ = nullptr;
  bool done_ = false;
};

struct DomainInfo {
  DomainState state = DomainState::NoState;
  uint64_t max_memory_kib = 0;
  uint64_t memory_kib = 0;
  unsigned vcpus = 0;
};

class Domain {
 public:
  Domain() = default;
  explicit Domain(virDomainPtr d) : d_(d) {}
  virDomainPtr get() const { return d_.get(); }
  explicit operator bool() const { return d_ != nullptr; }

  std::string name() const;
  std::string uuid() const;
  Result<DomainInfo> info() const;
  Result<bool> is_active() const;
  Result<std::string> xml(unsigned flags = 0) const;
  Result<bool> autostart() const;
  Status set_autostart(bool on);
  Status start();     // virDomainCreate
  Status shutdown();  // ACPI request; returns at once
  Status destroy();   // hard power-off
  // Undefines with VIR_DOMAIN_UNDEFINE_NVRAM (and managed-save/snapshot
  // metadata); drivers that reject the flag get a plain undefine.
  Status undefine();

 private:
  DomainPtr d_;
};

class Volume {
 public:
  Volume() = default;
  explicit Volume(virStorageVolPtr v) : v_(v) {}
  virStorageVolPtr get() const { return v_.get(); }
  explicit operator bool() const { return v_ != nullptr; }

  std::string name() const;
  std::string path() const;
  std::string key() const;
  Result<std::string> xml() const;
  // Name, path, sizes, format and backing store, from the volume XML.
  Result<VolumeDetails> details() const;
  // Deletes the volume and its data.
  Status remove();
  // Streams `total` bytes from `read` into the volume from offset 0
  // (virStorageVolUpload), so it works on remote hypervisors too.
  Status upload(virConnectPtr conn, const ReadFn& read, uint64_t total, const ProgressFn& progress);

 private:
  VolumePtr v_;
};

enum class PoolState { Inactive, Building, Running, Degraded, Inaccessible };
std::string_view to_string(PoolState s);  // "inactive", "running", ...

struct PoolRuntime {
  PoolState state = PoolState::Inactive;
  uint64_t capacity = 0;
  uint64_t allocation = 0;
  uint64_t available = 0;
};

class Pool {
 public:
  Pool() = default;
  explicit Pool(virStoragePoolPtr p) : p_(p) {}
  virStoragePoolPtr get() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }

  std::string name() const;
  std::string uuid() const;
  Result<std::string> xml() const;
  Result<PoolRuntime> runtime() const;
  Result<bool> is_active() const;
  Result<bool> is_persistent() const;
  Result<bool> autostart() const;
  Status set_autostart(bool on);
  Status build(unsigned flags = 0);  // virStoragePoolBuild (mkdir, vgcreate, ...)
  Status start();                    // virStoragePoolCreate
  Status stop();                     // virStoragePoolDestroy
  Status delete_storage();           // virStoragePoolDelete (rmdir, vgremove, ...)
  Status undefine();
  Status refresh();

  Result<std::vector<Volume>> volumes() const;  // the pool must be active
  Result<std::optional<Volume>> find_volume(const std::string& name) const;
  Result<Volume> create_volume(const std::string& xml);

 private:
  PoolPtr p_;
};

// ---------------------------------------------------------------- connection

class Connection {
 public:
  // Opens `uri` (e.g. qemu:///system, qemu+ssh://host/system, test:///default)
  // with libvirt's default authentication callback. Failure: ErrorKind::Connection
  // with a hint (is the daemon running, which socket was tried).
  static Result<Connection> open(const std::string& uri, bool read_only = false);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  virConnectPtr get() const { return conn_; }
  const std::string& uri() const { return uri_; }
  // The last error libvirt reported on this connection (per-connection
  // callback); empty when none.
  std::string last_error() const;

  // Storage pools.
  Result<std::vector<Pool>> pools() const;
  Result<std::optional<Pool>> find_pool(const std::string& name) const;
  Result<Pool> define_pool(const std::string& xml);
  // Volume by its path or key, in whichever pool holds it.
  Result<std::optional<Volume>> find_volume_by_path(const std::string& path) const;

  // Domains.
  Result<std::vector<Domain>> domains(bool include_inactive = true) const;
  Result<std::optional<Domain>> find_domain(const std::string& name) const;
  Result<Domain> define_domain(const std::string& xml);

  Result<std::string> hostname() const;

 private:
  struct ErrorSink;
  Connection(virConnectPtr c, std::string uri, std::unique_ptr<ErrorSink> sink);
  void close() noexcept;

  std::unique_ptr<ErrorSink> sink_;
  virConnectPtr conn_ = nullptr;
  std::string uri_;
};

}  // namespace foundry::virt
