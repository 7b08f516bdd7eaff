// Disk images for the targets: qcow2 (libvirt, Proxmox), raw (AWS import,
// dd to bare metal) and fixed VHD (Azure), all from assemble_disk's raw disk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>

#include "artifacts_util.h"
#include "foundry/common/file.h"
#include "foundry/common/unique_fd.h"
#include "foundry/platform/artifacts.h"
#include "foundry/platform/gpt.h"

namespace foundry::platform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::emit;
using detail::since;

std::string_view image_extension(ImageFormat f) {
  switch (f) {
    case ImageFormat::Raw: return "raw";
    case ImageFormat::Qcow2: return "qcow2";
    case ImageFormat::Vpc: return "vhd";
  }
  return "raw";
}

namespace {

// Virtual Hard Disk Image Format Specification (Microsoft, 2006): a 512-byte
// big-endian footer; time stamp in seconds since 2000-01-01 00:00 UTC.
constexpr size_t kVhdFooter = 512;
constexpr int64_t kVhdEpoch = 946684800;
constexpr size_t kVhdTimestamp = 24, kVhdChecksum = 64, kVhdUuid = 68;

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace

Status normalize_vhd_footer(const std::string& vhd, int64_t epoch, const Guid& uuid) {
  UniqueFd fd(::open(vhd.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return fail_errno(ErrorKind::Storage, "cannot open VHD {}", vhd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno(ErrorKind::Storage, "cannot stat {}", vhd);
  if (static_cast<uint64_t>(st.st_size) < kVhdFooter)
    return fail(ErrorKind::Validation, "{} is too small to be a VHD", vhd);
  const off_t at = st.st_size - static_cast<off_t>(kVhdFooter);
  std::array<uint8_t, kVhdFooter> f{};
  if (::pread(fd.get(), f.data(), f.size(), at) != static_cast<ssize_t>(f.size()))
    return fail_errno(ErrorKind::Storage, "cannot read the footer of {}", vhd);
  if (std::string_view(reinterpret_cast<const char*>(f.data()), 8) != "conectix")
    return fail(Error(ErrorKind::Validation, fmt::format("{} has no VHD footer (cookie 'conectix')", vhd))
                    .with_hint("only fixed VHDs (qemu-img -O vpc -o subformat=fixed) end in a footer"));
  const int64_t ts = std::max<int64_t>(0, epoch - kVhdEpoch);
  put_be32(f.data() + kVhdTimestamp, static_cast<uint32_t>(ts));
  std::copy(uuid.bytes.begin(), uuid.bytes.end(), f.begin() + kVhdUuid);
  put_be32(f.data() + kVhdChecksum, 0);
  uint32_t sum = 0;
  for (uint8_t b : f) sum += b;
  put_be32(f.data() + kVhdChecksum, ~sum);
  if (::pwrite(fd.get(), f.data(), f.size(), at) != static_cast<ssize_t>(f.size()))
    return fail_errno(ErrorKind::Storage, "cannot write the footer of {}", vhd);
  return ok();
}

Result<std::vector<ArtifactFile>> write_disk_images(const DiskImagesOptions& o) {
  const std::string ctx = fmt::format("write disk images from {}", o.raw_disk);
  std::error_code ec;
  if (o.output_dir.empty()) return fail(ErrorKind::Config, "{}: no output directory given", ctx);
  if (!fs::is_regular_file(o.raw_disk, ec))
    return fail(Error(ErrorKind::Config, fmt::format("{}: {} is not a file", ctx, o.raw_disk))
                    .with_hint("make it with assemble_disk (format raw)"));
  const uint64_t size = fs::file_size(o.raw_disk, ec);
  if (size == 0 || size % kMiB != 0)
    return fail(Error(ErrorKind::Validation,
                      fmt::format("{}: the raw disk is {} bytes, not a whole number of MiB", ctx, size))
                    .with_hint("Azure takes only VHDs whose virtual size is a multiple of 1 MiB; give the disk a "
                               "size in MiB or GiB"));
  FOUNDRY_TRY(detail::require_tools(ctx, {{"qemu-img", "qemu-utils"}}));
  FOUNDRY_TRY_CTX(make_dirs(o.output_dir), "{}", ctx);
  const auto epoch = detail::epoch_or_env(o.common.source_date_epoch);
  const std::string raw_abs = fs::absolute(o.raw_disk, ec).lexically_normal().string();
  auto work = FOUNDRY_TRY_CTX(detail::scratch_for(o.output_dir + "/x", o.common, ".foundry-images-"), "{}", ctx);

  std::vector<ArtifactFile> out;
  for (ImageFormat f : o.formats) {
    const auto t = Clock::now();
    const std::string name = fmt::format("{}.{}", o.basename, image_extension(f));
    const std::string dest = fs::absolute(o.output_dir + "/" + name, ec).lexically_normal().string();
    emit(o.common.progress, ProgressEvent::Kind::Begin, std::string("image-") + std::string(image_extension(f)),
         fmt::format("writing {}", name));
    if (dest == raw_abs) {
      // The raw disk is already where the raw image goes.
      out.push_back(detail::artifact_file(dest));
      emit(o.common.progress, ProgressEvent::Kind::End, std::string("image-") + std::string(image_extension(f)),
           fmt::format("{} (in place)", name), since(t));
      continue;
    }
    const std::string tmp = work.path() + "/" + name;
    // qemu-img writes the raw copy sparse; the others as their format says.
    FOUNDRY_TRY_CTX(convert_image(o.raw_disk, tmp, f, f == ImageFormat::Qcow2 && o.compress_qcow2,
                                  o.common.tool_timeout),
                    "{}", ctx);
    if (f == ImageFormat::Vpc) {
      // qemu's vpc driver stamps the footer with the current time and a
      // random UUID.
      FOUNDRY_TRY_CTX(normalize_vhd_footer(tmp, epoch.value_or(kVhdEpoch),
                                           derive_guid(o.common.seed, "vhd-unique-id")),
                      "{}", ctx);
    }
    FOUNDRY_TRY(detail::rename_into_place(tmp, dest, ctx));
    out.push_back(detail::artifact_file(dest));
    emit(o.common.progress, ProgressEvent::Kind::End, std::string("image-") + std::string(image_extension(f)),
         fmt::format("{} ({} MiB on disk)", name, out.back().size / kMiB), since(t));
  }
  return out;
}

}  // namespace foundry::platform
