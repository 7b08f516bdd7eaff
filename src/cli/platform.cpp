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
}

const CommandGroup reg(80, register_platform);

}  // namespace

}  // namespace foundry::cli
