#include "foundry/platform/cluster_build.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "foundry/cloudinit/cloudinit.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/subprocess.h"
#include "foundry/net/ip.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/disk_image.h"
#include "fs_util.h"

namespace foundry::platform {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::emit;
using detail::since;
using K = ProgressEvent::Kind;

std::string bare_name(const std::string& pkg) {
  size_t cut = pkg.find_first_of("=/");
  return cut == std::string::npos ? pkg : pkg.substr(0, cut);
}

std::string b64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The Foundry binaries to put into the node OS.
std::vector<std::string> default_binaries() {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return out;
  out.push_back(self.string());
  // Installed: siblings in one bin directory. Build tree: build/src/cli/foundry,
  // build/src/daemon/foundryd, build/src/agent/foundry-agent.
  for (const auto& [name, rel] : {std::pair{"foundryd", "../daemon/foundryd"},
                                  std::pair{"foundry-agent", "../agent/foundry-agent"}}) {
    for (const fs::path& p : {self.parent_path() / name, self.parent_path() / rel})
      if (fs::is_regular_file(p, ec)) {
        out.push_back(fs::weakly_canonical(p, ec).string());
        break;
      }
  }
  return out;
}

// Debian packages that provide the shared libraries of `binaries` (ldd, then
// dpkg -S on the path as is and below /usr: Debian 12 is merged-/usr, dpkg
// knows /usr/lib/... while ldd prints /lib/...).
std::vector<std::string> library_packages(const std::vector<std::string>& binaries) {
  std::set<std::string> libs;
  for (const auto& b : binaries) {
    auto r = run({"ldd", b});
    if (!r || !r->ok()) continue;
    std::istringstream in(r->out);
    std::string line;
    while (std::getline(in, line)) {
      auto arrow = line.find("=> /");
      if (arrow == std::string::npos) continue;
      std::string path = line.substr(arrow + 3);
      path = path.substr(0, path.find(' '));
      libs.insert(path);
    }
  }
  if (libs.empty()) return {};
  // One dpkg-query for every path (each call reads the whole file database:
  // one per library cost ~20 s for ~120 libraries under load). Paths it
  // does not know make it exit 1 but it still prints the ones it does.
  std::vector<std::string> argv = {"dpkg-query", "-S"};
  for (const auto& l : libs) {
    argv.push_back(l);
    argv.push_back("/usr" + l);
  }
  std::map<std::string, std::string> owner;  // path -> package
  if (auto r = run(argv)) {
    std::istringstream in(r->out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("diversion ", 0) == 0) continue;
      auto sep = line.find(": /");
      if (sep == std::string::npos) continue;
      std::string name = line.substr(0, sep);
      name = name.substr(0, name.find(':'));  // "libc6:amd64" -> "libc6"
      if (!name.empty() && name.find(',') == std::string::npos) owner[line.substr(sep + 2)] = name;
    }
  }
  std::set<std::string> pkgs;
  for (const auto& l : libs) {
    if (auto it = owner.find(l); it != owner.end()) pkgs.insert(it->second);
    else if (auto it2 = owner.find("/usr" + l); it2 != owner.end()) pkgs.insert(it2->second);
  }
  return {pkgs.begin(), pkgs.end()};
}

Result<std::vector<AptSource>> read_sources_file(const std::string& path) {
  auto text = FOUNDRY_TRY_CTX(read_file(path), "read --sources file");
  bool deb822 = path.ends_with(".sources") || text.find("Types:") != std::string::npos ||
                text.find("URIs:") != std::string::npos;
  auto parsed = deb822 ? FOUNDRY_TRY(parse_deb822_sources(text, path)) : FOUNDRY_TRY(parse_one_line_sources(text, path));
  std::vector<AptSource> out;
  for (auto& s : parsed)
    if (std::find(s.types.begin(), s.types.end(), "deb") != s.types.end()) {
      s.types = {"deb"};
      out.push_back(std::move(s));
    }
  if (out.empty())
    return fail(Error(ErrorKind::Config, fmt::format("{} has no binary (deb) apt source", path))
                    .with_hint("list at least one 'deb' entry"));
  return out;
}

// An --offline build installs from a flat repository made of the package
// cache: dpkg-scanpackages writes its index, apt reads it through file://.
Result<std::vector<AptSource>> offline_sources(const std::string& cache_dir) {
  std::error_code ec;
  std::string abs = fs::absolute(cache_dir, ec).string();
  bool any = false;
  for (const auto& e : fs::directory_iterator(abs, ec))
    if (e.path().extension() == ".deb") any = true;
  if (!any)
    return fail(Error(ErrorKind::Config, fmt::format("--offline: the package cache {} has no .deb files", abs))
                    .with_hint("run one build with network access first (it fills the cache), or give --cache"));
  if (find_program("dpkg-scanpackages").empty())
    return fail(Error(ErrorKind::Operation, "--offline needs dpkg-scanpackages")
                    .with_hint("install dpkg-dev (scripts/install-deps)"));
  RunOptions ro;
  ro.cwd = abs;
  ro.timeout = std::chrono::minutes(5);
  auto r = FOUNDRY_TRY_CTX(run_checked({"dpkg-scanpackages", "--multiversion", ".", "/dev/null"}, ro),
                           "--offline: index the package cache {}", abs);
  FOUNDRY_TRY(write_file_atomic(abs + "/Packages", r.out, 0644));
  AptSource s;
  s.types = {"deb"};
  // copy://, not file://: apt copies each .deb into the new root's archive
  // directory, so nothing has to be mounted into it.
  s.uris = {"copy://" + abs};
  s.suites = {"./"};
  s.options = {{"Trusted", "yes"}};
  s.origin = abs + "/Packages";
  return std::vector<AptSource>{s};
}

// Walks the tree and sets the mtime of everything newer than `epoch` to it,
// without following links (the disk stage clamps again; this keeps the files
// Foundry adds stable for anything reading the tree itself).
void clamp_tree_times(const std::string& root, int64_t epoch) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) == 0 && st.st_mtime > epoch)
      (void)detail::set_times(it->path().string(), epoch);
  }
}

std::string hex_digest(const unsigned char* md, unsigned n);

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return hex_digest(md, n);
}

std::string hex_digest(const unsigned char* md, unsigned n) {
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

// The artifacts written so far. Their checksums run on a background thread,
// one file after the other in the order recorded, while the next artifacts
// are written: hashing ~14 GiB (three disk formats, the 6 GiB recovery key)
// took 35 s of a 400 s cold build when done in line.
struct Staging {
  std::string root;  // OUT/.tmp-build-XXXX
  std::vector<ArtifactRecord> artifacts;
  std::chrono::milliseconds waited{0};  // time spent waiting for checksums

  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  // Never leaves a thread reading a file that is about to be removed.
  ~Staging() {
    for (auto& [path, f] : pending_)
      if (f.valid()) f.wait();
  }

  Status record(const std::string& rel, const std::string& kind) {
    std::error_code ec;
    ArtifactRecord a;
    a.path = rel;
    a.kind = kind;
    a.size = fs::file_size(root + "/" + rel, ec);
    if (ec) return fail(ErrorKind::Storage, "artifact {}/{} is missing: {}", root, rel, ec.message());
    artifacts.push_back(std::move(a));
    auto done = std::make_shared<std::promise<void>>();
    std::shared_future<void> prev = last_;
    last_ = done->get_future().share();
    pending_.emplace_back(rel, std::async(std::launch::async, [path = root + "/" + rel, prev, done] {
                            if (prev.valid()) prev.wait();
                            auto r = sha256_file(path);
                            done->set_value();
                            return r;
                          }));
    return ok();
  }

  // Waits for every checksum started so far and fills them in.
  Status settle() {
    const auto t = Clock::now();
    for (auto& [path, f] : pending_) {
      if (!f.valid()) continue;
      auto r = f.get();
      if (!r) return fail(std::move(r.error()));
      for (auto& a : artifacts)
        if (a.path == path) a.sha256 = *r;
    }
    waited += since(t);
    return ok();
  }

 private:
  std::vector<std::pair<std::string, std::future<Result<std::string>>>> pending_;
  std::shared_future<void> last_;
};

}  // namespace

std::vector<std::string> node_os_packages() {
  return {
      "wireguard-tools",  // wg: the node agent configures the mesh with it (the kernel has WireGuard)
      "nftables",         // the node's packet filter
      "openssl",          // inspect the node certificate on the node
  };
}

PackageAvailability apt_cache_availability() {
  return [](const std::vector<std::string>& names) -> Result<std::set<std::string>> {
    std::set<std::string> out;
    if (names.empty()) return out;
    std::vector<std::string> argv = {"apt-cache", "policy"};
    for (const auto& n : names) argv.push_back(bare_name(n));
    RunOptions ro;
    ro.timeout = std::chrono::seconds(60);
    ro.extra_env = {"LC_ALL=C"};
    auto r = FOUNDRY_TRY_CTX(run(argv, ro), "check packages with apt-cache");
    // "NAME:" starts a stanza, "  Candidate: V" says whether it installs;
    // names apt does not know at all print no stanza.
    std::istringstream in(r.out);
    std::string line, current;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] != ' ' && line.back() == ':') {
        current = line.substr(0, line.size() - 1);
      } else if (line.rfind("  Candidate: ", 0) == 0 && !current.empty()) {
        if (line.substr(13) != "(none)") out.insert(current);
      }
    }
    return out;
  };
}

PackageAvailability deb_cache_availability(const std::string& cache_dir) {
  return [cache_dir](const std::vector<std::string>&) -> Result<std::set<std::string>> {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
      if (e.path().extension() != ".deb") continue;
      std::string f = e.path().filename().string();
      out.insert(f.substr(0, f.find('_')));
    }
    return out;
  };
}

Status check_cluster_packages(const config::ClusterConfig& c, const PackageAvailability& available) {
  std::vector<std::string> names;
  for (const auto& p : c.os.packages) names.push_back(bare_name(p.name));
  auto have = FOUNDRY_TRY(available(names));
  std::vector<Diagnostic> diags;
  for (size_t i = 0; i < c.os.packages.size(); ++i) {
    const auto& p = c.os.packages[i];
    if (have.count(bare_name(p.name))) continue;
    Diagnostic d;
    d.file = c.source_file;
    d.line = p.pos.line;
    d.column = p.pos.column;
    d.field = fmt::format("os.packages[{}]", i);
    d.message = fmt::format("package {} is not in the apt sources for {}", bare_name(p.name), c.os.release);
    d.hint = "check the spelling (apt-cache search NAME), the component (main/contrib/non-free) of the sources, or "
             "run apt-get update";
    diags.push_back(std::move(d));
  }
  if (diags.empty()) return ok();
  Error e(ErrorKind::Validation,
          fmt::format("{}: {} package(s) cannot be installed", c.source_file, diags.size()));
  for (auto& d : diags) e.add_diagnostic(std::move(d));
  return fail(std::move(e));
}

Result<config::ClusterConfig> validate_cluster(const std::string& path, const PackageAvailability& available) {
  auto c = FOUNDRY_TRY(config::load_cluster_file(path));
  if (available) FOUNDRY_TRY(check_cluster_packages(c, available));
  return c;
}

Result<std::string> sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Error(ErrorKind::Storage, fmt::format("read {} for its checksum", path)));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  return hex_digest(md, n);
}

std::string node_agent_script() {
  return R"(#!/bin/sh
# Foundry node agent (docs/platform.md, "The node OS"). Brings up the
# WireGuard mesh from the node's config drive (cloud-init wrote
# /etc/foundry/*), then reports readiness on the console.
set -u
conf=/etc/foundry
mesh=none
if [ -r "$conf/node.env" ] && [ -r "$conf/wg0.conf" ]; then
  . "$conf/node.env"
  if ip link show "$FOUNDRY_MESH_IF" >/dev/null 2>&1 || ip link add "$FOUNDRY_MESH_IF" type wireguard; then
    if wg setconf "$FOUNDRY_MESH_IF" "$conf/wg0.conf" &&
       ip address replace "$FOUNDRY_MESH_ADDRESS" dev "$FOUNDRY_MESH_IF" &&
       ip link set "$FOUNDRY_MESH_IF" up; then
      mesh="$FOUNDRY_MESH_IF $FOUNDRY_MESH_ADDRESS"
    else
      echo "foundry-node: mesh $FOUNDRY_MESH_IF could not be configured" >&2
    fi
  fi
fi
echo ")" + std::string(kNodeReadyLine) + R"("
echo "foundry-node: host $(hostname), mesh $mesh"
)";
}

std::string node_agent_unit() {
  return R"([Unit]
Description=Foundry node agent (mesh from the config drive, readiness on the console)
After=network.target cloud-init.service systemd-networkd.service
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/foundry/foundry-node
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
)";
}

std::string node_mesh_conf(const config::ClusterConfig& c, const ClusterIdentity& id, const std::string& node) {
  const auto& self = id.nodes.at(node);
  std::string out = fmt::format("[Interface]\nPrivateKey = {}\nListenPort = {}\n", self.wireguard.private_key,
                                c.mesh.port);
  for (const auto& n : c.nodes) {
    if (n.name == node) continue;
    out += fmt::format("\n# {}\n[Peer]\nPublicKey = {}\nAllowedIPs = {}/32\nEndpoint = {}:{}\nPersistentKeepalive = 25\n",
                       n.name, id.nodes.at(n.name).wireguard.public_key, n.mesh_address.to_string(),
                       n.address.addr.to_string(), c.mesh.port);
  }
  return out;
}

namespace {

// The NoCloud seed of one node: host name, SSH keys, address, and the
// node's identity and mesh files (private keys: the drive is 0600).
Result<std::vector<uint8_t>> node_config_drive(const config::ClusterConfig& c, const ClusterIdentity& id,
                                               const config::ClusterNode& n, int64_t epoch) {
  config::VmConfig vm;
  vm.name = n.name;
  config::CloudInit ci;
  ci.fqdn = n.name + "." + c.name;
  ci.hostname = n.name;
  ci.ssh_keys = c.ssh_keys;
  vm.cloud_init = ci;
  cloudinit::GenerateOptions go;
  go.source_date_epoch = epoch;
  auto docs = FOUNDRY_TRY(cloudinit::generate(vm, go));
  const auto& ni = id.nodes.at(n.name);
  std::string env = fmt::format("FOUNDRY_CLUSTER={}\nFOUNDRY_NODE={}\nFOUNDRY_ROLE={}\nFOUNDRY_MESH_IF={}\n"
                                "FOUNDRY_MESH_ADDRESS={}/{}\n",
                                c.name, n.name, config::to_string(n.role), c.mesh.interface,
                                n.mesh_address.to_string(), c.mesh.cidr.prefix);
  struct F {
    const char* path;
    std::string content;
    const char* mode;
  };
  std::vector<F> files = {
      {"/etc/foundry/ca.crt", id.ca_cert_pem, "0644"},
      {"/etc/foundry/node.crt", ni.cert_pem, "0644"},
      {"/etc/foundry/node.key", ni.key_pem, "0600"},
      {"/etc/foundry/wg0.conf", node_mesh_conf(c, id, n.name), "0600"},
      {"/etc/foundry/node.env", env, "0644"},
  };
  docs.user_data += "write_files:\n";
  for (const auto& f : files)
    docs.user_data += fmt::format("  - path: {}\n    owner: root:root\n    permissions: '{}'\n    encoding: b64\n"
                                  "    content: {}\n",
                                  f.path, f.mode, b64(f.content));
  // Matched by name, not by MAC: the node may run on any substrate.
  docs.network_config = "version: 2\nethernets:\n  uplink:\n    match:\n      name: \"e*\"\n    addresses:\n      - " +
                        n.address.to_string() + "\n";
  if (n.has_gateway)
    docs.network_config += "    routes:\n      - to: \"0.0.0.0/0\"\n        via: " + n.gateway.to_string() + "\n";
  return cloudinit::build_cloud_init_iso(docs, epoch);
}

Status install_binaries(const std::string& root, const std::vector<std::string>& binaries, int64_t epoch) {
  FOUNDRY_TRY(make_dirs(root + "/usr/lib/foundry/bin"));
  for (const auto& b : binaries) {
    auto data = FOUNDRY_TRY_CTX(read_file(b), "node OS: read Foundry binary");
    std::string name = fs::path(b).filename().string();
    FOUNDRY_TRY(detail::write_in_root(root, "usr/lib/foundry/bin/" + name, data, 0755, epoch));
    FOUNDRY_TRY(detail::symlink_in_root(root, "usr/bin/" + name, "../lib/foundry/bin/" + name));
  }
  return ok();
}

// The node's own apt sources: the ones a networked build uses, whatever the
// build itself installed from (an --offline build's copy:// repository must
// not end up in the image, and online and offline builds then agree).
Status write_image_sources(const std::string& root, const std::vector<AptSource>& sources, int64_t epoch) {
  if (sources.empty()) return ok();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/etc/apt/sources.list.d", ec))
    FOUNDRY_TRY(detail::remove_in_root(root, "etc/apt/sources.list.d/" + e.path().filename().string()));
  FOUNDRY_TRY(detail::remove_in_root(root, "etc/apt/sources.list"));
  return detail::write_in_root(root, "etc/apt/sources.list.d/debian.sources", to_deb822(sources), 0644, epoch);
}

Status write_node_os(const std::string& root, const config::ClusterConfig& c, const ClusterIdentity& id,
                     const std::vector<std::string>& binaries, int64_t epoch) {
  FOUNDRY_TRY(install_binaries(root, binaries, epoch));
  FOUNDRY_TRY(detail::write_in_root(root, "usr/lib/foundry/foundry-node", node_agent_script(), 0755, epoch));
  FOUNDRY_TRY(detail::write_in_root(root, "usr/lib/systemd/system/foundry-node.service", node_agent_unit(), 0644,
                                    epoch));
  FOUNDRY_TRY(make_dirs(root + "/etc/systemd/system/multi-user.target.wants"));
  FOUNDRY_TRY(detail::symlink_in_root(root, "etc/systemd/system/multi-user.target.wants/foundry-node.service",
                                      "/usr/lib/systemd/system/foundry-node.service"));
  // Public cluster facts every node may know: the trust anchor and the
  // nodes' mesh identities. Nothing node-specific and nothing secret: one
  // image serves every node; the config drive says which node it is.
  FOUNDRY_TRY(make_dirs(root + "/etc/foundry"));
  FOUNDRY_TRY(detail::write_in_root(root, "etc/foundry/cluster-ca.crt", id.ca_cert_pem, 0644, epoch));
  nlohmann::ordered_json j;
  j["cluster"] = c.name;
  j["mesh"] = {{"cidr", c.mesh.cidr.to_string()}, {"port", c.mesh.port}, {"interface", c.mesh.interface}};
  j["nodes"] = nlohmann::ordered_json::array();
  for (const auto& n : c.nodes)
    j["nodes"].push_back({{"name", n.name},
                          {"role", std::string(config::to_string(n.role))},
                          {"address", n.address.to_string()},
                          {"mesh_address", n.mesh_address.to_string()},
                          {"wireguard_public_key", id.nodes.at(n.name).wireguard.public_key}});
  FOUNDRY_TRY(detail::write_in_root(root, "etc/foundry/cluster.json", j.dump(2) + "\n", 0644, epoch));
  clamp_tree_times(root + "/etc/foundry", epoch);
  clamp_tree_times(root + "/usr/lib/foundry", epoch);
  return ok();
}

// Moves every entry of the staging directory into OUT, manifest.json last.
Status publish(const std::string& staging, const std::string& out) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(staging, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  auto it = std::find(names.begin(), names.end(), "manifest.json");
  if (it != names.end()) {
    names.erase(it);
    names.push_back("manifest.json");
  }
  // The old manifest goes first: for a moment OUT has no complete build,
  // never a mix that looks complete.
  fs::remove(out + "/manifest.json", ec);
  for (const auto& n : names) {
    std::string dst = out + "/" + n;
    if (fs::exists(dst, ec)) FOUNDRY_TRY_CTX(detail::remove_tree(dst), "publish build: replace {}", dst);
    if (::rename((staging + "/" + n).c_str(), dst.c_str()) != 0)
      return fail_errno(ErrorKind::Storage, "publish build: move {} into {}", n, out);
  }
  return ok();
}

}  // namespace

Result<ClusterBuildResult> build_cluster(const ClusterBuildOptions& o) {
  const auto t0 = Clock::now();
  auto t = t0;
  const ProgressFn& pf = o.progress;
  if (o.output_dir.empty()) return fail(ErrorKind::Config, "platform build: no output directory given (-o DIR)");

  // Stage: validate. Everything that can be wrong with the inputs is found
  // before any work starts.
  emit(pf, K::Begin, "validate", "cluster file, packages, sources");
  PackageAvailability avail = o.availability;
  if (!avail) avail = o.offline ? deb_cache_availability(o.cache_dir) : apt_cache_availability();
  auto c = FOUNDRY_TRY(validate_cluster(o.cluster_file, avail));
  // image_sources: what the nodes' apt uses (and what the manifest names);
  // sources: what this build installs from.
  std::vector<AptSource> image_sources;
  if (!o.sources_file.empty()) image_sources = FOUNDRY_TRY(read_sources_file(o.sources_file));
  else
    image_sources = select_sources_for_suite(
        FOUNDRY_TRY_CTX(read_apt_sources(o.etc_apt), "read the build machine's apt sources"), c.os.release);
  std::vector<AptSource> sources = image_sources;
  if (o.offline) sources = FOUNDRY_TRY(offline_sources(o.cache_dir));
  std::optional<int64_t> epoch = detail::epoch_or_env(o.source_date_epoch);
  if (!epoch) {
    struct stat st{};
    if (::stat(o.cluster_file.c_str(), &st) == 0) epoch = static_cast<int64_t>(st.st_mtime);
  }
  std::vector<std::string> binaries = o.binaries.empty() ? default_binaries() : o.binaries;
  for (const auto& b : binaries)
    if (::access(b.c_str(), R_OK) != 0)
      return fail_errno(ErrorKind::Config, "platform build: Foundry binary {}", b);
  if (::geteuid() != 0)
    return fail(Error(ErrorKind::Operation, "platform build: needs root")
                    .with_hint("mmdebstrap's root mode creates files owned by other users and chroots; run as root"));
  emit(pf, K::End, "validate",
       fmt::format("{}: {} nodes, {} extra packages, targets {}", c.name, c.nodes.size(), c.os.packages.size(),
                   [&] {
                     std::string s;
                     for (auto tg : c.targets) s += (s.empty() ? "" : ",") + std::string(config::to_string(tg));
                     return s;
                   }()),
       since(t));

  std::error_code ec;
  FOUNDRY_TRY_CTX(make_dirs(o.output_dir), "platform build: output directory");
  const std::string out = fs::absolute(o.output_dir, ec).string();
  auto staging_dir = FOUNDRY_TRY_CTX(detail::TempDir::create(out, ".tmp-build-"), "platform build");
  ::chmod(staging_dir.path().c_str(), 0755);
  Staging st;
  st.root = staging_dir.path();

  // Stage: identity.
  t = Clock::now();
  emit(pf, K::Begin, "identity", "cluster CA, node certificates, WireGuard keys");
  IdentityOptions io;
  io.secrets_dir = o.secrets_dir.empty() ? out + "/secrets" : o.secrets_dir;
  io.not_before = *epoch;
  auto id = FOUNDRY_TRY_CTX(ensure_identity(c, io), "platform build");
  emit(pf, K::End, "identity",
       fmt::format("CA + {} nodes (secrets in {}: {} key(s) made, the rest reused)", c.nodes.size(), io.secrets_dir,
                   id.generated.size()),
       since(t));

  // Stage: rootfs.
  RootfsOptions ro;
  ro.target = st.root + "/rootfs";
  ro.suite = c.os.release;
  ro.packages = default_base_packages();
  for (const auto& p : node_os_packages()) ro.packages.push_back(p);
  for (const auto& p : library_packages(binaries)) ro.packages.push_back(p);
  for (const auto& p : c.os.packages) ro.packages.push_back(p.name);
  std::sort(ro.packages.begin(), ro.packages.end());
  ro.packages.erase(std::unique(ro.packages.begin(), ro.packages.end()), ro.packages.end());
  ro.sources = sources;
  ro.etc_apt = o.etc_apt;
  ro.apt_cache_dir = o.cache_dir;
  ro.source_date_epoch = epoch;
  ro.work_dir = st.root;
  ro.progress = pf;
  auto rootfs_info = FOUNDRY_TRY_CTX(build_rootfs(ro), "platform build");

  // Stage: node OS.
  t = Clock::now();
  emit(pf, K::Begin, "node-os", "Foundry binaries, node agent, cluster trust anchor");
  FOUNDRY_TRY_CTX(write_node_os(rootfs_info.path, c, id, binaries, *epoch), "platform build: node OS");
  FOUNDRY_TRY_CTX(write_image_sources(rootfs_info.path, image_sources, *epoch), "platform build: node OS");
  emit(pf, K::End, "node-os", fmt::format("{} binaries, foundry-node.service", binaries.size()), since(t));

  // Stage: disk.
  const std::string scratch = st.root + "/work";
  FOUNDRY_TRY(make_dirs(scratch));
  DiskOptions d;
  d.rootfs = rootfs_info.path;
  d.output = scratch + "/disk.raw";
  d.format = ImageFormat::Raw;
  // One image for every node: as large as the smallest node disk (cloud-init
  // grows the root partition to a larger disk at first boot).
  uint64_t disk_gib = c.nodes.front().disk_gib;
  for (const auto& n : c.nodes) disk_gib = std::min(disk_gib, n.disk_gib);
  d.size_bytes = disk_gib << 30;
  d.seed = "foundry-cluster:" + c.name;
  d.title = "Foundry node (" + c.name + ")";
  d.source_date_epoch = epoch;
  d.work_dir = st.root;
  d.progress = pf;
  auto disk = FOUNDRY_TRY_CTX(assemble_disk(d), "platform build");

  auto pkgs = rootfs_info.packages;
  std::sort(pkgs.begin(), pkgs.end(), [](auto& a, auto& b) { return std::tie(a.name, a.arch) < std::tie(b.name, b.arch); });
  // The manifest of the artifacts recorded so far (the recovery key carries
  // one without itself; the final one lists everything). `offline` says how
  // this build got its packages: a fact about the build, not an input of
  // the bytes (networked and offline builds give identical artifacts), so
  // the key's copy leaves it out and the key is the same either way.
  auto make_manifest = [&](bool for_key) -> Result<std::string> {
    nlohmann::ordered_json m;
    m["format"] = "foundry-platform-manifest/1";
    m["cluster"] = c.name;
    m["source_date_epoch"] = *epoch;
    nlohmann::ordered_json in;
    in["cluster_file"] = {{"name", fs::path(o.cluster_file).filename().string()},
                          {"sha256", FOUNDRY_TRY(sha256_file(o.cluster_file))}};
    in["release"] = c.os.release;
    in["packages_requested"] = ro.packages;
    if (!for_key) in["offline"] = o.offline;
    in["recipe_version"] = kRecipeVersion;
    in["kernel"] = rootfs_info.kernel_version;
    in["disk_seed"] = d.seed;
    // The sources the packages come from. "offline" says whether they were
    // read from the package cache instead; the versions are in "packages".
    in["apt_sources"] = to_deb822(image_sources);
    in["binaries"] = nlohmann::ordered_json::array();
    for (const auto& b : binaries)
      in["binaries"].push_back({{"name", fs::path(b).filename().string()}, {"sha256", FOUNDRY_TRY(sha256_file(b))}});
    in["ca_certificate_sha256"] = sha256_hex(id.ca_cert_pem);
    m["inputs"] = in;
    m["artifacts"] = nlohmann::ordered_json::array();
    FOUNDRY_TRY(st.settle());
    std::sort(st.artifacts.begin(), st.artifacts.end(), [](auto& a, auto& b) { return a.path < b.path; });
    for (const auto& a : st.artifacts)
      m["artifacts"].push_back({{"path", a.path}, {"kind", a.kind}, {"size", a.size}, {"sha256", a.sha256}});
    m["packages"] = nlohmann::ordered_json::array();
    for (const auto& p : pkgs) m["packages"].push_back({{"name", p.name}, {"version", p.version}, {"arch", p.arch}});
    return m.dump(2) + "\n";
  };

  // Stage: config drives (before the artifacts: the recovery key carries them).
  t = Clock::now();
  emit(pf, K::Begin, "config-drives", "per-node NoCloud seeds (identity, mesh peers)");
  FOUNDRY_TRY(make_dirs(st.root + "/nodes", 0700));
  for (const auto& n : c.nodes) {
    auto iso = FOUNDRY_TRY_CTX(node_config_drive(c, id, n, *epoch), "platform build: config drive of {}", n.name);
    std::string rel = "nodes/" + n.name + "-config.iso";
    FOUNDRY_TRY(write_file_atomic(st.root + "/" + rel, std::string(iso.begin(), iso.end()), 0600));
    FOUNDRY_TRY(st.record(rel, "config-drive"));
  }
  emit(pf, K::End, "config-drives", fmt::format("{} drives (mode 0600: they hold the nodes' keys)", c.nodes.size()),
       since(t));

  // Stage: artifacts (src/platform artifacts*.cpp).
  ArtifactCommon common;
  common.seed = d.seed;
  common.source_date_epoch = epoch;
  common.work_dir = scratch;
  common.progress = pf;
  auto rel_of = [&](const std::string& abs_path) { return fs::path(abs_path).lexically_relative(st.root).string(); };

  DiskImagesOptions di;
  di.raw_disk = d.output;
  di.output_dir = st.root + "/images";
  di.basename = c.name;
  di.formats.clear();
  using config::Target;
  if (c.has_target(Target::Qemu) || c.has_target(Target::Libvirt) || c.has_target(Target::Proxmox))
    di.formats.push_back(ImageFormat::Qcow2);
  if (c.has_target(Target::Raw) || c.has_target(Target::Aws) || c.has_target(Target::BareMetal))
    di.formats.push_back(ImageFormat::Raw);
  if (c.has_target(Target::Azure)) di.formats.push_back(ImageFormat::Vpc);
  di.common = common;
  if (!di.formats.empty()) {
    auto files = FOUNDRY_TRY_CTX(write_disk_images(di), "platform build");
    for (const auto& f : files) {
      std::string ext = fs::path(f.path).extension().string();
      FOUNDRY_TRY(st.record(rel_of(f.path), "disk-" + ext.substr(ext.empty() ? 0 : 1)));
    }
  }

  LiveSquashfsOptions sq;
  sq.rootfs = rootfs_info.path;
  sq.output = scratch + "/filesystem.squashfs";
  sq.common = common;
  FOUNDRY_TRY_CTX(write_live_squashfs(sq), "platform build");

  LiveIsoOptions li;
  li.rootfs = rootfs_info.path;
  li.output = st.root + "/iso/" + c.name + ".iso";
  li.squashfs = sq.output;
  li.title = "Foundry node (" + c.name + ", live)";
  li.common = common;
  FOUNDRY_TRY(make_dirs(st.root + "/iso"));
  auto iso_info = FOUNDRY_TRY_CTX(write_live_iso(li), "platform build");
  FOUNDRY_TRY(st.record(rel_of(iso_info.iso.path), "live-iso"));

  if (c.has_target(Target::Firecracker)) {
    FirecrackerKitOptions fk;
    fk.rootfs = rootfs_info.path;
    fk.output_dir = st.root + "/firecracker";
    fk.vms.clear();
    for (const auto& n : c.nodes) {
      FirecrackerVm vm;
      vm.name = n.name;
      vm.vcpus = static_cast<int>(n.vcpus);
      vm.memory_mib = n.memory_mib;
      vm.tap = net::derive_tap_name(n.address.addr);
      vm.guest_mac = net::derive_mac_from_ip(n.address.addr);
      fk.vms.push_back(std::move(vm));
    }
    fk.common = common;
    auto kit = FOUNDRY_TRY_CTX(write_firecracker_kit(fk), "platform build");
    for (const auto& f : kit.files) {
      std::string name = fs::path(f.path).filename().string();
      std::string kind = name == "vmlinux" ? "firecracker-kernel"
                         : name.ends_with(".json") ? "firecracker-config"
                         : name.ends_with(".ext4") ? "firecracker-rootfs"
                                                   : "firecracker-initrd";
      FOUNDRY_TRY(st.record(rel_of(f.path), kind));
    }
  }

  // The recovery key: every artifact so far, their manifest, the cluster
  // file and the secrets.
  {
    const std::string key_manifest = FOUNDRY_TRY(make_manifest(true));
    FOUNDRY_TRY(write_file_atomic(scratch + "/manifest.json", key_manifest, 0644));
  }
  RecoveryKeyOptions rk;
  rk.rootfs = rootfs_info.path;
  rk.squashfs = sq.output;
  rk.output = st.root + "/recovery/" + c.name + "-recovery.img";
  for (const char* dir : {"images", "iso", "firecracker", "nodes"})
    if (fs::exists(st.root + "/" + dir, ec)) rk.artifacts.push_back(st.root + "/" + dir);
  rk.artifacts.push_back(scratch + "/manifest.json");
  rk.cluster_file = o.cluster_file;
  rk.secrets_dir = io.secrets_dir;
  rk.title = "Foundry recovery (" + c.name + ")";
  rk.common = common;
  FOUNDRY_TRY(make_dirs(st.root + "/recovery", 0700));
  auto key = FOUNDRY_TRY_CTX(write_recovery_key(rk), "platform build");
  // The key holds the secrets: as private as they are.
  ::chmod(key.image.path.c_str(), 0600);
  FOUNDRY_TRY(st.record(rel_of(key.image.path), "recovery-key"));
  FOUNDRY_TRY(detail::remove_tree(scratch));

  // The tree is not an artifact: remove it (or keep it elsewhere) before the
  // manifest and publish.
  if (!o.keep_rootfs.empty()) {
    if (::rename(rootfs_info.path.c_str(), o.keep_rootfs.c_str()) != 0)
      return fail_errno(ErrorKind::Storage, "platform build: keep the node OS tree as {} (--keep-rootfs)",
                        o.keep_rootfs);
  } else {
    FOUNDRY_TRY(detail::remove_tree(rootfs_info.path));
  }

  // Stage: manifest.
  t = Clock::now();
  emit(pf, K::Begin, "manifest", "checksums, SBOM, inputs");
  const std::string manifest_text = FOUNDRY_TRY(make_manifest(false));
  FOUNDRY_TRY(write_file_atomic(st.root + "/manifest.json", manifest_text, 0644));
  emit(pf, K::End, "manifest",
       fmt::format("{} artifacts, {} packages (waited {:.1f} s in all for the background sha256 of the artifacts)",
                   st.artifacts.size(), pkgs.size(), static_cast<double>(st.waited.count()) / 1000.0),
       since(t));

  FOUNDRY_TRY(publish(st.root, out));
  ClusterBuildResult res;
  res.output_dir = out;
  res.artifacts = st.artifacts;
  res.packages = pkgs;
  res.generated_secrets = id.generated;
  res.elapsed = since(t0);
  (void)disk;
  return res;
}

}  // namespace foundry::platform
