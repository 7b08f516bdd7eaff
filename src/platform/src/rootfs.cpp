#include "foundry/platform/rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/common/scope_exit.h"
#include "foundry/common/subprocess.h"
#include "apt_cache.h"
#include "fs_util.h"
#include "recipe.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<std::string> default_base_packages() {
  return {
      "linux-image-amd64",
      "systemd-sysv",
      "udev",
      "dbus",              // hostnamectl, timedatectl, loginctl talk to systemd over D-Bus
      "systemd-resolved",  // DNS from networkd (static nameservers or DHCP) into /etc/resolv.conf
      "initramfs-tools",
      "zstd",              // initramfs compression (COMPRESS=zstd)
      "e2fsprogs",
      "iproute2",
      "ca-certificates",
      "cloud-init",
      "cloud-guest-utils",  // growpart: cloud-init grows the root partition to the disk size
      "openssh-server",
      "qemu-guest-agent",
      "sudo",               // cloud-init's default user gets sudo rights
      "systemd-boot-efi",   // the UEFI boot loader assemble_disk copies to the ESP
  };
}

std::vector<std::string> required_boot_packages() {
  return {"linux-image-amd64", "systemd-sysv", "udev", "initramfs-tools", "zstd", "systemd-boot-efi"};
}

std::vector<std::string> default_initramfs_modules() {
  // sr_mod: a NoCloud seed on a CD-ROM must exist before cloud-init's
  // generator (ds-identify) looks for it, right after the switch to the root.
  return {"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "sr_mod", "ahci", "nvme", "ext4", "crc32c_generic"};
}

Status validate_package_names(const std::vector<std::string>& names) {
  // Debian policy 5.6.1: lower case letters, digits, + - . ; at least two
  // characters, starting alphanumeric. Optional =version or /release.
  static const std::regex re(R"(^[a-z0-9][a-z0-9+.\-]+(=[A-Za-z0-9.+~:\-]+|/[A-Za-z0-9.\-]+)?$)");
  for (const auto& n : names)
    if (!std::regex_match(n, re))
      return fail(Error(ErrorKind::Validation, fmt::format("'{}' is not a Debian package name", n))
                      .with_hint("package names are lower case letters, digits and + - . (optionally =VERSION "
                                 "or /RELEASE)"));
  return ok();
}

namespace {

using detail::emit;
using detail::since;

std::optional<int64_t> effective_epoch(const RootfsOptions& o) { return detail::epoch_or_env(o.source_date_epoch); }

bool is_kernel_package(const std::string& p) { return p.rfind("linux-image-", 0) == 0; }

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Paths handed to mmdebstrap as hook commands are exec'd directly only when
// they contain no shell metacharacters; anything else would go through sh.
bool hook_safe_path(const std::string& p) {
  return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("/._+-", c) != nullptr;
  });
}

Result<std::vector<AptSource>> resolve_sources(const RootfsOptions& o) {
  if (!o.sources.empty()) return o.sources;
  auto all = FOUNDRY_TRY_CTX(read_apt_sources(o.etc_apt), "read the build machine's apt sources");
  return select_sources_for_suite(all, o.suite);
}

std::string normalize_module(std::string m) {
  std::replace(m.begin(), m.end(), '-', '_');
  return m;
}

// Module names in an lsinitramfs listing or a modules.builtin file.
std::set<std::string> module_names(const std::string& listing) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < listing.size()) {
    size_t nl = listing.find('\n', pos);
    if (nl == std::string::npos) nl = listing.size();
    std::string line = listing.substr(pos, nl - pos);
    pos = nl + 1;
    auto ko = line.rfind(".ko");
    if (ko == std::string::npos) continue;
    auto slash = line.rfind('/', ko);
    std::string base = line.substr(slash == std::string::npos ? 0 : slash + 1, ko - (slash == std::string::npos ? 0 : slash + 1));
    out.insert(normalize_module(base));
  }
  return out;
}

// Follows mmdebstrap's --logfile while it runs and reports its "I:" lines.
class LogFollower {
 public:
  LogFollower(std::string path, ProgressFn fn)
      : path_(std::move(path)), fn_(std::move(fn)), start_(Clock::now()) {
    if (fn_) thread_ = std::thread([this] { loop(); });
  }
  ~LogFollower() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> g(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    size_t offset = 0;
    std::string partial;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      bool stopping = cv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return stop_; });
      lk.unlock();
      if (auto text = read_file(path_); text && text->size() > offset) {
        partial += text->substr(offset);
        offset = text->size();
        size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
          std::string line = partial.substr(0, nl);
          partial.erase(0, nl + 1);
          if (line.rfind("I: ", 0) == 0)
            fn_(ProgressEvent{ProgressEvent::Kind::Info, "mmdebstrap", line.substr(3), since(start_)});
        }
      }
      lk.lock();
      if (stopping) return;
    }
  }
  std::string path_;
  ProgressFn fn_;
  Clock::time_point start_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
};

Result<std::vector<InstalledPackage>> read_dpkg_status(const std::string& root) {
  std::string path = root + "/var/lib/dpkg/status";
  auto text = FOUNDRY_TRY(read_file(path));
  std::vector<InstalledPackage> out;
  InstalledPackage cur;
  bool installed = false;
  auto flush = [&] {
    if (installed && !cur.name.empty()) out.push_back(cur);
    cur = InstalledPackage{};
    installed = false;
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      flush();
      if (nl == text.size()) break;
      continue;
    }
    auto field = [&](std::string_view key) -> std::optional<std::string> {
      if (line.size() > key.size() + 1 && line.substr(0, key.size()) == key && line[key.size()] == ':')
        return std::string(line.substr(key.size() + 2));
      return std::nullopt;
    };
    if (auto v = field("Package")) cur.name = *v;
    else if (auto v2 = field("Version")) cur.version = *v2;
    else if (auto v3 = field("Architecture")) cur.arch = *v3;
    else if (auto v4 = field("Status")) installed = v4->ends_with(" installed");
    if (nl == text.size()) break;
  }
  flush();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace

namespace detail {

void prune_apt_cache(const std::string& dir, const std::vector<InstalledPackage>& pkgs) {
  std::map<std::string, std::string> current;  // package name -> archive file name
  for (const auto& p : pkgs) {
    std::string v = p.version;
    // apt stores the epoch colon URL-encoded in archive file names.
    if (auto c = v.find(':'); c != std::string::npos) v.replace(c, 1, "%3a");
    current[p.name] = p.name + "_" + v + "_" + p.arch + ".deb";
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto n = e.path().filename().string();
    if (!n.ends_with(".deb")) continue;
    auto it = current.find(n.substr(0, n.find('_')));
    if (it != current.end() && it->second != n) fs::remove(e.path(), ec);
  }
}

}  // namespace detail

Result<RootfsInfo> inspect_rootfs(const std::string& dir) {
  RootfsInfo info;
  info.path = dir;
  std::error_code ec;
  std::vector<std::string> versions;
  for (const auto& e : fs::directory_iterator(dir + "/boot", ec)) {
    auto n = e.path().filename().string();
    if (n.rfind("vmlinuz-", 0) == 0) versions.push_back(n.substr(8));
  }
  if (versions.empty())
    return fail(Error(ErrorKind::Operation, fmt::format("no kernel (boot/vmlinuz-*) in {}", dir))
                    .with_hint("include a linux-image package (linux-image-amd64)"));
  std::sort(versions.begin(), versions.end(),
            [](const std::string& a, const std::string& b) { return ::strverscmp(a.c_str(), b.c_str()) < 0; });
  info.kernel_version = versions.back();
  info.kernel = "boot/vmlinuz-" + info.kernel_version;
  info.initrd = "boot/initrd.img-" + info.kernel_version;
  if (!fs::exists(dir + "/" + info.initrd, ec))
    return fail(Error(ErrorKind::Operation, fmt::format("no initramfs {} for kernel {} in {}", info.initrd,
                                                        info.kernel_version, dir))
                    .with_hint("include initramfs-tools"));
  info.packages = FOUNDRY_TRY(read_dpkg_status(dir));
  return info;
}

Result<std::string> describe_inputs(const RootfsOptions& o) {
  FOUNDRY_TRY(validate_package_names(o.packages));
  auto sources = FOUNDRY_TRY(resolve_sources(o));
  std::string d;
  d += fmt::format("recipe-version: {}\n", kRecipeVersion);
  d += fmt::format("suite: {}\n", o.suite);
  for (const auto& p : sorted_unique(o.packages)) d += "package: " + p + "\n";
  d += fmt::format("initramfs: {}\n", o.initramfs == InitramfsPolicy::Virtual ? "virtual" : "most");
  d += fmt::format("minimize: {}\n", o.minimize);
  if (auto e = effective_epoch(o)) d += fmt::format("source-date-epoch: {}\n", *e);
  d += "sources:\n" + to_deb822(sources);
  auto file_block = [&](const std::string& name, const std::string& content) {
    d += fmt::format("file {} ({} bytes):\n{}\n", name, content.size(), content);
  };
  for (const auto& f : detail::overlay_files(o)) file_block(f.path + fmt::format(" mode {:o}", f.mode), f.content);
  for (const auto& f : detail::final_files(o)) file_block(f.path + fmt::format(" mode {:o}", f.mode), f.content);
  for (const auto& p : detail::removed_paths()) d += "removed: " + p + "\n";
  file_block("setup-hook", detail::setup_hook_script());
  file_block("customize-hook", detail::customize_hook_script());
  return d;
}

Result<RootfsInfo> build_rootfs(const RootfsOptions& o) {
  const auto t0 = Clock::now();
  const std::string stage_ctx = fmt::format("build root file system {}", o.target);
  if (o.target.empty()) return fail(ErrorKind::Config, "build root file system: no target directory given");
  FOUNDRY_TRY_CTX(validate_package_names(o.packages), "{}", stage_ctx);
  if (::geteuid() != 0)
    return fail(Error(ErrorKind::Operation, fmt::format("{}: needs root", stage_ctx))
                    .with_hint("run as root: mmdebstrap's root mode creates files owned by other users and chroots"));
  for (const char* tool : {"mmdebstrap", "unshare"})
    if (find_program(tool).empty())
      return fail(Error(ErrorKind::Operation, fmt::format("{}: {} is not installed", stage_ctx, tool))
                      .with_hint("install it with scripts/install-deps (Debian package mmdebstrap / util-linux)"));

  // Stage: sources.
  auto t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "sources", "reading apt sources");
  auto sources = FOUNDRY_TRY_CTX(resolve_sources(o), "{}", stage_ctx);
  emit(o.progress, ProgressEvent::Kind::End, "sources",
       sources.empty() ? "no apt source on this machine names " + o.suite + "; using mmdebstrap's default mirror"
                       : fmt::format("{} apt source(s) for {}", sources.size(), o.suite),
       since(t));

  // The target: created by us (and removed again on failure) or an empty
  // directory the caller made (emptied again on failure).
  std::error_code ec;
  bool existed = fs::exists(o.target, ec);
  if (existed && (!fs::is_directory(o.target, ec) || !fs::is_empty(o.target, ec)))
    return fail(Error(ErrorKind::Validation, fmt::format("{}: {} exists and is not an empty directory", stage_ctx,
                                                         o.target))
                    .with_hint("choose a new path or remove it"));
  fs::path target_abs = fs::absolute(o.target, ec);
  std::string parent = target_abs.parent_path().string();
  UndoList undo;
  undo.push("remove " + o.target, [target = target_abs.string(), existed] {
    if (auto st = detail::remove_tree(target); !st) SPDLOG_DEBUG("{}", st.error().to_string());
    if (existed) ::mkdir(target.c_str(), 0755);
  });

  std::string work_parent = o.work_dir.empty() ? parent : o.work_dir;
  auto work = FOUNDRY_TRY_CTX(detail::TempDir::create(work_parent, ".foundry-rootfs-"), "{}", stage_ctx);
  // mkdtemp makes 0700; apt drops to its _apt user for downloads and must
  // be able to reach the tree's archive directory below the parent.
  ::chmod(work.path().c_str(), 0755);
  if (!hook_safe_path(work.path()))
    return fail(Error(ErrorKind::Config,
                      fmt::format("{}: scratch directory {} has characters mmdebstrap would hand to a shell",
                                  stage_ctx, work.path()))
                    .with_hint("use a work directory path of letters, digits and / . _ + -"));
  const auto epoch = effective_epoch(o);
  const std::string overlay = work.path() + "/overlay";
  const std::string report = work.path() + "/report";
  FOUNDRY_TRY_CTX(make_dirs(overlay), "{}", stage_ctx);
  FOUNDRY_TRY_CTX(make_dirs(report), "{}", stage_ctx);
  for (const auto& f : detail::overlay_files(o))
    FOUNDRY_TRY_CTX(detail::write_in_root(overlay, f.path, f.content, f.mode, epoch), "{}: write recipe file",
                    stage_ctx);
  if (epoch) {
    // Directories of the overlay land on existing ones (etc, etc/cloud, ...)
    // with cp -a; give them the same fixed time as the files.
    for (auto it = fs::recursive_directory_iterator(overlay, ec); it != fs::recursive_directory_iterator(); ++it)
      if (it->is_directory()) (void)detail::set_times(it->path().string(), *epoch);
    (void)detail::set_times(overlay, *epoch);
  }
  const std::string setup_hook = work.path() + "/setup-hook";
  const std::string customize_hook = work.path() + "/customize-hook";
  FOUNDRY_TRY_CTX(write_file_atomic(setup_hook, detail::setup_hook_script(), 0755), "{}", stage_ctx);
  FOUNDRY_TRY_CTX(write_file_atomic(customize_hook, detail::customize_hook_script(), 0755), "{}", stage_ctx);
  std::string sources_file;
  if (!sources.empty()) {
    sources_file = work.path() + "/foundry.sources";
    FOUNDRY_TRY_CTX(write_file_atomic(sources_file, to_deb822(sources)), "{}", stage_ctx);
  }
  if (!o.apt_cache_dir.empty()) FOUNDRY_TRY_CTX(make_dirs(o.apt_cache_dir), "{}: package cache", stage_ctx);

  std::vector<std::string> kernel_pkgs, other_pkgs;
  for (const auto& p : sorted_unique(o.packages)) (is_kernel_package(p) ? kernel_pkgs : other_pkgs).push_back(p);

  const std::string log = work.path() + "/mmdebstrap.log";
  std::vector<std::string> argv = {
      // Private mount namespace: mmdebstrap's /proc, /sys and /dev mounts in
      // the new root never appear on the build machine and vanish with the
      // process, even when a timeout kills it.
      "unshare", "--mount", "--propagation", "private", "--",
      "mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
      "--logfile=" + log,
      "--aptopt=Acquire::Retries \"3\"",
      "--setup-hook=" + setup_hook,
      "--customize-hook=" + customize_hook,
  };
  if (!other_pkgs.empty()) {
    std::string inc = "--include=";
    for (size_t i = 0; i < other_pkgs.size(); ++i) inc += (i ? "," : "") + other_pkgs[i];
    argv.push_back(inc);
  }
  if (o.minimize) {
    // Written to /etc/dpkg/dpkg.cfg.d/99mmdebstrap, so packages installed in
    // the image later are trimmed the same way.
    for (const char* opt : {"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
                            "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
                            "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright"})
      argv.push_back(std::string("--dpkgopt=") + opt);
  }
  // Keep the cached .debs the essential step used (they are hard links to
  // the cache); mmdebstrap's cleanup empties the archive directory anyway.
  if (!o.apt_cache_dir.empty()) argv.push_back("--skip=essential/unlink");
  argv.push_back(o.suite);
  argv.push_back(target_abs.string());
  if (!sources_file.empty()) argv.push_back(sources_file);

  RunOptions ro;
  ro.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout);
  ro.extra_env = {"FOUNDRY_OVERLAY=" + overlay, "FOUNDRY_REPORT=" + report,
                  "FOUNDRY_APT_CACHE=" + (o.apt_cache_dir.empty() ? std::string() : fs::absolute(o.apt_cache_dir, ec).string()),
                  "FOUNDRY_KERNEL_PACKAGES=" + [&] {
                    std::string s;
                    for (const auto& k : kernel_pkgs) s += (s.empty() ? "" : " ") + k;
                    return s;
                  }(),
                  "LC_ALL=C.UTF-8"};
  if (epoch) ro.extra_env.push_back(fmt::format("SOURCE_DATE_EPOCH={}", *epoch));

  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "mmdebstrap",
       fmt::format("installing {} packages for {} with mmdebstrap", o.packages.size(), o.suite));
  Result<RunResult> r;
  {
    LogFollower follower(log, o.progress);
    r = run(argv, ro);
    follower.stop();
  }
  if (!r) return fail(std::move(r.error()).wrap(stage_ctx + ": mmdebstrap"));
  if (!r->ok()) {
    std::string tail = detail::tail_file(log, 40);
    // apt's and mmdebstrap's own "E: " lines say what went wrong; the
    // first one goes into the message, the whole tail into the detail.
    std::string first_error;
    for (size_t pos = 0; pos < tail.size() && first_error.empty();) {
      size_t nl = tail.find('\n', pos);
      if (nl == std::string::npos) nl = tail.size();
      if (tail.compare(pos, 3, "E: ") == 0) first_error = tail.substr(pos + 3, nl - pos - 3);
      pos = nl + 1;
    }
    std::string detail_text = tail.empty() ? r->err : tail + (r->err.empty() ? "" : "\n" + r->err);
    return fail(Error(ErrorKind::Operation,
                      fmt::format("{}: mmdebstrap failed: {}{}", stage_ctx,
                                  r->timed_out ? fmt::format("timed out after {} s", o.timeout.count())
                                               : r->describe(),
                                  first_error.empty() ? "" : " (" + first_error + ")"))
                    .with_detail(detail_text)
                    .with_hint("the detail (--verbose) shows the end of mmdebstrap's log; check that the apt "
                               "sources are reachable and the package names exist in " + o.suite));
  }
  emit(o.progress, ProgressEvent::Kind::End, "mmdebstrap", "packages installed", since(t));

  // Stage: finish the tree.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "finish", "machine identity, host keys, fstab");
  const std::string root = target_abs.string();
  for (const auto& p : detail::removed_paths())
    FOUNDRY_TRY_CTX(detail::remove_in_root(root, p), "{}: finish", stage_ctx);
  for (const auto& f : detail::final_files(o))
    FOUNDRY_TRY_CTX(detail::write_in_root(root, f.path, f.content, f.mode, epoch), "{}: finish", stage_ctx);
  // With systemd-resolved the stub resolver serves whatever networkd learnt;
  // without it, the build machine's resolv.conf that mmdebstrap copied must
  // not stay in the image.
  if (fs::exists(root + "/lib/systemd/systemd-resolved", ec) || fs::exists(root + "/usr/lib/systemd/systemd-resolved", ec))
    FOUNDRY_TRY_CTX(detail::symlink_in_root(root, "etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"),
                    "{}: finish", stage_ctx);
  else
    FOUNDRY_TRY_CTX(detail::write_in_root(root, "etc/resolv.conf", "", 0644, epoch), "{}: finish", stage_ctx);
  FOUNDRY_TRY_CTX(make_dirs(root + "/boot/efi"), "{}: finish", stage_ctx);
  if (epoch) {
    // Every directory's mtime to the epoch: a directory's time says when
    // dpkg last added or removed an entry, which depends on the order apt
    // unpacked the packages in, and that order differs between the mirror
    // and an --offline build's local repository (usr/share/man kept a
    // package's time in one and the build's in the other). Files keep
    // their packaged times (the disk stage clamps newer ones).
    (void)detail::set_times(root, *epoch);
    for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (ec) break;
      if (it->is_symlink(ec) || !it->is_directory(ec)) continue;
      (void)detail::set_times(it->path().string(), *epoch);
    }
  }
  emit(o.progress, ProgressEvent::Kind::End, "finish", "tree finished", since(t));

  // Stage: verify what a boot needs.
  t = Clock::now();
  emit(o.progress, ProgressEvent::Kind::Begin, "verify", "kernel, initramfs drivers");
  auto info = FOUNDRY_TRY_CTX(inspect_rootfs(root), "{}: verify", stage_ctx);
  std::string listing_path = report + "/initrd.img-" + info.kernel_version + ".list";
  auto listing = FOUNDRY_TRY_CTX(read_file(listing_path), "{}: verify: the customize hook left no initramfs listing",
                                 stage_ctx);
  auto in_initrd = module_names(listing);
  auto builtin = module_names(read_file(root + "/lib/modules/" + info.kernel_version + "/modules.builtin").value_or(""));
  std::vector<std::string> missing;
  for (const auto& m : o.initramfs_modules) {
    auto n = normalize_module(m);
    if (!in_initrd.count(n) && !builtin.count(n)) missing.push_back(m);
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return fail(Error(ErrorKind::Operation, fmt::format("{}: verify: the initramfs of {} lacks {}", stage_ctx,
                                                        info.kernel_version, list))
                    .with_detail(detail::tail_file(log, 40))
                    .with_hint("check the module names (modinfo -k VERSION NAME) in the initramfs module list"));
  }
  for (size_t pos = 0; pos < listing.size();) {
    size_t nl = listing.find('\n', pos);
    if (nl == std::string::npos) nl = listing.size();
    info.initramfs_files.push_back(listing.substr(pos, nl - pos));
    pos = nl + 1;
  }
  emit(o.progress, ProgressEvent::Kind::End, "verify",
       fmt::format("kernel {}, {} packages, initramfs has {}", info.kernel_version, info.packages.size(),
                   [&] {
                     std::string s;
                     for (const auto& m : o.initramfs_modules) s += (s.empty() ? "" : " ") + m;
                     return s;
                   }()),
       since(t));

  if (!o.apt_cache_dir.empty()) detail::prune_apt_cache(o.apt_cache_dir, info.packages);
  undo.commit();
  info.path = root;
  info.elapsed = since(t0);
  return info;
}

}  // namespace foundry::platform
