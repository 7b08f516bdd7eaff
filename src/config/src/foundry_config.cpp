// config.yaml and the layering of flags, environment, files and defaults.
#include "foundry/config/foundry_config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "foundry/common/file.h"
#include "foundry/config/rules.h"
#include "yaml_reader.h"

namespace foundry::config {

namespace {

using detail::Field;
using detail::Reader;
using detail::Value;

constexpr std::array<std::string_view, 7> kKeys = {"uri",         "vm_pool",  "image_pool",   "storage_path",
                                                   "accelerator", "firmware", "firmware_path"};
constexpr std::array<std::string_view, 2> kAccelerators = {"kvm", "qemu"};
constexpr std::array<std::string_view, 2> kFirmwares = {"uefi", "bios"};

RuleCheck check_uri(std::string_view u) {
  // scheme ":" rest, as libvirt URIs are: qemu:///system, qemu+ssh://h/system, test:///default.
  size_t colon = u.find(':');
  bool scheme_ok = colon != std::string_view::npos && colon > 0 && u[0] >= 'a' && u[0] <= 'z';
  for (size_t i = 0; scheme_ok && i < colon; ++i) {
    char c = u[i];
    scheme_ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  }
  if (!scheme_ok || colon + 1 >= u.size())
    return RuleViolation{fmt::format("\"{}\" is not a libvirt URI", u.substr(0, 60)),
                         "write e.g. qemu:///system, qemu:///session or qemu+ssh://host/system"};
  for (char c : u)
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0')
      return RuleViolation{"the libvirt URI contains whitespace", "write e.g. qemu:///system"};
  return std::nullopt;
}

RuleCheck check_directory(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  return check_absolute_path(p);
}

// Checks one value for key `key` the same way whether it came from a file or
// the environment; returns a message+hint when it is bad.
RuleCheck check_value(std::string_view key, std::string_view value) {
  if (key == "uri") return check_uri(value);
  if (key == "vm_pool" || key == "image_pool") return check_pool_name(value);
  if (key == "storage_path") return check_directory(value);
  if (key == "firmware_path") return check_absolute_path(value);
  return std::nullopt;
}

std::string strip_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// The optional<string> member for `key` (const or not); nullptr for the
// enum-valued keys.
template <typename V>
auto string_slot(V& v, std::string_view key) -> decltype(&v.uri) {
  if (key == "uri") return &v.uri;
  if (key == "vm_pool") return &v.vm_pool;
  if (key == "image_pool") return &v.image_pool;
  if (key == "storage_path") return &v.storage_path;
  if (key == "firmware_path") return &v.firmware_path;
  return nullptr;
}

std::string env_name(std::string_view key) {
  std::string out = "FOUNDRY_";
  for (char c : key) out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return out;
}

}  // namespace

std::string_view to_string(OriginKind k) {
  switch (k) {
    case OriginKind::Default: return "default";
    case OriginKind::SystemFile: return "system config file";
    case OriginKind::UserFile: return "user config file";
    case OriginKind::Env: return "environment";
    case OriginKind::Flag: return "command-line flag";
  }
  return "default";
}

std::string Origin::describe() const { return source.empty() ? std::string(to_string(kind)) : source; }

Result<ConfigValues> load_config_yaml(const std::string& text, const std::string& name) {
  Reader r(name);
  ConfigValues out;
  auto root = r.parse(text, "examples/config.yaml");
  if (!root) return fail(std::move(r).to_error(ErrorKind::Config));
  auto m = r.mapping(Value{*root, detail::pos_of(*root, {1, 1}), ""}, kKeys, "the Foundry configuration file");
  if (m) {
    for (const Field& f : m->fields) {
      if (f.key == "accelerator") {
        if (auto i = r.choice(f.value, kAccelerators)) out.accelerator = *i == 0 ? Accelerator::Kvm : Accelerator::Qemu;
        continue;
      }
      if (f.key == "firmware") {
        if (auto i = r.choice(f.value, kFirmwares)) out.firmware = *i == 0 ? Firmware::Uefi : Firmware::Bios;
        continue;
      }
      auto s = r.string(f.value);
      if (!s) continue;
      if (auto bad = check_value(f.key, *s)) {
        r.error(f.value.pos, f.value.path, bad->message, bad->hint);
        continue;
      }
      *string_slot(out, f.key) = f.key == "storage_path" ? strip_trailing_slashes(*s) : *s;
    }
  }
  if (r.has_errors()) return fail(std::move(r).to_error(ErrorKind::Config));
  return out;
}

Result<ConfigValues> load_config_file(const std::string& path) {
  return detail::load_document_file(path, "load Foundry config", load_config_yaml);
}

ConfigEnvironment ConfigEnvironment::from_process() {
  ConfigEnvironment e;
  e.getenv = [](std::string_view name) -> std::optional<std::string> {
    const char* v = ::getenv(std::string(name).c_str());
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
  if (auto xdg = e.getenv("XDG_CONFIG_HOME"); xdg && xdg->front() == '/')
    e.user_file = *xdg + "/foundry/config.yaml";
  else if (auto home = e.getenv("HOME"))
    e.user_file = *home + "/.config/foundry/config.yaml";
  if (auto f = e.getenv("FOUNDRY_CONFIG")) e.explicit_file = *f;
  return e;
}

ConfigEnvironment ConfigEnvironment::from_map(std::vector<std::pair<std::string, std::string>> vars) {
  ConfigEnvironment e;
  std::map<std::string, std::string, std::less<>> m(vars.begin(), vars.end());
  e.getenv = [m = std::move(m)](std::string_view name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  e.system_file.clear();
  return e;
}

namespace {

// Applies one layer's values over `cfg`, recording their origin.
void apply_layer(FoundryConfig& cfg, const ConfigValues& v, Origin origin) {
  auto set = [&](const std::optional<std::string>& from, std::string& to, Origin& o) {
    if (!from) return;
    to = *from;
    o = origin;
  };
  set(v.uri, cfg.uri, cfg.uri_origin);
  set(v.vm_pool, cfg.vm_pool, cfg.vm_pool_origin);
  set(v.image_pool, cfg.image_pool, cfg.image_pool_origin);
  set(v.storage_path, cfg.storage_path, cfg.storage_path_origin);
  set(v.firmware_path, cfg.firmware_path, cfg.firmware_path_origin);
  if (v.accelerator) {
    cfg.accelerator = *v.accelerator;
    cfg.accelerator_origin = origin;
  }
  if (v.firmware) {
    cfg.firmware = *v.firmware;
    cfg.firmware_origin = origin;
  }
}

// Reads a config file layer; a missing file is no layer at all unless
// `must_exist`.
Result<std::optional<ConfigValues>> read_layer(const std::string& path, bool must_exist) {
  auto text = read_file(path);
  if (!text) {
    if (!must_exist && text.error().sys_errno() == ENOENT) return std::optional<ConfigValues>{};
    return fail(std::move(text).error().with_hint("check the path and its permissions").wrap("load Foundry config"));
  }
  auto v = FOUNDRY_TRY(load_config_yaml(*text, path));
  return std::optional<ConfigValues>{std::move(v)};
}

}  // namespace

Result<FoundryConfig> resolve_config(const ConfigValues& flags, const ConfigEnvironment& env) {
  FoundryConfig cfg;
  std::vector<std::pair<std::string, OriginKind>> files;
  if (!env.explicit_file.empty()) {
    files.emplace_back(env.explicit_file, OriginKind::UserFile);
  } else {
    if (!env.system_file.empty()) files.emplace_back(env.system_file, OriginKind::SystemFile);
    if (!env.user_file.empty()) files.emplace_back(env.user_file, OriginKind::UserFile);
  }
  for (const auto& [path, kind] : files) {
    auto layer = FOUNDRY_TRY(read_layer(path, !env.explicit_file.empty()));
    if (!layer) continue;
    apply_layer(cfg, *layer, Origin{kind, path});
    cfg.files_read.push_back(path);
  }

  // Environment: one FOUNDRY_<KEY> per key, checked like file values.
  Reader r("environment");
  ConfigValues from_env;
  if (env.getenv) {
    for (auto key : kKeys) {
      std::string var = env_name(key);
      auto val = env.getenv(var);
      if (!val) continue;
      if (key == "accelerator" || key == "firmware") {
        const auto& choices = key == "accelerator" ? kAccelerators : kFirmwares;
        auto it = std::find(choices.begin(), choices.end(), *val);
        if (it == choices.end()) {
          auto near = closest_match(*val, choices);
          r.error({}, var, fmt::format("\"{}\" is not one of {}, {}", *val, choices[0], choices[1]),
                  near ? fmt::format("did you mean {}?", *near) : fmt::format("unset it or write {}", choices[0]));
          continue;
        }
        bool first = it == choices.begin();
        if (key == "accelerator") from_env.accelerator = first ? Accelerator::Kvm : Accelerator::Qemu;
        else from_env.firmware = first ? Firmware::Uefi : Firmware::Bios;
        continue;
      }
      if (auto bad = check_value(key, *val)) {
        r.error({}, var, bad->message, bad->hint);
        continue;
      }
      *string_slot(from_env, key) = key == "storage_path" ? strip_trailing_slashes(*val) : *val;
    }
  }
  if (r.has_errors()) return fail(std::move(r).to_error(ErrorKind::Config));
  // Each value carries the variable it came from.
  for (auto key : kKeys) {
    ConfigValues one;
    if (key == "accelerator") one.accelerator = from_env.accelerator;
    else if (key == "firmware") one.firmware = from_env.firmware;
    else *string_slot(one, key) = *string_slot(from_env, key);
    apply_layer(cfg, one, Origin{OriginKind::Env, env_name(key)});
  }

  // Flags come from CLI11 and are checked here like everything else.
  Reader fr("command line");
  for (auto key : kKeys) {
    if (key == "accelerator" || key == "firmware") continue;
    const auto& v = *string_slot(flags, key);
    if (!v) continue;
    if (auto bad = check_value(key, *v)) fr.error({}, std::string(key), bad->message, bad->hint);
  }
  if (fr.has_errors()) return fail(std::move(fr).to_error(ErrorKind::Config));
  ConfigValues f = flags;
  if (f.storage_path) f.storage_path = strip_trailing_slashes(*f.storage_path);
  apply_layer(cfg, f, Origin{OriginKind::Flag, ""});
  return cfg;
}

void apply_site_config(VmConfig& vm, const FoundryConfig& site) {
  // The file's own setting wins unless a flag on this very command says
  // otherwise: the flag is the most specific statement of intent.
  auto site_wins = [](bool set_in_file, const Origin& o) { return o.kind == OriginKind::Flag || !set_in_file; };
  if (site_wins(vm.storage_pool_set, site.vm_pool_origin)) vm.storage_pool = site.vm_pool;
  if (site_wins(vm.accelerator_set, site.accelerator_origin)) vm.accelerator = site.accelerator;
  if (site_wins(vm.firmware_set, site.firmware_origin)) vm.firmware = site.firmware;
  if (vm.firmware == Firmware::Uefi && !site.firmware_path.empty() &&
      site_wins(!vm.firmware_path.empty(), site.firmware_path_origin))
    vm.firmware_path = site.firmware_path;
}

}  // namespace foundry::config
