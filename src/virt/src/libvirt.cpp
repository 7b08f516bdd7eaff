#include "foundry/virt/libvirt.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include <pugixml.hpp>

#include "foundry/common/log.h"

namespace foundry::virt {

namespace {

// libvirt's default error handler prints every error to stderr, also for
// lookups that Foundry expects to fail ("does this pool exist?"). The quiet
// handler keeps stderr for Foundry's own one-line messages.
void quiet_global_handler(void*, virErrorPtr) noexcept {}

void init_libvirt_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, quiet_global_handler);
  });
}

// Frees a string libvirt allocated.
struct CFree {
  void operator()(char* p) const noexcept { std::free(p); }
};
using CString = std::unique_ptr<char, CFree>;

std::string take_string(char* p) {
  CString s(p);
  return s ? std::string(s.get()) : std::string();
}

}  // namespace

int last_libvirt_code() {
  virErrorPtr e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

std::string last_libvirt_message() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? std::string(e->message) : std::string();
}

LibvirtErrorSnapshot LibvirtErrorSnapshot::take() {
  LibvirtErrorSnapshot s;
  virErrorPtr e = virGetLastError();
  if (e) {
    s.code = e->code;
    s.message = e->message ? e->message : "";
  }
  return s;
}

Error LibvirtErrorSnapshot::to_error(ErrorKind kind, std::string what) const {
  Error err(kind, std::move(what));
  if (!message.empty()) err.with_detail(fmt::format("libvirt: {} (code {})", message, code));
  return err;
}

Error libvirt_error(ErrorKind kind, std::string message) {
  return LibvirtErrorSnapshot::take().to_error(kind, std::move(message));
}

std::string socket_for_uri(std::string_view uri) {
  auto q = uri.find("socket=");
  if (q != std::string_view::npos) {
    auto v = uri.substr(q + 7);
    return std::string(v.substr(0, v.find('&')));
  }
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return "";
  std::string_view scheme = uri.substr(0, scheme_end);
  std::string_view rest = uri.substr(scheme_end + 3);
  if (scheme == "test") return "";
  auto plus = scheme.find('+');
  if (plus != std::string_view::npos && scheme.substr(plus + 1) != "unix") return "";  // ssh, tls, tcp
  // Remote host part present: not a local socket.
  if (!rest.empty() && rest.front() != '/') return "";
  std::string_view path = rest.substr(0, rest.find('?'));
  if (path == "/session") {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    std::string base = xdg && *xdg ? std::string(xdg) : fmt::format("/run/user/{}", ::getuid());
    return base + "/libvirt/libvirt-sock";
  }
  return "/var/run/libvirt/libvirt-sock";
}

std::string connection_hint(std::string_view uri) {
  auto scheme_end = uri.find("://");
  std::string_view scheme = scheme_end == std::string_view::npos ? uri : uri.substr(0, scheme_end);
  if (scheme == "test")
    return "the test driver needs no daemon: use test:///default or test:///ABSOLUTE/PATH/TO/node.xml";
  std::string sock = socket_for_uri(uri);
  if (sock.empty()) {
    std::string_view rest = scheme_end == std::string_view::npos ? "" : uri.substr(scheme_end + 3);
    std::string host(rest.substr(0, rest.find('/')));
    return fmt::format(
        "is libvirtd running on {} and reachable (URI {})? For qemu+ssh URIs check that "
        "`ssh {}` works without a password prompt",
        host.empty() ? "the remote host" : host, uri, host.empty() ? "HOST" : host);
  }
  return fmt::format(
      "is libvirtd running? Foundry tried {} through the socket {}; start it with: "
      "virtlogd -d; libvirtd -d (or: systemctl start libvirtd), or pick another URI with "
      "--connect or FOUNDRY_URI",
      uri, sock);
}

// ---------------------------------------------------------------- Stream

Stream::Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)), done_(o.done_) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    abort();
    if (s_) virStreamFree(s_);
    s_ = std::exchange(o.s_, nullptr);
    done_ = o.done_;
  }
  return *this;
}

Stream::~Stream() {
  abort();
  if (s_) virStreamFree(s_);
}

void Stream::abort() noexcept {
  if (s_ && !done_) {
    virStreamAbort(s_);
    done_ = true;
  }
}

Status Stream::finish() {
  if (virStreamFinish(s_) < 0) {
    auto err = libvirt_error(ErrorKind::Storage, "finish the data stream");
    abort();
    return fail(std::move(err));
  }
  done_ = true;
  return ok();
}

Status Stream::send_all(const ReadFn& read, uint64_t total, const ProgressFn& progress) {
  // 256 KiB per message: the RPC layer splits larger sends anyway, and
  // progress stays smooth.
  std::vector<char> buf(256 * 1024);
  uint64_t done = 0;
  if (progress) progress(0, total);
  for (;;) {
    auto n = read(buf.data(), buf.size());
    if (!n) {
      abort();
      return fail(std::move(n).error());
    }
    if (*n == 0) break;
    size_t off = 0;
    while (off < *n) {
      int sent = virStreamSend(s_, buf.data() + off, *n - off);
      if (sent < 0) {
        auto err = libvirt_error(ErrorKind::Storage, [&] { return fmt::format("send data at byte {}", done + off); });
        abort();
        return fail(std::move(err));
      }
      off += static_cast<size_t>(sent);
    }
    done += *n;
    if (progress) progress(done, total);
  }
  return finish();
}

// ---------------------------------------------------------------- Domain

std::string_view to_string(DomainState s) {
  switch (s) {
    case DomainState::NoState: return "no state";
    case DomainState::Running: return "running";
    case DomainState::Blocked: return "blocked";
    case DomainState::Paused: return "paused";
    case DomainState::ShuttingDown: return "shutting down";
    case DomainState::ShutOff: return "shut off";
    case DomainState::Crashed: return "crashed";
    case DomainState::Suspended: return "suspended";
  }
  return "unknown";
}

std::string Domain::name() const {
  const char* n = virDomainGetName(d_.get());
  return n ? n : "";
}

std::string Domain::uuid() const {
  char buf[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(d_.get(), buf) < 0) return "";
  return buf;
}

Result<DomainInfo> Domain::info() const {
  virDomainInfo i{};
  if (virDomainGetInfo(d_.get(), &i) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("get state of domain {}", name()); }));
  DomainInfo out;
  out.state = i.state <= VIR_DOMAIN_PMSUSPENDED ? static_cast<DomainState>(i.state) : DomainState::NoState;
  out.max_memory_kib = i.maxMem;
  out.memory_kib = i.memory;
  out.vcpus = i.nrVirtCpu;
  return out;
}

Result<bool> Domain::is_active() const {
  int r = virDomainIsActive(d_.get());
  if (r < 0) return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("check whether domain {} runs", name()); }));
  return r == 1;
}

Result<std::string> Domain::xml(unsigned flags) const {
  char* x = virDomainGetXMLDesc(d_.get(), flags);
  if (!x) return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("get XML of domain {}", name()); }));
  return take_string(x);
}

Result<bool> Domain::autostart() const {
  int a = 0;
  if (virDomainGetAutostart(d_.get(), &a) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("get autostart of domain {}", name()); }));
  return a != 0;
}

Status Domain::set_autostart(bool on) {
  if (virDomainSetAutostart(d_.get(), on ? 1 : 0) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("set autostart of domain {}", name()); }));
  return ok();
}

Status Domain::start() {
  if (virDomainCreate(d_.get()) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("start domain {}", name()); }));
  return ok();
}

Status Domain::shutdown() {
  if (virDomainShutdown(d_.get()) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("shut down domain {}", name()); }));
  return ok();
}

Status Domain::destroy() {
  if (virDomainDestroy(d_.get()) < 0)
    return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("force off domain {}", name()); }));
  return ok();
}

Status Domain::undefine() {
  unsigned flags = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                   VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
  if (virDomainUndefineFlags(d_.get(), flags) == 0) return ok();
  auto first = LibvirtErrorSnapshot::take();
  int code = first.code;
  // Drivers without NVRAM/flag support (the test driver, older or remote
  // ones) reject the flags; a plain undefine then does what can be done.
  if (code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_INVALID_ARG || code == VIR_ERR_ARGUMENT_UNSUPPORTED) {
    spdlog::debug("undefine {} with flags rejected ({}); plain undefine", name(), first.message);
    if (virDomainUndefine(d_.get()) == 0) return ok();
  }
  return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("undefine domain {}", name()); }));
}

// ---------------------------------------------------------------- Volume

std::string Volume::name() const {
  const char* n = virStorageVolGetName(v_.get());
  return n ? n : "";
}

std::string Volume::path() const { return take_string(virStorageVolGetPath(v_.get())); }

std::string Volume::key() const {
  const char* k = virStorageVolGetKey(v_.get());
  return k ? k : "";
}

Result<std::string> Volume::xml() const {
  char* x = virStorageVolGetXMLDesc(v_.get(), 0);
  if (!x) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("get XML of volume {}", name()); }));
  return take_string(x);
}

namespace {
uint64_t parse_u64(const char* s) { return std::strtoull(s, nullptr, 10); }
}  // namespace

Result<VolumeDetails> Volume::details() const {
  auto x = FOUNDRY_TRY(xml());
  pugi::xml_document doc;
  if (!doc.load_string(x.c_str()))
    return fail(ErrorKind::Storage, "libvirt returned unreadable XML for volume {}", name());
  auto vol = doc.child("volume");
  VolumeDetails d;
  d.name = vol.child_value("name");
  d.key = vol.child_value("key");
  d.path = vol.child("target").child_value("path");
  d.format = vol.child("target").child("format").attribute("type").as_string();
  d.capacity = parse_u64(vol.child_value("capacity"));
  d.allocation = parse_u64(vol.child_value("allocation"));
  auto bs = vol.child("backingStore");
  if (bs) {
    d.backing_path = bs.child_value("path");
    d.backing_format = bs.child("format").attribute("type").as_string();
  }
  virStoragePoolPtr p = virStoragePoolLookupByVolume(v_.get());
  if (p) {
    PoolPtr owner(p);
    const char* n = virStoragePoolGetName(p);
    d.pool = n ? n : "";
  }
  return d;
}

Status Volume::remove() {
  if (virStorageVolDelete(v_.get(), 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("delete volume {}", name()); }));
  return ok();
}

Status Volume::upload(virConnectPtr conn, const ReadFn& read, uint64_t total, const ProgressFn& progress) {
  virStreamPtr s = virStreamNew(conn, 0);
  if (!s) return fail(libvirt_error(ErrorKind::Storage, "create a data stream"));
  Stream st(s);
  if (virStorageVolUpload(v_.get(), st.get(), 0, total, 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("start upload into volume {}", name()); }));
  auto r = st.send_all(read, total, progress);
  if (!r) return fail(std::move(r.error()).wrap(fmt::format("upload into volume {}", name())));
  return ok();
}

// ---------------------------------------------------------------- Pool

std::string_view to_string(PoolState s) {
  switch (s) {
    case PoolState::Inactive: return "inactive";
    case PoolState::Building: return "building";
    case PoolState::Running: return "running";
    case PoolState::Degraded: return "degraded";
    case PoolState::Inaccessible: return "inaccessible";
  }
  return "unknown";
}

std::string Pool::name() const {
  const char* n = virStoragePoolGetName(p_.get());
  return n ? n : "";
}

std::string Pool::uuid() const {
  char buf[VIR_UUID_STRING_BUFLEN] = {};
  if (virStoragePoolGetUUIDString(p_.get(), buf) < 0) return "";
  return buf;
}

Result<std::string> Pool::xml() const {
  char* x = virStoragePoolGetXMLDesc(p_.get(), 0);
  if (!x) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("get XML of pool {}", name()); }));
  return take_string(x);
}

Result<PoolRuntime> Pool::runtime() const {
  virStoragePoolInfo i{};
  if (virStoragePoolGetInfo(p_.get(), &i) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("get state of pool {}", name()); }));
  PoolRuntime r;
  r.state = i.state <= VIR_STORAGE_POOL_INACCESSIBLE ? static_cast<PoolState>(i.state) : PoolState::Inaccessible;
  r.capacity = i.capacity;
  r.allocation = i.allocation;
  r.available = i.available;
  return r;
}

Result<bool> Pool::is_active() const {
  int r = virStoragePoolIsActive(p_.get());
  if (r < 0) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("check whether pool {} is active", name()); }));
  return r == 1;
}

Result<bool> Pool::is_persistent() const {
  int r = virStoragePoolIsPersistent(p_.get());
  if (r < 0) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("check whether pool {} is persistent", name()); }));
  return r == 1;
}

Result<bool> Pool::autostart() const {
  int a = 0;
  if (virStoragePoolGetAutostart(p_.get(), &a) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("get autostart of pool {}", name()); }));
  return a != 0;
}

Status Pool::set_autostart(bool on) {
  if (virStoragePoolSetAutostart(p_.get(), on ? 1 : 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("set autostart of pool {}", name()); }));
  return ok();
}

Status Pool::build(unsigned flags) {
  if (virStoragePoolBuild(p_.get(), flags) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("build pool {}", name()); }));
  return ok();
}

Status Pool::start() {
  if (virStoragePoolCreate(p_.get(), 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("start pool {}", name()); }));
  return ok();
}

Status Pool::stop() {
  if (virStoragePoolDestroy(p_.get()) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("stop pool {}", name()); }));
  return ok();
}

Status Pool::delete_storage() {
  if (virStoragePoolDelete(p_.get(), 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("delete the storage of pool {}", name()); }));
  return ok();
}

Status Pool::undefine() {
  if (virStoragePoolUndefine(p_.get()) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("undefine pool {}", name()); }));
  return ok();
}

Status Pool::refresh() {
  if (virStoragePoolRefresh(p_.get(), 0) < 0)
    return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("refresh pool {}", name()); }));
  return ok();
}

Result<std::vector<Volume>> Pool::volumes() const {
  virStorageVolPtr* vols = nullptr;
  int n = virStoragePoolListAllVolumes(p_.get(), &vols, 0);
  if (n < 0) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("list volumes of pool {}", name()); }));
  std::vector<Volume> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.emplace_back(vols[i]);
  std::free(vols);
  return out;
}

Result<std::optional<Volume>> Pool::find_volume(const std::string& vol_name) const {
  virStorageVolPtr v = virStorageVolLookupByName(p_.get(), vol_name.c_str());
  if (v) return std::optional<Volume>(Volume(v));
  if (last_libvirt_code() == VIR_ERR_NO_STORAGE_VOL) return std::optional<Volume>();
  return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("look up volume {} in pool {}", vol_name, name()); }));
}

Result<Volume> Pool::create_volume(const std::string& xml) {
  virStorageVolPtr v = virStorageVolCreateXML(p_.get(), xml.c_str(), 0);
  if (!v) return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("create volume in pool {}", name()); }));
  return Volume(v);
}

// ---------------------------------------------------------------- Connection

struct Connection::ErrorSink {
  std::mutex mu;
  int code = 0;
  std::string message;

  // Called by libvirt from C: must not throw.
  static void callback(void* ud, virErrorPtr e) noexcept {
    auto* self = static_cast<ErrorSink*>(ud);
    if (!self || !e) return;
    try {
      std::lock_guard lock(self->mu);
      self->code = e->code;
      self->message = e->message ? e->message : "";
    } catch (...) {
      // Out of memory while copying a message: drop it; virGetLastError
      // still has it.
    }
  }
};

Connection::Connection(virConnectPtr c, std::string uri, std::unique_ptr<ErrorSink> sink)
    : sink_(std::move(sink)), conn_(c), uri_(std::move(uri)) {}

Connection::Connection(Connection&& o) noexcept
    : sink_(std::move(o.sink_)), conn_(std::exchange(o.conn_, nullptr)), uri_(std::move(o.uri_)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    sink_ = std::move(o.sink_);
    conn_ = std::exchange(o.conn_, nullptr);
    uri_ = std::move(o.uri_);
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  if (!conn_) return;
  // Handles may outlive this object and keep the connection alive inside
  // libvirt; detach the callback so it never sees a freed sink.
  virConnSetErrorFunc(conn_, nullptr, nullptr);
  virConnectClose(conn_);
  conn_ = nullptr;
}

Result<Connection> Connection::open(const std::string& uri, bool read_only) {
  init_libvirt_once();
  unsigned flags = read_only ? VIR_CONNECT_RO : 0;
  virConnectPtr c = virConnectOpenAuth(uri.c_str(), virConnectAuthPtrDefault, flags);
  if (!c) {
    return fail(libvirt_error(ErrorKind::Connection, [&] { return fmt::format("cannot connect to libvirt at {}", uri); })
                    .with_hint(connection_hint(uri)));
  }
  auto sink = std::make_unique<ErrorSink>();
  virConnSetErrorFunc(c, sink.get(), &ErrorSink::callback);
  spdlog::debug("connected to libvirt at {}", uri);
  return Connection(c, uri, std::move(sink));
}

std::string Connection::last_error() const {
  if (!sink_) return "";
  std::lock_guard lock(sink_->mu);
  return sink_->message;
}

Result<std::vector<Pool>> Connection::pools() const {
  virStoragePoolPtr* pools = nullptr;
  int n = virConnectListAllStoragePools(conn_, &pools, 0);
  if (n < 0) return fail(libvirt_error(ErrorKind::Storage, "list storage pools"));
  std::vector<Pool> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.emplace_back(pools[i]);
  std::free(pools);
  return out;
}

Result<std::optional<Pool>> Connection::find_pool(const std::string& name) const {
  virStoragePoolPtr p = virStoragePoolLookupByName(conn_, name.c_str());
  if (p) return std::optional<Pool>(Pool(p));
  if (last_libvirt_code() == VIR_ERR_NO_STORAGE_POOL) return std::optional<Pool>();
  return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("look up storage pool {}", name); }));
}

Result<Pool> Connection::define_pool(const std::string& xml) {
  virStoragePoolPtr p = virStoragePoolDefineXML(conn_, xml.c_str(), 0);
  if (!p) return fail(libvirt_error(ErrorKind::Storage, "define storage pool"));
  return Pool(p);
}

Result<std::optional<Volume>> Connection::find_volume_by_path(const std::string& path) const {
  virStorageVolPtr v = virStorageVolLookupByPath(conn_, path.c_str());
  if (v) return std::optional<Volume>(Volume(v));
  if (last_libvirt_code() == VIR_ERR_NO_STORAGE_VOL) return std::optional<Volume>();
  return fail(libvirt_error(ErrorKind::Storage, [&] { return fmt::format("look up volume with path {}", path); }));
}

Result<std::vector<Domain>> Connection::domains(bool include_inactive) const {
  virDomainPtr* doms = nullptr;
  unsigned flags = include_inactive ? 0 : VIR_CONNECT_LIST_DOMAINS_ACTIVE;
  int n = virConnectListAllDomains(conn_, &doms, flags);
  if (n < 0) return fail(libvirt_error(ErrorKind::Operation, "list domains"));
  std::vector<Domain> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.emplace_back(doms[i]);
  std::free(doms);
  return out;
}

Result<std::optional<Domain>> Connection::find_domain(const std::string& name) const {
  virDomainPtr d = virDomainLookupByName(conn_, name.c_str());
  if (d) return std::optional<Domain>(Domain(d));
  if (last_libvirt_code() == VIR_ERR_NO_DOMAIN) return std::optional<Domain>();
  return fail(libvirt_error(ErrorKind::Operation, [&] { return fmt::format("look up domain {}", name); }));
}

Result<Domain> Connection::define_domain(const std::string& xml) {
  virDomainPtr d = virDomainDefineXML(conn_, xml.c_str());
  if (!d) return fail(libvirt_error(ErrorKind::Operation, "define domain"));
  return Domain(d);
}

Result<std::string> Connection::hostname() const {
  char* h = virConnectGetHostname(conn_);
  if (!h) return fail(libvirt_error(ErrorKind::Connection, "get the hypervisor's host name"));
  return take_string(h);
}

}  // namespace foundry::virt
