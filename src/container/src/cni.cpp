#include "foundry/container/cni.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/subprocess.h"
#include "sigpipe.h"

namespace foundry::container {

using json = nlohmann::json;

namespace {

Error conflist_error(const std::string& file, const std::string& field, const std::string& msg,
                     const std::string& hint = "") {
  Error e(ErrorKind::Validation, fmt::format("{}: {}: {}", file, field, msg));
  e.add_diagnostic(Diagnostic{file, 0, 0, field, msg, hint});
  if (!hint.empty()) e.with_hint(hint);
  return e;
}

Result<std::string> find_plugin(const std::string& type, const CniRuntime& rt) {
  for (const auto& d : rt.plugin_dirs) {
    std::string p = d + "/" + type;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  std::string dirs;
  for (const auto& d : rt.plugin_dirs) dirs += (dirs.empty() ? "" : ":") + d;
  return fail(Error(ErrorKind::Operation, fmt::format("CNI plugin \"{}\" not found in {}", type, dirs))
                  .with_hint("install containernetworking-plugins (scripts/install-deps)"));
}

std::string plugin_dirs_path(const CniRuntime& rt) {
  std::string out;
  for (const auto& d : rt.plugin_dirs) out += (out.empty() ? "" : ":") + d;
  return out;
}

// One plugin call. The stdin document is the plugin's own object plus the
// list's name and cniVersion and, if given, prevResult.
Result<json> invoke(const std::string& command, const CniNetwork& net, const json& plugin, const CniRuntime& rt,
                    const json* prev) {
  std::string type = plugin.value("type", "");
  std::string path = FOUNDRY_TRY(find_plugin(type, rt));
  json conf = plugin;
  conf["name"] = net.name;
  conf["cniVersion"] = net.cni_version;
  if (prev && !prev->is_null()) conf["prevResult"] = *prev;
  RunOptions o;
  o.timeout = rt.timeout;
  o.stdin_data = conf.dump();
  o.extra_env = {"CNI_COMMAND=" + command,       "CNI_CONTAINERID=" + rt.container_id,
                 "CNI_NETNS=" + rt.netns,         "CNI_IFNAME=" + rt.ifname,
                 "CNI_PATH=" + plugin_dirs_path(rt), "CNI_ARGS="};
  const std::string what = fmt::format("CNI {} of network \"{}\": plugin {}", command, net.name, type);
  detail::SigpipeGuard guard;  // a plugin may fail before reading its configuration
  auto r = run({path}, o);
  if (!r) return fail(std::move(r).error().wrap(what));
  if (r->timed_out) return fail(ErrorKind::Operation, "{} did not finish within {} s", what, rt.timeout.count());
  if (!r->ok()) {
    // Plugins report errors as {"code", "msg", "details"} on stdout.
    std::string msg = r->describe();
    try {
      json err = json::parse(r->out);
      msg = err.value("msg", msg);
      if (auto d = err.value("details", std::string()); !d.empty()) msg += " (" + d + ")";
      msg = fmt::format("{} (CNI error {})", msg, err.value("code", 0));
    } catch (const json::exception&) {
    }
    return fail(Error(ErrorKind::Operation, fmt::format("{} failed: {}", what, msg)).with_detail(r->err));
  }
  if (command == "DEL" || command == "CHECK") return json(nullptr);
  try {
    return json::parse(r->out);
  } catch (const json::exception& e) {
    return fail(ErrorKind::Operation, "{} returned an unreadable result: {}", what, e.what());
  }
}

}  // namespace

Result<CniNetwork> parse_conflist(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return fail(Error(ErrorKind::Config, fmt::format("{} is not valid JSON: {}", file, e.what())));
  }
  if (!doc.is_object()) return fail(conflist_error(file, "(document)", "must be a JSON object"));
  CniNetwork n;
  n.file = file;
  n.list = doc;
  if (!doc.contains("name") || !doc["name"].is_string() || doc["name"].get<std::string>().empty())
    return fail(conflist_error(file, "name", "is required (a non-empty string)", "name the network, e.g. \"foundry\""));
  n.name = doc["name"];
  if (!doc.contains("cniVersion") || !doc["cniVersion"].is_string())
    return fail(conflist_error(file, "cniVersion", "is required", fmt::format("e.g. \"{}\"", kCniVersion)));
  n.cni_version = doc["cniVersion"];
  if (!doc.contains("plugins") || !doc["plugins"].is_array() || doc["plugins"].empty())
    return fail(conflist_error(file, "plugins", "must be a non-empty array",
                               "list the plugins, e.g. [{\"type\": \"bridge\", ...}]"));
  for (size_t i = 0; i < doc["plugins"].size(); ++i) {
    const json& p = doc["plugins"][i];
    std::string field = fmt::format("plugins[{}]", i);
    if (!p.is_object()) return fail(conflist_error(file, field, "must be an object"));
    if (!p.contains("type") || !p["type"].is_string() || p["type"].get<std::string>().empty())
      return fail(conflist_error(file, field + ".type", "is required", "the plugin's executable name, e.g. \"bridge\""));
    std::string type = p["type"];
    if (type.find('/') != std::string::npos || type == "." || type == "..")
      return fail(conflist_error(file, field + ".type", fmt::format("\"{}\" is not a plugin name", type),
                                 "plugins are looked up by name in the plugin directories"));
    n.plugins.push_back(p);
  }
  return n;
}

Result<CniNetwork> find_network(const std::string& dir, const std::string& name) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".conflist") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<std::string> names;
  for (const auto& f : files) {
    auto text = read_file(f);
    if (!text) continue;
    auto n = parse_conflist(*text, f);
    if (!n) {
      spdlog::debug("cni: skipping {}: {}", f, n.error().to_string());
      continue;
    }
    if (n->name == name) return n;
    names.push_back(n->name);
  }
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  return fail(Error(ErrorKind::Config, fmt::format("no CNI network \"{}\" in {}", name, dir))
                  .with_hint(known.empty() ? fmt::format("add a .conflist file to {}", dir)
                                           : fmt::format("networks there: {}", known)));
}

Status install_default_network(const std::string& dir) {
  if (find_network(dir, "foundry")) return ok();
  FOUNDRY_TRY(make_dirs(dir, 0755));
  json conf = {
      {"cniVersion", kCniVersion},
      {"name", "foundry"},
      {"plugins",
       {{{"type", "bridge"},
         {"bridge", "foundry0"},
         {"isGateway", true},
         {"ipMasq", true},
         {"hairpinMode", true},
         {"ipam",
          {{"type", "host-local"},
           {"routes", {{{"dst", "0.0.0.0/0"}}}},
           {"ranges", {{{{"subnet", "10.88.0.0/16"}, {"gateway", "10.88.0.1"}}}}}}}},
        {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
        {{"type", "firewall"}},
        {{"type", "tuning"}}}},
  };
  return write_file_atomic(dir + "/10-foundry.conflist", conf.dump(2) + "\n", 0644);
}

Result<json> cni_add(const CniNetwork& net, const CniRuntime& rt) {
  json prev = nullptr;
  for (size_t i = 0; i < net.plugins.size(); ++i) {
    auto r = invoke("ADD", net, net.plugins[i], rt, &prev);
    if (!r) {
      // Undo what the earlier plugins did, newest first, with what we know.
      CniNetwork done = net;
      done.plugins.assign(net.plugins.begin(), net.plugins.begin() + static_cast<long>(i));
      if (auto d = cni_del(done, rt, prev); !d) spdlog::debug("cni: rollback of {}: {}", net.name, d.error().to_string());
      return fail(std::move(r).error());
    }
    prev = *r;
  }
  return prev;
}

Status cni_del(const CniNetwork& net, const CniRuntime& rt, const json& prev_result) {
  std::optional<Error> first;
  for (auto it = net.plugins.rbegin(); it != net.plugins.rend(); ++it) {
    auto r = invoke("DEL", net, *it, rt, &prev_result);
    if (!r && !first) first = std::move(r).error();
  }
  if (first) return fail(std::move(*first));
  return ok();
}

Status cni_check(const CniNetwork& net, const CniRuntime& rt, const json& prev_result) {
  for (const auto& p : net.plugins) FOUNDRY_TRY(invoke("CHECK", net, p, rt, &prev_result));
  return ok();
}

Result<json> cni_version(const std::string& type, const CniRuntime& rt) {
  std::string path = FOUNDRY_TRY(find_plugin(type, rt));
  RunOptions o;
  o.timeout = rt.timeout;
  o.stdin_data = json{{"cniVersion", kCniVersion}}.dump();
  o.extra_env = {"CNI_COMMAND=VERSION"};
  detail::SigpipeGuard guard;
  auto r = FOUNDRY_TRY(run_checked({path}, o));
  try {
    return json::parse(r.out);
  } catch (const json::exception& e) {
    return fail(ErrorKind::Operation, "CNI plugin {} answered VERSION with unreadable JSON: {}", type, e.what());
  }
}

std::string cni_first_ipv4(const json& result) {
  if (!result.is_object() || !result.contains("ips")) return "";
  for (const auto& ip : result["ips"]) {
    std::string a = ip.value("address", "");
    if (!a.empty() && a.find(':') == std::string::npos) return a;
  }
  return "";
}

}  // namespace foundry::container
