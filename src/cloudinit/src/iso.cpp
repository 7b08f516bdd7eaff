#include "foundry/cloudinit/iso.h"

// We consume libisofs's burn_source ourselves instead of through libburn;
// this macro makes libisofs.h declare the struct.
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string_view>

#include "foundry/common/file.h"
#include "foundry/common/log.h"

namespace foundry::cloudinit {
namespace {

// ---- RAII for libisofs handles ---------------------------------------------

struct ImageUnref {
  void operator()(IsoImage* p) const { iso_image_unref(p); }
};
struct WriteOptsFree {
  void operator()(IsoWriteOpts* p) const { iso_write_opts_free(p); }
};
struct StreamUnref {
  void operator()(IsoStream* p) const { iso_stream_unref(p); }
};
// The burn_source owns the writer thread. free_data() stops the writer if it
// is still producing (after a failed read) and joins it; the struct itself
// was calloc()ed by iso_image_create_burn_source().
struct BurnSourceFree {
  void operator()(burn_source* p) const {
    p->free_data(p);
    std::free(p);
  }
};
using ImagePtr = std::unique_ptr<IsoImage, ImageUnref>;
using WriteOptsPtr = std::unique_ptr<IsoWriteOpts, WriteOptsFree>;
using StreamPtr = std::unique_ptr<IsoStream, StreamUnref>;
using BurnSourcePtr = std::unique_ptr<burn_source, BurnSourceFree>;

// libisofs keeps one process-wide message queue. Builds take this lock so the
// messages drained after a failed build are that build's own. A build takes
// well under a millisecond, so serializing builds costs nothing that matters.
std::mutex g_build_mutex;

// Empties the queue and returns the text of the most severe message in it.
std::string drain_messages() {
  std::string worst;
  int worst_rank = -1;
  for (;;) {
    int code = 0, imgid = 0;
    char text[ISO_MSGS_MESSAGE_LEN] = {};
    char sev[80] = {};
    if (iso_obtain_msgs(const_cast<char*>("ALL"), &code, &imgid, text, sev) <= 0) break;
    int rank = 0;
    iso_text_to_sev(sev, &rank);
    spdlog::debug("libisofs {}: {}", sev, text);
    if (rank > worst_rank) {
      worst_rank = rank;
      worst = text;
    }
  }
  return worst;
}

// An Error for a libisofs return code: iso_error_to_msg() as the message, the
// code and any queued message text as detail (shown with --verbose).
Error iso_error(int rc, std::string_view what) {
  std::string queued = drain_messages();
  Error e(ErrorKind::Operation, fmt::format("{}: {}", what, iso_error_to_msg(rc)));
  e.with_detail(fmt::format("libisofs error 0x{:08x}{}{}", static_cast<unsigned>(rc),
                            queued.empty() ? "" : ": ", queued));
  return e;
}

#define ISO_CHECK(call, ...)                                                              \
  do {                                                                                    \
    int iso_rc_ = (call);                                                                 \
    if (iso_rc_ < 0) return tl::unexpected(iso_error(iso_rc_, fmt::format(__VA_ARGS__))); \
  } while (0)

// iso_init_with_flag(1): bit0 keeps libisofs from calling setlocale(), which
// would change the whole process's locale behind the caller's back. Our file
// names are ASCII, so the C locale's charset is all libisofs needs.
Status init_libisofs() {
  static const Status status = []() -> Status {
    if (!iso_lib_is_compatible(iso_lib_header_version_major, iso_lib_header_version_minor,
                               iso_lib_header_version_micro)) {
      int ma = 0, mi = 0, mc = 0;
      iso_lib_version(&ma, &mi, &mc);
      return fail(Error(ErrorKind::Operation,
                        fmt::format("libisofs {}.{}.{} is older than {}.{}.{}, which Foundry was "
                                    "built against",
                                    ma, mi, mc, iso_lib_header_version_major,
                                    iso_lib_header_version_minor, iso_lib_header_version_micro))
                      .with_hint("install the libisofs6 package that matches libisofs-dev"));
    }
    ISO_CHECK(iso_init_with_flag(1), "initialise libisofs");
    // Queue problems (drained into the Error), print nothing: libraries do
    // not write to the terminal.
    ISO_CHECK(iso_set_msgs_severities(const_cast<char*>("SORRY"), const_cast<char*>("NEVER"),
                                      const_cast<char*>("libisofs")),
              "set libisofs message severities");
    return ok();
  }();
  return status;
}

bool valid_root_name(std::string_view n) {
  if (n.empty() || n == "." || n == ".." || n.size() > 255) return false;
  return std::none_of(n.begin(), n.end(), [](char c) { return c == '/' || c == '\0'; });
}

// ISO 9660 directory records store the year as an offset from 1900 in one
// byte, so the last instant they can hold is 2155-12-31T23:59:59Z.
constexpr int64_t kLastIsoInstant = 5869583999;

// "YYYYMMDDhhmmss00": libisofs copies this text into the volume descriptors
// as creation and modification date with GMT as zone, and derives its notion
// of "now" from it, so no clock reading reaches the image.
std::string volume_time_text(int64_t ts) {
  time_t t = static_cast<time_t>(ts);
  struct tm tm {};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}00", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void set_node_attrs(IsoNode* node, mode_t mode, time_t ts) {
  iso_node_set_permissions(node, mode);
  iso_node_set_uid(node, 0);
  iso_node_set_gid(node, 0);
  iso_node_set_mtime(node, ts);
  iso_node_set_atime(node, ts);
  iso_node_set_ctime(node, ts);
}

Result<std::vector<uint8_t>> build_locked(std::vector<IsoEntry> files, const IsoOptions& opts) {
  const time_t ts = static_cast<time_t>(opts.timestamp);

  IsoImage* raw_image = nullptr;
  ISO_CHECK(iso_image_new(opts.volume_id.c_str(), &raw_image), "create image '{}'", opts.volume_id);
  ImagePtr image(raw_image);
  iso_image_set_volume_id(image.get(), opts.volume_id.c_str());

  IsoDir* root = iso_image_get_root(image.get());
  set_node_attrs(reinterpret_cast<IsoNode*>(root), 0755, ts);

  for (auto& f : files) {
    // libisofs adopts the buffer and free()s it with the stream.
    auto* buf = static_cast<unsigned char*>(std::malloc(std::max<size_t>(f.content.size(), 1)));
    if (buf == nullptr)
      return fail(ErrorKind::Operation, "out of memory for {} ({} bytes)", f.name,
                  f.content.size());
    std::memcpy(buf, f.content.data(), f.content.size());
    IsoStream* raw_stream = nullptr;
    int rc = iso_memory_stream_new(buf, f.content.size(), &raw_stream);
    if (rc < 0) {
      std::free(buf);
      return tl::unexpected(iso_error(rc, fmt::format("create the stream for {}", f.name)));
    }
    StreamPtr stream(raw_stream);
    IsoFile* node = nullptr;
    ISO_CHECK(iso_image_add_new_file(image.get(), root, f.name.c_str(), stream.get(), &node),
              "add {} to the image", f.name);
    stream.release();  // the file node holds the reference now
    set_node_attrs(reinterpret_cast<IsoNode*>(node), 0644, ts);
  }

  IsoWriteOpts* raw_opts = nullptr;
  ISO_CHECK(iso_write_opts_new(&raw_opts, 0), "create write options");
  WriteOptsPtr wopts(raw_opts);
  IsoWriteOpts* o = wopts.get();
  ISO_CHECK(iso_write_opts_set_iso_level(o, 3), "set ISO level 3");
  ISO_CHECK(iso_write_opts_set_rockridge(o, 1), "enable Rock Ridge");
  ISO_CHECK(iso_write_opts_set_joliet(o, 1), "enable Joliet");
  // Keep the volume id as given ("cidata", lowercase, like genisoimage
  // writes it for cloud-localds) instead of upper-casing it to d-characters.
  ISO_CHECK(iso_write_opts_set_relaxed_vol_atts(o, 1), "keep the volume id's case");
  // Joliet names exactly as given ("user-data"): no forced dot and no ";1"
  // version, as genisoimage (cloud-localds) writes them. The ECMA-119 tree
  // keeps the standard's "USER_DATA.;1" for readers without extensions.
  ISO_CHECK(iso_write_opts_set_no_force_dots(o, 2), "drop forced dots from Joliet names");
  ISO_CHECK(iso_write_opts_set_omit_version_numbers(o, 2), "drop versions from Joliet names");
  // Modes and owners are set on the nodes above; replace mode 2 enforces
  // the same values for anything libisofs creates itself.
  ISO_CHECK(iso_write_opts_set_replace_mode(o, 2, 2, 2, 2), "set replace mode");
  ISO_CHECK(iso_write_opts_set_default_dir_mode(o, 0755), "set directory mode");
  ISO_CHECK(iso_write_opts_set_default_file_mode(o, 0644), "set file mode");
  ISO_CHECK(iso_write_opts_set_default_uid(o, 0), "set uid");
  ISO_CHECK(iso_write_opts_set_default_gid(o, 0), "set gid");
  // Rock Ridge TF fields and (with dir_rec_mtime bits 0 and 1) the ECMA-119
  // and Joliet directory records take this timestamp instead of "now".
  ISO_CHECK(iso_write_opts_set_replace_timestamps(o, 2), "replace timestamps");
  ISO_CHECK(iso_write_opts_set_default_timestamp(o, ts), "set the timestamp");
  ISO_CHECK(iso_write_opts_set_dir_rec_mtime(o, 1 | 2), "record mtime in directory records");
  // GMT keeps the builder's time zone out of the bytes.
  ISO_CHECK(iso_write_opts_set_always_gmt(o, 1), "record times as GMT");
  std::string vol_time = volume_time_text(opts.timestamp);
  ISO_CHECK(iso_write_opts_set_pvd_times(o, ts, ts, 0, ts, vol_time.data()), "set volume times");
  ISO_CHECK(iso_write_opts_set_sort_files(o, 1), "sort files");
  ISO_CHECK(iso_write_opts_set_record_md5(o, 0, 0), "disable MD5 tags");
  // The default ring buffer is 2 MiB; a seed ISO is a few blocks.
  ISO_CHECK(iso_write_opts_set_fifo_size(o, 32), "set the ring buffer size");

  burn_source* raw_src = nullptr;
  ISO_CHECK(iso_image_create_burn_source(image.get(), o, &raw_src), "start the image writer");
  BurnSourcePtr src(raw_src);

  const off_t total = src->get_size(src.get());
  if (total <= 0)
    return fail(ErrorKind::Operation, "libisofs reported an image size of {} bytes", total);
  std::vector<uint8_t> out(static_cast<size_t>(total));
  size_t done = 0;
  constexpr size_t kChunk = 64 * 1024;
  while (done < out.size()) {
    int want = static_cast<int>(std::min(kChunk, out.size() - done));
    int n = src->read_xt(src.get(), out.data() + done, want);
    if (n < 0)
      return tl::unexpected(iso_error(static_cast<int>(ISO_BUF_READ_ERROR), "read the image"));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  // The writer reports its own failures by ending the stream early and
  // marking the ring buffer as failed (state 3 or 7).
  int state = iso_ring_buffer_get_status(src.get(), nullptr, nullptr);
  if (done != out.size() || state == 3 || state == 7) {
    std::string why = drain_messages();
    return fail(Error(ErrorKind::Operation, fmt::format("libisofs wrote {} of {} bytes{}{}", done,
                                                        out.size(), why.empty() ? "" : ": ", why))
                    .with_detail(fmt::format("ring buffer state {}", state)));
  }
  src.reset();
  drain_messages();
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> build_iso(std::vector<IsoEntry> files, const IsoOptions& opts) {
  if (opts.timestamp < 0 || opts.timestamp > kLastIsoInstant)
    return fail(
        Error(ErrorKind::Config,
              fmt::format("ISO timestamp {} is outside 0..{} (1970-01-01 to 2155-12-31 UTC)",
                          opts.timestamp, kLastIsoInstant))
            .with_hint("set SOURCE_DATE_EPOCH to a Unix time in that range"));
  if (opts.volume_id.empty() || opts.volume_id.size() > 32)
    return fail(ErrorKind::Config, "ISO volume id '{}' must have 1 to 32 characters",
                opts.volume_id);
  // Name order makes the directory and the data layout independent of the
  // caller's order.
  std::sort(files.begin(), files.end(),
            [](const IsoEntry& a, const IsoEntry& b) { return a.name < b.name; });
  for (size_t i = 0; i < files.size(); ++i) {
    if (!valid_root_name(files[i].name))
      return fail(ErrorKind::Config, "'{}' is not a valid file name for the ISO root",
                  files[i].name);
    if (i > 0 && files[i].name == files[i - 1].name)
      return fail(ErrorKind::Config, "file '{}' is given twice for the ISO", files[i].name);
  }

  if (auto st = init_libisofs(); !st) return tl::unexpected(st.error());
  std::lock_guard lock(g_build_mutex);
  auto r = build_locked(std::move(files), opts);
  if (!r) r.error().wrap(fmt::format("build ISO '{}'", opts.volume_id));
  return r;
}

Result<std::vector<uint8_t>> build_cloud_init_iso(const Documents& docs, int64_t timestamp) {
  std::vector<IsoEntry> files{
      {"meta-data", docs.meta_data},
      {"network-config", docs.network_config},
      {"user-data", docs.user_data},
  };
  IsoOptions opts;
  opts.volume_id = "cidata";
  opts.timestamp = timestamp;
  return build_iso(std::move(files), opts);
}

Status write_iso_file(const std::string& path, const std::vector<uint8_t>& image) {
  std::string_view data(reinterpret_cast<const char*>(image.data()), image.size());
  return write_file_atomic(path, data, 0644).map_error([&](Error e) {
    return std::move(e.wrap(fmt::format("write cloud-init ISO {}", path)));
  });
}

}  // namespace foundry::cloudinit
