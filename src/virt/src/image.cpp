#include "foundry/virt/image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <map>

#include "foundry/common/log.h"
#include "foundry/common/unique_fd.h"
#include "foundry/virt/download.h"

namespace foundry::virt {

namespace {

constexpr std::string_view kQcow2Magic = "QFI\xfb";

uint64_t be64(std::string_view h, size_t off) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(h[off + i]);
  return v;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  auto tail = s.substr(s.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

std::string_view ext_of(ImageFormat f) { return f == ImageFormat::Qcow2 ? ".qcow2" : ".raw"; }

// Strips a known extension: "debian-12.qcow2" -> "debian-12".
std::string stem(std::string_view name) {
  if (iends_with(name, ".qcow2")) return std::string(name.substr(0, name.size() - 6));
  if (iends_with(name, ".raw")) return std::string(name.substr(0, name.size() - 4));
  return std::string(name);
}

// Last path component of a file path or URL (query and fragment dropped).
std::string base_name(std::string_view s) {
  auto cut = s.find_first_of("?#");
  if (s.find("://") != std::string_view::npos && cut != std::string_view::npos) s = s.substr(0, cut);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  auto slash = s.rfind('/');
  return std::string(slash == std::string_view::npos ? s : s.substr(slash + 1));
}

Status check_name_syntax(std::string_view name) {
  bool good = !name.empty() && name.size() <= 200 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) good = false;
  if (!good)
    return fail(Error(ErrorKind::Validation, fmt::format("invalid image name '{}'", name))
                    .with_hint("use letters, digits, '.', '_' and '-', starting with a letter or digit, "
                               "e.g. debian-12.qcow2"));
  if (!format_from_extension(name))
    return fail(Error(ErrorKind::Validation,
                      fmt::format("image name '{}' must have a .qcow2 or .raw extension", name))
                    .with_hint(fmt::format("name it after its format, e.g. --name {}.qcow2", stem(name))));
  return ok();
}

}  // namespace

std::string_view to_string(ImageFormat f) { return f == ImageFormat::Qcow2 ? "qcow2" : "raw"; }
VolumeFormat to_volume_format(ImageFormat f) { return f == ImageFormat::Qcow2 ? VolumeFormat::Qcow2 : VolumeFormat::Raw; }

std::optional<ImageFormat> format_from_extension(std::string_view name) {
  if (iends_with(name, ".qcow2")) return ImageFormat::Qcow2;
  if (iends_with(name, ".raw")) return ImageFormat::Raw;
  return std::nullopt;
}

Result<ImageProbe> probe_image_header(std::string_view h, uint64_t file_size, const std::string& what) {
  ImageProbe p;
  p.file_size = file_size;
  if (h.size() >= 4 && h.substr(0, 4) == kQcow2Magic) {
    // Header fields (QEMU qcow2 spec): version @4, backing_file_offset @8,
    // size (virtual) @24, all big-endian.
    if (h.size() < 32)
      return fail(ErrorKind::Validation, "{} has the qcow2 magic but a truncated header ({} bytes)", what, h.size());
    p.format = ImageFormat::Qcow2;
    p.has_backing_file = be64(h, 8) != 0;
    p.virtual_size = be64(h, 24);
    return p;
  }
  if (h.size() >= 512 && static_cast<unsigned char>(h[510]) == 0x55 && static_cast<unsigned char>(h[511]) == 0xAA) {
    p.format = ImageFormat::Raw;
    p.virtual_size = file_size;
    return p;
  }
  return fail(Error(ErrorKind::Validation,
                    fmt::format("{} is not a bootable disk image: no qcow2 magic (QFI\\xfb at offset 0) "
                                "and no boot signature (0x55AA at offset 510)",
                                what))
                  .with_hint("import a qcow2 image or a raw disk with an MBR/GPT partition table; "
                             "convert other formats with `qemu-img convert -O qcow2 IN OUT.qcow2`"));
}

Result<ImageProbe> probe_image_fd(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno(ErrorKind::Storage, "stat {}", what);
  std::string head(512, '\0');
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Storage, "read {}", what);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  head.resize(got);
  return probe_image_header(head, static_cast<uint64_t>(st.st_size), what);
}

Status check_image_name(std::string_view name, ImageFormat detected) {
  FOUNDRY_TRY(check_name_syntax(name));
  auto claimed = *format_from_extension(name);
  if (claimed != detected)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("format mismatch: image name '{}' says {} but the data is {}", name,
                                  to_string(claimed), to_string(detected)))
                    .with_hint(fmt::format("name it {}{}", stem(name), ext_of(detected))));
  return ok();
}

Status check_source_name(std::string_view source, ImageFormat detected) {
  auto base = base_name(source);
  auto claimed = format_from_extension(base);
  if (claimed && *claimed != detected)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("format mismatch: {} is named *{} but contains a {} image", source,
                                  ext_of(*claimed), to_string(detected)))
                    .with_hint(fmt::format("the file is misnamed; rename it to {}{}", stem(base), ext_of(detected))));
  return ok();
}

Result<std::string> parse_checksum(std::string_view s) {
  auto bad = [&] {
    return fail(Error(ErrorKind::Validation, fmt::format("invalid checksum '{}'", s))
                    .with_hint("give it as sha256:<64 hex digits>, e.g. from the mirror's SHA256SUMS"));
  };
  if (s.size() != 7 + 64) return bad();
  std::string prefix(s.substr(0, 7));
  std::transform(prefix.begin(), prefix.end(), prefix.begin(), [](unsigned char c) { return std::tolower(c); });
  if (prefix != "sha256:") return bad();
  std::string hex(s.substr(7));
  for (auto& c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return bad();
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return hex;
}

// ---------------------------------------------------------------- ImageStore

namespace {

// What a volume says of itself; who uses it is the caller's to add. The
// format is the name's extension (the import rules keep them in step), else
// what libvirt detected.
ImageInfo image_info(const VolumeDetails& d) {
  ImageInfo info;
  info.name = d.name;
  info.pool = d.pool;
  info.path = d.path;
  info.libvirt_format = d.format;
  info.format = format_from_extension(d.name).value_or(d.format == "qcow2" ? ImageFormat::Qcow2 : ImageFormat::Raw);
  info.capacity = d.capacity;
  info.allocation = d.allocation;
  return info;
}

}  // namespace

Result<ImageInfo> ImageStore::describe(const Volume& vol) {
  auto d = FOUNDRY_TRY(vol.details());
  ImageInfo info = image_info(d);
  for (auto& u : FOUNDRY_TRY(storage_.volumes_backed_by(d.path))) {
    auto parsed = VolumeName::parse(u.name);
    info.users.push_back(ImageUser{u.pool, u.name, parsed ? parsed->vm : ""});
  }
  return info;
}

Result<Volume> ImageStore::resolve(const std::string& name) {
  const auto& pool = storage_.config().image_pool;
  for (const auto& cand : {name, name + ".qcow2", name + ".raw"}) {
    auto v = FOUNDRY_TRY(storage_.find_volume(pool, cand));
    if (v) return std::move(*v);
    if (format_from_extension(name)) break;  // an explicit extension means exactly that name
  }
  return fail(Error(ErrorKind::Storage, fmt::format("image {} not found in pool {}", name, pool))
                  .with_hint(fmt::format("see `foundry image list`; add it with `foundry image import FILE "
                                         "--name {}.qcow2` or `foundry image pull URL --name {}.qcow2`",
                                         stem(name), stem(name))));
}

Result<ImageInfo> ImageStore::upload_checked(int fd, const std::string& source, const std::string& name,
                                             const PhaseProgressFn& progress) {
  auto probe = FOUNDRY_TRY(probe_image_fd(fd, source));
  FOUNDRY_TRY(check_image_name(name, probe.format));
  FOUNDRY_TRY(check_source_name(source, probe.format));
  if (probe.has_backing_file)
    return fail(Error(ErrorKind::Validation, fmt::format("{} is a qcow2 overlay with its own backing file", source))
                    .with_hint("flatten it first: qemu-img convert -O qcow2 IN OUT.qcow2"));
  const auto& pool = storage_.config().image_pool;
  FOUNDRY_TRY(storage_.ensure_image_pool());
  if (FOUNDRY_TRY(storage_.find_volume(pool, name)))
    return fail(Error(ErrorKind::Validation, fmt::format("image {} exists already in pool {}", name, pool))
                    .with_hint(fmt::format("delete it with `foundry image delete {}` or choose another --name", name)));
  if (::lseek(fd, 0, SEEK_SET) < 0) return fail_errno(ErrorKind::Storage, "rewind {}", source);
  ProgressFn up;
  if (progress) up = [&](uint64_t done, uint64_t total) { progress("upload", done, total); };
  auto vol = FOUNDRY_TRY_CTX(storage_.create_from_stream(pool, name, read_from_fd(fd), probe.file_size, up),
                             "upload image {} into pool {}", name, pool);
  spdlog::debug("imported {} ({} bytes, {}) as {}", source, probe.file_size, to_string(probe.format), name);
  return describe(vol);
}

Result<ImageInfo> ImageStore::import_file(const std::string& path, std::string name, const PhaseProgressFn& progress) {
  if (name.empty()) name = base_name(path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return fail(sys_error(ErrorKind::Config, fmt::format("cannot open image file {}", path))
                    .with_hint("check the path; image import takes a local file (use `foundry image pull` for URLs)"));
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && !S_ISREG(st.st_mode))
    return fail(ErrorKind::Config, "{} is not a regular file", path);
  return upload_checked(fd.get(), path, name, progress);
}

Result<ImageInfo> ImageStore::pull(const std::string& url, std::string name, const PullOptions& opts,
                                   const PhaseProgressFn& progress) {
  FOUNDRY_TRY(check_download_url(url));
  if (name.empty()) name = base_name(url);
  // Cheap checks first: nothing is downloaded for a name that cannot be used.
  FOUNDRY_TRY(check_name_syntax(name));
  const auto& pool = storage_.config().image_pool;
  if (FOUNDRY_TRY(storage_.find_volume(pool, name)))
    return fail(Error(ErrorKind::Validation, fmt::format("image {} exists already in pool {}", name, pool))
                    .with_hint(fmt::format("delete it with `foundry image delete {}` or choose another --name", name)));

  std::string dir = opts.temp_dir;
  if (dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    dir = t && *t ? t : "/var/tmp";
  }
  std::string tmpl = dir + "/foundry-pull-XXXXXX";
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd)
    return fail(sys_error(ErrorKind::Storage, fmt::format("create a temporary file in {}", dir))
                    .with_hint("set TMPDIR to a writable directory with room for the image"));
  // Unlinked at once: whatever happens next, no partial download stays behind.
  ::unlink(tmpl.c_str());

  ProgressFn down;
  if (progress) down = [&](uint64_t done, uint64_t total) { progress("download", done, total); };
  auto got = FOUNDRY_TRY_CTX(download_to_fd(url, fd.get(), down, storage_.cancel_flag()), "pull image {}", name);
  if (opts.sha256 && *opts.sha256 != got.sha256)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("checksum mismatch for {}: expected sha256:{}, got sha256:{}", url, *opts.sha256,
                                  got.sha256))
                    .with_hint("the download is corrupt or the checksum belongs to another file; nothing was kept"));
  return upload_checked(fd.get(), url, name, progress);
}

Result<std::vector<ImageInfo>> ImageStore::list() {
  std::vector<ImageInfo> out;
  const auto& pool = storage_.config().image_pool;
  auto found = FOUNDRY_TRY(storage_.connection().find_pool(pool));
  if (!found || !FOUNDRY_TRY(found->is_active())) return out;
  // One pass over every volume to find backing stores, not one per image.
  std::map<std::string, std::vector<ImageUser>> users;
  for (const auto& p : FOUNDRY_TRY(storage_.connection().pools())) {
    if (!FOUNDRY_TRY(p.is_active())) continue;
    for (const auto& v : FOUNDRY_TRY(p.volumes())) {
      // A volume that vanished since the listing backs nothing (see
      // StorageManager::volumes_backed_by).
      auto d = v.details();
      if (!d || d->backing_path.empty()) continue;
      auto parsed = VolumeName::parse(d->name);
      users[d->backing_path].push_back(ImageUser{d->pool, d->name, parsed ? parsed->vm : ""});
    }
  }
  for (const auto& v : FOUNDRY_TRY(found->volumes())) {
    auto d = FOUNDRY_TRY(v.details());
    ImageInfo info = image_info(d);
    if (auto it = users.find(d.path); it != users.end()) info.users = it->second;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<ImageInfo> ImageStore::info(const std::string& name) {
  auto vol = FOUNDRY_TRY(resolve(name));
  return describe(vol);
}

Status ImageStore::remove(const std::string& name, bool force) {
  auto vol = FOUNDRY_TRY(resolve(name));
  auto info = FOUNDRY_TRY(describe(vol));
  if (!info.users.empty() && !force) {
    std::string who;
    for (size_t i = 0; i < info.users.size(); ++i) {
      const auto& u = info.users[i];
      if (i) who += ", ";
      who += u.vm.empty() ? fmt::format("{}/{}", u.pool, u.volume) : fmt::format("VM {} ({}/{})", u.vm, u.pool, u.volume);
    }
    return fail(Error(ErrorKind::Storage, fmt::format("refusing to delete image {}: {} volume{} use{} it as backing "
                                                      "store: {}",
                                                      info.name, info.users.size(), info.users.size() == 1 ? "" : "s",
                                                      info.users.size() == 1 ? "s" : "", who))
                    .with_hint("destroy those VMs first (`foundry vm destroy NAME`); --force deletes the image "
                               "anyway and breaks their disks"));
  }
  FOUNDRY_TRY_CTX(vol.remove(), "delete image {}", info.name);
  return ok();
}

}  // namespace foundry::virt
