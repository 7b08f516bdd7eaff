// foundry platform ...: image manufacturing (seed 000). base-image makes the
// VM base image: Debian packages -> root tree -> GPT disk with a UEFI boot
// loader, without mounting anything.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.h"
#include "foundry/common/file.h"
#include "foundry/platform/base_image.h"
#include "foundry/platform/cluster_build.h"
#include "output.h"

namespace foundry::cli {

namespace {

namespace fs = std::filesystem;
namespace pf = foundry::platform;

struct BaseImageArgs {
  std::string output;
  std::vector<std::string> packages;
  bool no_defaults = false;
  std::string cache;
  std::string size = "3G";
  std::string esp_size = "256M";
  std::string suite = "bookworm";
  std::string sources;
  std::string seed = "foundry";
  std::string format;
  std::string initramfs = "virtual";
  bool compress = false;
  bool print_inputs = false;
  std::string keep_rootfs;
  std::string work_dir;
};

Result<pf::ImageFormat> format_for(const BaseImageArgs& a) {
  std::string ext = fs::path(a.output).extension().string();
  if (!ext.empty()) ext.erase(0, 1);
  std::optional<pf::ImageFormat> by_ext;
  if (ext == "qcow2") by_ext = pf::ImageFormat::Qcow2;
  else if (ext == "raw" || ext == "img") by_ext = pf::ImageFormat::Raw;
  else if (ext == "vhd" || ext == "vpc") by_ext = pf::ImageFormat::Vpc;
  if (a.format.empty()) return by_ext.value_or(pf::ImageFormat::Qcow2);
  auto f = FOUNDRY_TRY(pf::parse_image_format(a.format));
  if (by_ext && *by_ext != f)
    return fail(Error(ErrorKind::Config, fmt::format("--format {} does not match the extension of {}", a.format,
                                                     a.output))
                    .with_hint("name the file .qcow2, .raw/.img or .vhd to match, or drop --format"));
  return f;
}

Result<pf::BaseImageOptions> make_options(const BaseImageArgs& a) {
  pf::BaseImageOptions o;
  if (a.no_defaults) {
    o.rootfs.packages = pf::required_boot_packages();
  }
  for (const auto& p : a.packages) o.rootfs.packages.push_back(p);
  FOUNDRY_TRY(pf::validate_package_names(o.rootfs.packages));
  o.rootfs.suite = a.suite;
  if (!a.sources.empty()) {
    auto text = FOUNDRY_TRY(read_file(a.sources));
    bool deb822 = a.sources.ends_with(".sources") || text.find("Types:") != std::string::npos ||
                  text.find("URIs:") != std::string::npos;
    auto parsed = deb822 ? FOUNDRY_TRY(pf::parse_deb822_sources(text, a.sources))
                         : FOUNDRY_TRY(pf::parse_one_line_sources(text, a.sources));
    for (auto& s : parsed)
      if (std::find(s.types.begin(), s.types.end(), "deb") != s.types.end()) {
        s.types = {"deb"};
        o.rootfs.sources.push_back(std::move(s));
      }
    if (o.rootfs.sources.empty())
      return fail(Error(ErrorKind::Config, fmt::format("{} has no binary (deb) apt source", a.sources))
                      .with_hint("list at least one 'deb' entry"));
  }
  o.rootfs.apt_cache_dir = a.cache;
  if (a.initramfs == "most") o.rootfs.initramfs = pf::InitramfsPolicy::Most;
  o.disk.output = a.output;
  o.disk.format = FOUNDRY_TRY(format_for(a));
  o.disk.size_bytes = FOUNDRY_TRY(pf::parse_size(a.size));
  o.disk.esp_size_bytes = FOUNDRY_TRY(pf::parse_size(a.esp_size));
  o.disk.seed = a.seed;
  o.disk.compress = a.compress;
  o.disk.title = "Foundry base image (Debian " + a.suite + ")";
  o.disk.work_dir = a.work_dir;
  if (!a.keep_rootfs.empty()) {
    o.rootfs.target = a.keep_rootfs;
    o.keep_rootfs = true;
  }
  return o;
}

Status run_base_image(const BaseImageArgs& a, const Globals& g) {
  auto o = FOUNDRY_TRY(make_options(a));
  if (a.print_inputs) {
    auto text = FOUNDRY_TRY(pf::describe_base_image_inputs(o));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return ok();
  }
  (void)g;
  o.disk.progress = [](const pf::ProgressEvent& e) {
    using K = pf::ProgressEvent::Kind;
    if (e.kind == K::End)
      std::printf("✓ %-10s %s (%.1f s)\n", e.stage.c_str(), e.message.c_str(),
                  static_cast<double>(e.elapsed.count()) / 1000.0);
    else if (e.kind == K::Info)
      std::printf("  %-10s [%6.1f s] %s\n", e.stage.c_str(), static_cast<double>(e.elapsed.count()) / 1000.0,
                  e.message.c_str());
    else
      std::printf("… %-10s %s\n", e.stage.c_str(), e.message.c_str());
    std::fflush(stdout);
  };
  auto info = FOUNDRY_TRY(pf::build_base_image(std::move(o)));
  std::printf("✓ base image %s: %s, kernel %s, %zu packages, root UUID %s (%.1f s in all)\n",
              info.disk.output.c_str(), std::string(pf::to_string(info.disk.format)).c_str(),
              info.disk.kernel_version.c_str(), info.rootfs.packages.size(),
              info.disk.ids.root_fs.to_string().c_str(),
              static_cast<double>((info.rootfs.elapsed + info.disk.elapsed).count()) / 1000.0);
  return ok();
}

void print_progress(const pf::ProgressEvent& e) {
  using K = pf::ProgressEvent::Kind;
  if (e.kind == K::End)
    std::printf("✓ %-13s %s (%.1f s)\n", e.stage.c_str(), e.message.c_str(),
                static_cast<double>(e.elapsed.count()) / 1000.0);
  else if (e.kind == K::Info)
    std::printf("  %-13s [%6.1f s] %s\n", e.stage.c_str(), static_cast<double>(e.elapsed.count()) / 1000.0,
                e.message.c_str());
  else
    std::printf("… %-13s %s\n", e.stage.c_str(), e.message.c_str());
  std::fflush(stdout);
}

struct ClusterArgs {
  std::string file;
  std::string output;
  std::string sources;
  bool offline = false;
  bool no_package_check = false;
  std::string secrets;
  std::string cache = "/var/cache/foundry/apt";
  std::vector<std::string> binaries;
  std::string keep_rootfs;
};

Status run_validate(const ClusterArgs& a, const Globals& g) {
  pf::PackageAvailability avail;
  if (!a.no_package_check) avail = a.offline ? pf::deb_cache_availability(a.cache) : pf::apt_cache_availability();
  auto c = FOUNDRY_TRY(pf::validate_cluster(a.file, avail));
  if (g.output == OutputFormat::Json) {
    std::printf("{\"valid\": true, \"cluster\": \"%s\", \"nodes\": %zu}\n", c.name.c_str(), c.nodes.size());
    return ok();
  }
  std::printf("✓ %s: cluster %s, %zu nodes, mesh %s, release %s, %zu extra packages%s\n", a.file.c_str(),
              c.name.c_str(), c.nodes.size(), c.mesh.cidr.to_string().c_str(), c.os.release.c_str(),
              c.os.packages.size(), a.no_package_check ? " (not checked against apt)" : " (all available)");
  for (const auto& n : c.nodes)
    std::printf("  %-16s %-8s %2u vCPU %6llu MiB %4llu GiB  %-18s mesh %s\n", n.name.c_str(),
                std::string(foundry::config::to_string(n.role)).c_str(), n.vcpus,
                static_cast<unsigned long long>(n.memory_mib), static_cast<unsigned long long>(n.disk_gib),
                n.address.to_string().c_str(), n.mesh_address.to_string().c_str());
  return ok();
}

Status run_build(const ClusterArgs& a, const Globals& g) {
  pf::ClusterBuildOptions o;
  o.cluster_file = a.file;
  o.output_dir = a.output;
  o.sources_file = a.sources;
  o.offline = a.offline;
  o.secrets_dir = a.secrets;
  o.cache_dir = a.cache;
  o.binaries = a.binaries;
  o.keep_rootfs = a.keep_rootfs;
  if (a.no_package_check) o.availability = [](const std::vector<std::string>& n) -> Result<std::set<std::string>> {
    return std::set<std::string>(n.begin(), n.end());
  };
  if (g.output != OutputFormat::Json) o.progress = print_progress;
  auto r = FOUNDRY_TRY(pf::build_cluster(o));
  if (g.output == OutputFormat::Json) {
    std::string text = FOUNDRY_TRY(read_file(r.output_dir + "/manifest.json"));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return ok();
  }
  std::printf("✓ built %s in %.1f s: %zu artifacts, %zu packages (manifest.json)\n", r.output_dir.c_str(),
              static_cast<double>(r.elapsed.count()) / 1000.0, r.artifacts.size(), r.packages.size());
  for (const auto& x : r.artifacts)
    std::printf("  %-40s %-14s %12llu  %.16s\n", x.path.c_str(), x.kind.c_str(),
                static_cast<unsigned long long>(x.size), x.sha256.c_str());
  if (!r.generated_secrets.empty())
    std::printf("  %zu new key(s) written to the secrets directory; keep it (or the recovery key) to rebuild the "
                "same artifacts\n", r.generated_secrets.size());
  return ok();
}

constexpr const char* kBuildHelp = R"(
DESCRIPTION
  Manufactures a cluster from its cluster file (docs/platform.md): validates
  the file and its packages before any work, makes the cluster CA, node
  certificates and WireGuard keys (kept in the secrets directory), builds the
  node OS with mmdebstrap (kernel, systemd, cloud-init, WireGuard tools, the
  Foundry binaries and the foundry-node agent, which prints
  "foundry-node: ready" on the serial console once the node is up), a GPT
  disk, the artifacts for the file's targets, one NoCloud config drive per
  node (its identity and mesh peers; mode 0600), and manifest.json (sha256 and
  size of every artifact, every installed package and version, the inputs;
  no secrets).

  Everything is built in OUT/.tmp-build-* and moved into OUT at the end,
  manifest.json last: a failed build leaves no artifact behind.

  Reproducible: with the same cluster file, package versions, Foundry
  binaries and secrets, two builds give bit-identical artifacts. Timestamps
  come from SOURCE_DATE_EPOCH, else the cluster file's modification time.
  Keys are made once and reused from the secrets directory (default
  OUT/secrets; --secrets DIR to keep them elsewhere, e.g. restored from a
  recovery key).

  --offline installs from the package cache only (a local file:// repository
  indexed with dpkg-scanpackages); run one networked build first to fill it.

EXAMPLES
  foundry platform validate examples/cluster.yaml
  foundry platform build examples/cluster.yaml -o out/demo
  foundry platform build examples/cluster.yaml -o out/demo --secrets /safe/demo-secrets --offline

EXIT STATUS
  0 built; 1 unreadable file or bad option; 2 invalid cluster file or a
  package the apt sources lack (file:line:col for each); 4 a build stage
  failed; 5 an artifact could not be written.
)";

constexpr const char* kBaseImageHelp = R"(
DESCRIPTION
  Builds the VM base image: a Debian system with systemd, cloud-init (NoCloud
  and ConfigDrive, network through systemd-networkd), OpenSSH and the QEMU
  guest agent, as a GPT disk that boots by UEFI (systemd-boot).

  Nothing is mounted. mmdebstrap installs the packages into a scratch
  directory next to OUT; the EFI system partition is formatted and filled with
  mtools, the ext4 root file system is made by mkfs.ext4 -d from the
  directory, both straight into the disk image at their partition offsets;
  Foundry writes the partition table. Needs root (mmdebstrap --mode=root).

  Packages come from the machine's configured apt sources (/etc/apt/sources.list
  and sources.list.d), narrowed to --suite, so a local mirror gives offline
  builds; --sources FILE uses that file instead.

  Reproducible: every GUID, file-system UUID and the ESP serial derive from
  --seed; with SOURCE_DATE_EPOCH set, file-system and file times are fixed.

  The image has an empty /etc/machine-id and no SSH host keys: every VM made
  from it gets its own. Kernel console: ttyS0 at 115200 baud.

DEFAULT PACKAGES
  linux-image-amd64 systemd-sysv udev dbus systemd-resolved initramfs-tools
  zstd e2fsprogs iproute2 ca-certificates cloud-init cloud-guest-utils
  openssh-server qemu-guest-agent sudo systemd-boot-efi

EXAMPLES
  foundry platform base-image -o /var/lib/foundry/debian-12.qcow2
  foundry platform base-image -o base.qcow2 --cache /var/cache/foundry/apt --packages vim,htop
  foundry platform base-image -o base.raw --size 2G --seed cluster-a
  foundry platform base-image -o base.qcow2 --print-inputs | sha256sum

EXIT STATUS
  0 image written; 1 bad option, size or --sources file; 2 invalid package
  name, or a tree or ESP that does not fit; 4 a build stage failed (the
  message names it; --verbose shows the tool's output); 5 the image file
  could not be written.

SEE ALSO
  docs/platform.md, mmdebstrap(1), mkfs.ext4(8), mtools(1)
)";

void register_platform(CLI::App& app, Globals& g) {
  auto* platform = app.add_subcommand("platform", "Manufacture platform images (base images, node OS images)");
  platform->require_subcommand(1);

  auto args = std::make_shared<BaseImageArgs>();
  auto* bi = platform->add_subcommand("base-image", "Build the Debian VM base image (GPT, UEFI, cloud-init) without mounting");
  bi->footer(kBaseImageHelp);
  bi->add_option("-o,--output", args->output, "Image file to write (.qcow2, .raw/.img or .vhd)")->required();
  bi->add_option("--packages", args->packages, "Extra packages, comma-separated (added to the defaults)")
      ->delimiter(',');
  bi->add_flag("--no-default-packages", args->no_defaults,
               "Start from the packages a disk needs to boot only (kernel, systemd, initramfs, boot loader)");
  bi->add_option("--cache", args->cache, "Directory keeping downloaded .debs between runs");
  bi->add_option("--size", args->size, "Virtual disk size (K, M, G, T)")->capture_default_str();
  bi->add_option("--esp-size", args->esp_size, "EFI system partition size")->capture_default_str();
  bi->add_option("--suite", args->suite, "Debian release")->capture_default_str();
  bi->add_option("--sources", args->sources, "Apt sources file (deb822 or one-line) instead of the machine's");
  bi->add_option("--seed", args->seed, "Seed for disk/partition GUIDs and file-system UUIDs")->capture_default_str();
  bi->add_option("--format", args->format, "raw, qcow2 or vpc (default: from the extension of OUT)")
      ->check(CLI::IsMember({"raw", "qcow2", "vpc", "vhd"}));
  bi->add_option("--initramfs", args->initramfs,
                 "virtual: only VM disk drivers (small, fast); most: every storage driver (bare metal)")
      ->check(CLI::IsMember({"virtual", "most"}))
      ->capture_default_str();
  bi->add_flag("--compress", args->compress, "Compress qcow2 clusters");
  bi->add_option("--keep-rootfs", args->keep_rootfs, "Build the tree in this (new) directory and keep it");
  bi->add_option("--work-dir", args->work_dir, "Scratch directory (default: next to OUT)");
  bi->add_flag("--print-inputs", args->print_inputs,
               "Print every input that decides the image (for cache stamps) and exit; builds nothing");
  set_action(bi, [args, &g] { return run_base_image(*args, g); });

  auto vargs = std::make_shared<ClusterArgs>();
  auto* val = platform->add_subcommand("validate", "Check a cluster file (and its packages) without building");
  val->add_option("file", vargs->file, "cluster.yaml")->required();
  val->add_flag("--offline", vargs->offline, "Check packages against the package cache instead of apt's indices");
  val->add_option("--cache", vargs->cache, "Package cache directory")->capture_default_str();
  val->add_flag("--no-package-check", vargs->no_package_check, "Do not check package availability");
  set_action(val, [vargs, &g] { return run_validate(*vargs, g); });

  auto bargs = std::make_shared<ClusterArgs>();
  auto* b = platform->add_subcommand("build", "Build a cluster's images, config drives and manifest from cluster.yaml");
  b->footer(kBuildHelp);
  b->add_option("file", bargs->file, "cluster.yaml")->required();
  b->add_option("-o,--output", bargs->output, "Output directory")->required();
  b->add_option("--sources", bargs->sources, "Apt sources file (deb822 or one-line) instead of the machine's");
  b->add_flag("--offline", bargs->offline, "Install from the package cache only, no network");
  b->add_option("--secrets", bargs->secrets, "Secrets directory: keys reused when present, made when not "
                                              "(default OUT/secrets)");
  b->add_option("--cache", bargs->cache, "Package cache directory (.debs kept between builds)")->capture_default_str();
  b->add_option("--binary", bargs->binaries, "Foundry binary to put into the node OS (repeatable; default: this "
                                             "foundry and its foundryd, foundry-agent)");
  b->add_flag("--no-package-check", bargs->no_package_check, "Skip the package availability check");
  b->add_option("--keep-rootfs", bargs->keep_rootfs,
                "Keep the finished node OS tree in this (new) directory (to compare two builds' trees)");
  set_action(b, [bargs, &g] { return run_build(*bargs, g); });
}

const CommandGroup reg(80, register_platform);

}  // namespace

}  // namespace foundry::cli
