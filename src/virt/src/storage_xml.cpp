// Pure parts of storage: volume naming, pool and volume XML, spec checks.
#include <cctype>
#include <sstream>

#include <pugixml.hpp>

#include "foundry/virt/storage.h"

namespace foundry::virt {

// ---------------------------------------------------------------- naming

std::string VolumeName::boot(std::string_view vm) { return fmt::format("{}_boot", vm); }
std::string VolumeName::data(std::string_view vm, std::string_view device) {
  return fmt::format("{}_data-{}", vm, device);
}
std::string VolumeName::cloudinit(std::string_view vm) { return fmt::format("{}_cloudinit", vm); }

std::optional<VolumeName::Parsed> VolumeName::parse(std::string_view v) {
  auto ends_with = [&](std::string_view suffix) {
    return v.size() > suffix.size() && v.substr(v.size() - suffix.size()) == suffix;
  };
  if (ends_with("_boot")) return Parsed{std::string(v.substr(0, v.size() - 5)), Role::Boot, ""};
  if (ends_with("_cloudinit")) return Parsed{std::string(v.substr(0, v.size() - 10)), Role::CloudInit, ""};
  // VM names may contain '_' and '-', device names are [a-z0-9]+; the last
  // "_data-" separates them.
  auto pos = v.rfind("_data-");
  if (pos != std::string_view::npos && pos > 0) {
    auto dev = v.substr(pos + 6);
    if (dev.empty()) return std::nullopt;
    for (char c : dev)
      if (!std::isalnum(static_cast<unsigned char>(c))) return std::nullopt;
    return Parsed{std::string(v.substr(0, pos)), Role::Data, std::string(dev)};
  }
  return std::nullopt;
}

std::string_view to_string(VolumeName::Role r) {
  switch (r) {
    case VolumeName::Role::Boot: return "boot";
    case VolumeName::Role::Data: return "data";
    case VolumeName::Role::CloudInit: return "cloudinit";
  }
  return "?";
}

// ---------------------------------------------------------------- pool types

std::string_view to_string(PoolType t) {
  switch (t) {
    case PoolType::Dir: return "dir";
    case PoolType::Logical: return "logical";
    case PoolType::Netfs: return "netfs";
    case PoolType::Zfs: return "zfs";
    case PoolType::Rbd: return "rbd";
  }
  return "?";
}

Result<PoolType> parse_pool_type(std::string_view s) {
  if (s == "dir") return PoolType::Dir;
  if (s == "logical" || s == "lvm") return PoolType::Logical;
  if (s == "netfs" || s == "nfs") return PoolType::Netfs;
  if (s == "zfs") return PoolType::Zfs;
  if (s == "rbd" || s == "ceph") return PoolType::Rbd;
  return fail(Error(ErrorKind::Validation, fmt::format("unknown pool type '{}'", s))
                  .with_hint("use one of: dir, logical, netfs, zfs, rbd"));
}

Result<PoolHost> parse_pool_host(std::string_view s) {
  PoolHost h;
  auto colon = s.rfind(':');
  // A bare IPv6 address has several colons and no port.
  if (colon != std::string_view::npos && s.find(':') == colon) {
    h.name = std::string(s.substr(0, colon));
    auto port = s.substr(colon + 1);
    int p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535)
        return fail(ErrorKind::Validation, "bad port in host '{}'", s);
      p = p * 10 + (c - '0');
    }
    if (port.empty() || p == 0 || p > 65535) return fail(ErrorKind::Validation, "bad port in host '{}'", s);
    h.port = p;
  } else {
    h.name = std::string(s);
  }
  if (h.name.empty()) return fail(ErrorKind::Validation, "empty host name in '{}'", s);
  return h;
}

Status validate_pool_name(std::string_view name) {
  bool good = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) good = false;
  if (!good)
    return fail(Error(ErrorKind::Validation, fmt::format("invalid pool name '{}'", name))
                    .with_hint("use letters, digits, '.', '_' and '-', starting with a letter or digit "
                               "(at most 64 characters)"));
  return ok();
}

namespace {

Error missing(const PoolSpec& s, std::string_view flag, std::string_view what) {
  return Error(ErrorKind::Validation,
               fmt::format("a {} pool needs {} ({})", to_string(s.type), what, flag))
      .with_hint(fmt::format("add {} to `foundry pool add {}`", flag, s.name));
}

bool absolute(const std::string& p) { return !p.empty() && p.front() == '/'; }

bool looks_like_uuid(const std::string& u) {
  if (u.size() != 36) return false;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (u[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(u[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status validate_pool_spec(const PoolSpec& s) {
  FOUNDRY_TRY(validate_pool_name(s.name));
  if (!s.path.empty() && !absolute(s.path))
    return fail(Error(ErrorKind::Validation, fmt::format("pool path '{}' is not absolute", s.path))
                    .with_hint("give --path as an absolute path, e.g. /mnt/ssd/foundry"));
  for (const auto& d : s.source_devices)
    if (!absolute(d))
      return fail(ErrorKind::Validation, "source device '{}' is not an absolute path (e.g. /dev/sdb)", d);
  switch (s.type) {
    case PoolType::Dir:
      if (s.path.empty()) return fail(missing(s, "--path", "a directory"));
      break;
    case PoolType::Logical:
      if (s.source_name.empty()) return fail(missing(s, "--source-name", "a volume group name"));
      break;
    case PoolType::Netfs: {
      if (s.hosts.empty()) return fail(missing(s, "--source-host", "the file server"));
      if (s.source_path.empty()) return fail(missing(s, "--source-path", "the exported directory"));
      if (s.path.empty()) return fail(missing(s, "--path", "a mount point"));
      static const char* formats[] = {"auto", "nfs", "glusterfs", "cifs"};
      if (!s.source_format.empty()) {
        bool known = false;
        for (auto f : formats) known = known || s.source_format == f;
        if (!known)
          return fail(Error(ErrorKind::Validation, fmt::format("unknown netfs format '{}'", s.source_format))
                          .with_hint("use one of: auto, nfs, glusterfs, cifs"));
      }
      break;
    }
    case PoolType::Zfs:
      if (s.source_name.empty()) return fail(missing(s, "--source-name", "a zpool name"));
      break;
    case PoolType::Rbd:
      if (s.source_name.empty()) return fail(missing(s, "--source-name", "a Ceph pool name"));
      if (s.hosts.empty()) return fail(missing(s, "--source-host", "at least one Ceph monitor"));
      if (s.auth_user.empty() != s.secret_uuid.empty())
        return fail(Error(ErrorKind::Validation, "cephx authentication needs both --auth-user and --secret-uuid")
                        .with_hint("define the key with `virsh secret-define` and pass its UUID"));
      if (!s.secret_uuid.empty() && !looks_like_uuid(s.secret_uuid))
        return fail(ErrorKind::Validation, "--secret-uuid '{}' is not a UUID", s.secret_uuid);
      break;
  }
  if (s.type != PoolType::Netfs && !s.source_format.empty() && s.type != PoolType::Logical)
    return fail(ErrorKind::Validation, "--source-format applies to netfs and logical pools only");
  return ok();
}

std::string pool_xml(const PoolSpec& s) {
  pugi::xml_document doc;
  auto pool = doc.append_child("pool");
  pool.append_attribute("type") = std::string(to_string(s.type)).c_str();
  pool.append_child("name").text() = s.name.c_str();

  auto add_hosts = [&](pugi::xml_node src) {
    for (const auto& h : s.hosts) {
      auto host = src.append_child("host");
      host.append_attribute("name") = h.name.c_str();
      if (h.port) host.append_attribute("port") = h.port;
    }
  };
  auto add_devices = [&](pugi::xml_node src) {
    for (const auto& d : s.source_devices) src.append_child("device").append_attribute("path") = d.c_str();
  };
  auto add_target = [&](const std::string& path, bool with_perms) {
    auto target = pool.append_child("target");
    target.append_child("path").text() = path.c_str();
    if (with_perms) target.append_child("permissions").append_child("mode").text() = "0755";
  };

  switch (s.type) {
    case PoolType::Dir:
      add_target(s.path, true);
      break;
    case PoolType::Logical: {
      auto src = pool.append_child("source");
      src.append_child("name").text() = s.source_name.c_str();
      add_devices(src);
      src.append_child("format").append_attribute("type") =
          s.source_format.empty() ? "lvm2" : s.source_format.c_str();
      add_target(s.path.empty() ? "/dev/" + s.source_name : s.path, false);
      break;
    }
    case PoolType::Netfs: {
      auto src = pool.append_child("source");
      add_hosts(src);
      src.append_child("dir").append_attribute("path") = s.source_path.c_str();
      src.append_child("format").append_attribute("type") =
          s.source_format.empty() ? "nfs" : s.source_format.c_str();
      add_target(s.path, true);
      break;
    }
    case PoolType::Zfs: {
      auto src = pool.append_child("source");
      src.append_child("name").text() = s.source_name.c_str();
      add_devices(src);
      break;
    }
    case PoolType::Rbd: {
      auto src = pool.append_child("source");
      src.append_child("name").text() = s.source_name.c_str();
      add_hosts(src);
      if (!s.auth_user.empty()) {
        auto auth = src.append_child("auth");
        auth.append_attribute("type") = "ceph";
        auth.append_attribute("username") = s.auth_user.c_str();
        auth.append_child("secret").append_attribute("uuid") = s.secret_uuid.c_str();
      }
      break;
    }
  }
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
  return out.str();
}

// ---------------------------------------------------------------- volumes

std::string_view to_string(VolumeFormat f) { return f == VolumeFormat::Qcow2 ? "qcow2" : "raw"; }

std::string volume_xml(const VolumeSpec& s) {
  pugi::xml_document doc;
  auto vol = doc.append_child("volume");
  vol.append_child("name").text() = s.name.c_str();
  auto cap = vol.append_child("capacity");
  cap.append_attribute("unit") = "bytes";
  cap.text() = static_cast<unsigned long long>(s.capacity);
  auto alloc = vol.append_child("allocation");
  alloc.append_attribute("unit") = "bytes";
  alloc.text() = static_cast<unsigned long long>(s.allocation);
  auto target = vol.append_child("target");
  target.append_child("format").append_attribute("type") = std::string(to_string(s.format)).c_str();
  if (s.backing) {
    auto bs = vol.append_child("backingStore");
    bs.append_child("path").text() = s.backing->path.c_str();
    bs.append_child("format").append_attribute("type") = std::string(to_string(s.backing->format)).c_str();
  }
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
  return out.str();
}

}  // namespace foundry::virt
