// foundry image ...: base images in the image pool (seed 001, "Base Image Management").
#include <signal.h>

#include <atomic>
#include <memory>

#include "cli.h"
#include "virt_cli.h"

namespace foundry::cli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

// While an import or pull runs, Ctrl-C / SIGTERM stop it at the next chunk
// instead of killing the process, so the half-written volume is removed.
// SIGPIPE is ignored meanwhile: a libvirtd that dies mid-upload must give a
// write error (and cleanup), not kill foundry.
class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &old_pipe_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_pipe_ {};
};

std::string users_summary(const virt::ImageInfo& i) {
  if (i.users.empty()) return "-";
  std::string s;
  for (size_t k = 0; k < i.users.size(); ++k) {
    if (k) s += ", ";
    s += i.users[k].vm.empty() ? i.users[k].volume : i.users[k].vm;
  }
  return s;
}

Status image_list(const Globals& g) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::ImageStore images(sm);
  auto list = FOUNDRY_TRY(images.list());
  if (g.output == OutputFormat::Json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& i : list) arr.push_back(to_json(i));
    print_json(arr);
    return ok();
  }
  Table t({"NAME", "FORMAT", "SIZE", "ALLOCATION", "USED BY"});
  for (const auto& i : list)
    t.add({i.name, std::string(virt::to_string(i.format)), human_bytes(i.capacity), human_bytes(i.allocation),
           users_summary(i)});
  t.print();
  return ok();
}

void print_image(const virt::ImageInfo& i) {
  Table kv({"Name:", i.name});
  kv.add({"Pool:", i.pool});
  kv.add({"Path:", i.path});
  kv.add({"Format:", std::string(virt::to_string(i.format))});
  kv.add({"Virtual size:", human_bytes(i.capacity)});
  kv.add({"Allocation:", human_bytes(i.allocation)});
  kv.add({"Used by:", i.users.empty() ? "no volumes" : fmt::format("{} volume{}", i.users.size(), i.users.size() == 1 ? "" : "s")});
  kv.print();
  if (!i.users.empty()) {
    std::printf("\n");
    Table t({"VM", "POOL", "VOLUME"});
    for (const auto& u : i.users) t.add({u.vm.empty() ? "-" : u.vm, u.pool, u.volume});
    t.print();
  }
}

Status image_info(const Globals& g, const std::string& name) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::ImageStore images(sm);
  auto i = FOUNDRY_TRY(images.info(name));
  if (g.output == OutputFormat::Json)
    print_json(to_json(i));
  else
    print_image(i);
  return ok();
}

// Feeds import/pull progress into one bar per phase.
struct PhaseBars {
  std::unique_ptr<ProgressBar> bar;
  std::string phase;
  void operator()(std::string_view p, uint64_t done, uint64_t total) {
    if (p != phase) {
      if (bar) bar->finish();
      phase = std::string(p);
      bar = std::make_unique<ProgressBar>(phase);
    }
    bar->update(done, total);
  }
  void finish() {
    if (bar) bar->finish();
  }
};

void report_added(const Globals& g, const virt::ImageInfo& i, std::string_view verb) {
  if (g.output == OutputFormat::Json) {
    print_json(to_json(i));
    return;
  }
  step(g, fmt::format("Format {} verified", virt::to_string(i.format)));
  step(g, fmt::format("Uploaded into pool {}", i.pool));
  std::printf("%.*s image '%s' (%s, %s virtual, %s on disk)\n", static_cast<int>(verb.size()), verb.data(),
              i.name.c_str(), std::string(virt::to_string(i.format)).c_str(), human_bytes(i.capacity).c_str(),
              human_bytes(i.allocation).c_str());
}

Status image_import(const Globals& g, const std::string& file, const std::string& name) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::ImageStore images(sm);
  InterruptGuard guard;
  sm.set_cancel_flag(&g_interrupted);
  PhaseBars bars;
  auto i = images.import_file(file, name, std::ref(bars));
  bars.finish();
  if (!i) return fail(std::move(i.error()));
  report_added(g, *i, "Imported");
  return ok();
}

Status image_pull(const Globals& g, const std::string& url, const std::string& name, const std::string& checksum) {
  virt::PullOptions opts;
  if (!checksum.empty()) opts.sha256 = FOUNDRY_TRY(virt::parse_checksum(checksum));
  FOUNDRY_TRY(virt::check_download_url(url));
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::ImageStore images(sm);
  InterruptGuard guard;
  sm.set_cancel_flag(&g_interrupted);
  PhaseBars bars;
  auto i = images.pull(url, name, opts, std::ref(bars));
  bars.finish();
  if (!i) return fail(std::move(i.error()));
  if (opts.sha256) step(g, "Checksum sha256 verified");
  report_added(g, *i, "Pulled");
  return ok();
}

Status image_delete(const Globals& g, const std::string& name, bool force) {
  auto conn = FOUNDRY_TRY(connect(g));
  virt::StorageManager sm(conn, FOUNDRY_TRY(storage_config(g)));
  virt::ImageStore images(sm);
  FOUNDRY_TRY(images.remove(name, force));
  if (g.output == OutputFormat::Json)
    print_json({{"deleted", name}});
  else
    std::printf("Deleted image '%s'\n", name.c_str());
  return ok();
}

constexpr const char* kRules =
    "IMAGE RULES:\n"
    "  The format is detected from the data: qcow2 (magic QFI\\xfb at offset 0) or raw with a boot\n"
    "  signature (0x55AA at offset 510, MBR or GPT). The image name must end in .qcow2 or .raw and\n"
    "  match it; a source file named *.qcow2 / *.raw must match too. Anything else is refused.\n"
    "  VM files may name an image without its extension (image: debian-12).\n";

constexpr const char* kExitCodes =
    "EXIT CODES:\n"
    "  0 success, 1 usage or unreadable file, 2 validation (name, format, checksum mismatch, name taken),\n"
    "  3 cannot connect to libvirt, 5 storage error (download failed, image missing or in use)\n";

void register_image(CLI::App& app, Globals& g) {
  auto* image = app.add_subcommand("image", "Base images: list, import, pull, delete, info");
  image->require_subcommand(1);

  auto* list = image->add_subcommand("list", "List base images and the VMs using them");
  set_description(list, "List the images in the image pool: format, virtual size, space on disk and which VMs\n"
                    "have disks backed by each.");
  add_footer(list, "EXAMPLES:\n  foundry image list\n  foundry -o json image list\n");
  set_action(list, [&g] { return image_list(g); });

  auto imp_file = std::make_shared<std::string>();
  auto imp_name = std::make_shared<std::string>();
  auto* imp = image->add_subcommand("import", "Import a local image file");
  set_description(imp, "Check a local qcow2 or raw image and upload it into the image pool, with a progress bar\n"
                   "on a terminal. Nothing is left in the pool when a check or the upload fails.");
  imp->add_option("file", *imp_file, "Image file (qcow2 or bootable raw)")->required();
  imp->add_option("-n,--name", *imp_name, "Image name, e.g. debian-12.qcow2 (default: the file name)");
  add_footer(imp, std::string("EXAMPLES:\n  foundry image import ./debian-12-genericcloud-amd64.qcow2 --name debian-12.qcow2\n"
                          "  foundry image import disk.raw --name appliance-1.raw\n") +
              kRules + kExitCodes);
  set_action(imp, [&g, imp_file, imp_name] { return image_import(g, *imp_file, *imp_name); });

  auto pull_url = std::make_shared<std::string>();
  auto pull_name = std::make_shared<std::string>();
  auto pull_sum = std::make_shared<std::string>();
  auto* pull = image->add_subcommand("pull", "Download an image from a URL and import it");
  set_description(pull, 
      "Download an http, https or file URL to a temporary file ($TMPDIR, else /var/tmp; it is\n"
      "unlinked at once), verify --checksum, check the format, then upload it like `image import`.\n"
      "On a checksum mismatch or any failure nothing is kept.");
  pull->add_option("url", *pull_url, "http://, https:// or file:// URL")->required();
  pull->add_option("-n,--name", *pull_name, "Image name, e.g. debian-12.qcow2 (default: the URL's file name)");
  pull->add_option("--checksum", *pull_sum, "Expected digest as sha256:HEX");
  add_footer(pull, 
      std::string("EXAMPLES:\n"
                  "  foundry image pull https://cloud.debian.org/images/cloud/bookworm/latest/"
                  "debian-12-genericcloud-amd64.qcow2 \\\n"
                  "      --name debian-12.qcow2 --checksum sha256:<hex from SHA512SUMS/SHA256SUMS>\n"
                  "  foundry image pull file:///srv/images/fedora-43.qcow2\n") +
      kRules + kExitCodes);
  set_action(pull, [&g, pull_url, pull_name, pull_sum] { return image_pull(g, *pull_url, *pull_name, *pull_sum); });

  auto del_name = std::make_shared<std::string>();
  auto del_force = std::make_shared<bool>(false);
  auto* del = image->add_subcommand("delete", "Delete a base image (refused while VM disks use it)");
  set_description(del, "Delete an image volume. While any volume in any pool uses it as backing store the delete\n"
                   "is refused and the users are listed; --force deletes it anyway (their disks break).");
  del->add_option("name", *del_name, "Image name (the extension may be left out)")->required();
  del->add_flag("-f,--force", *del_force, "Delete even while volumes are backed by it");
  add_footer(del, std::string("EXAMPLES:\n  foundry image delete debian-12.qcow2\n") + kExitCodes);
  set_action(del, [&g, del_name, del_force] { return image_delete(g, *del_name, *del_force); });

  auto info_name = std::make_shared<std::string>();
  auto* info = image->add_subcommand("info", "Show an image and which VM disks use it");
  set_description(info, "Show an image's pool, path, format, sizes and every volume backed by it, with its VM.");
  info->add_option("name", *info_name, "Image name (the extension may be left out)")->required();
  add_footer(info, "EXAMPLES:\n  foundry image info debian-12\n  foundry -o json image info debian-12.qcow2\n");
  set_action(info, [&g, info_name] { return image_info(g, *info_name); });
  // Last: subcommands copy their parent's footer when they are created.
  set_description(image, 
      "Base OS images live as volumes in the pool foundry-images (created on first use). VM boot\n"
      "disks are qcow2 volumes backed by them, so an image is never changed by the VMs using it.\n"
      "Images travel to the hypervisor through libvirt streams, so --connect qemu+ssh://HOST/system\n"
      "imports into a remote host.");
  add_footer(image, std::string(kRules) + kExitCodes);
}

const CommandGroup reg(30, register_image);

}  // namespace

}  // namespace foundry::cli
