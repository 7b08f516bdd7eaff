// A small ISO 9660 reader for tests, written from ECMA-119, the Joliet
// specification and SUSP/RRIP 1.12. It understands exactly what the seed ISO
// needs (one flat root directory) and records where every timestamp lives,
// so a test can show that two images differ only in time fields. It is an
// independent check of libisofs's output; the integration tests add real
// tools (xorriso, isoinfo, bsdtar).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace foundry::cloudinit::testing {

constexpr size_t kSector = 2048;

struct IsoDirEntry {
  std::string iso_name;  // ECMA-119 identifier ("USER_DATA.;1") or Joliet UCS-2 decoded
  std::string rr_name;   // Rock Ridge NM, empty if none
  uint32_t mode = 0;     // Rock Ridge PX
  uint32_t uid = ~0u, gid = ~0u;
  bool has_px = false, has_tf = false;
  std::string content;
};

struct IsoVolume {
  uint8_t type = 0;  // 1 primary, 2 supplementary (Joliet)
  std::string volume_id;
  std::string escapes;
  std::vector<IsoDirEntry> files;  // in directory order, without "." and ".."
  bool root_has_sp = false, root_has_rr_er = false;
};

struct IsoImageView {
  std::vector<IsoVolume> volumes;
  // [begin, end) byte ranges that hold dates or times.
  std::vector<std::pair<size_t, size_t>> time_ranges;
  std::string error;  // non-empty when the image could not be parsed

  const IsoVolume* primary() const {
    for (const auto& v : volumes)
      if (v.type == 1) return &v;
    return nullptr;
  }
  const IsoVolume* joliet() const {
    for (const auto& v : volumes)
      if (v.type == 2) return &v;
    return nullptr;
  }
  bool in_time_field(size_t off) const {
    for (auto [b, e] : time_ranges)
      if (off >= b && off < e) return true;
    return false;
  }
};

namespace detail {

inline uint32_t le32(const std::vector<uint8_t>& d, size_t o) {
  return d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (uint32_t(d[o + 3]) << 24);
}

inline std::string trim_right(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

inline std::string ucs2be_to_ascii(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i + 1 < n; i += 2) out += p[i] == 0 ? char(p[i + 1]) : '?';
  return out;
}

// Walks SUSP entries in [b, e), following CE continuation areas.
inline void parse_susp(const std::vector<uint8_t>& d, size_t b, size_t e, IsoDirEntry& ent,
                       IsoImageView& view, IsoVolume* vol, int depth = 0) {
  while (b + 4 <= e && depth < 4) {
    uint8_t len = d[b + 2];
    if (len < 4 || b + len > e) break;
    std::string sig(reinterpret_cast<const char*>(&d[b]), 2);
    if (sig == "PX" && len >= 36) {
      ent.has_px = true;
      ent.mode = le32(d, b + 4);
      ent.uid = le32(d, b + 20);
      ent.gid = le32(d, b + 28);
    } else if (sig == "NM" && len >= 5) {
      ent.rr_name.append(reinterpret_cast<const char*>(&d[b + 5]), len - 5);
    } else if (sig == "TF") {
      ent.has_tf = true;
      view.time_ranges.emplace_back(b + 5, b + len);
    } else if (sig == "SP") {
      if (vol) vol->root_has_sp = true;
    } else if (sig == "ER") {
      if (vol) vol->root_has_rr_er = true;
    } else if (sig == "CE" && len >= 28) {
      size_t cb = size_t(le32(d, b + 4)) * kSector + le32(d, b + 12);
      size_t cl = le32(d, b + 20);
      if (cb + cl <= d.size()) parse_susp(d, cb, cb + cl, ent, view, vol, depth + 1);
    } else if (sig == "ST") {
      break;
    }
    b += len;
  }
}

}  // namespace detail

inline IsoImageView parse_iso(const std::vector<uint8_t>& d) {
  using namespace detail;
  IsoImageView view;
  if (d.size() < 17 * kSector || d.size() % kSector != 0) {
    view.error = "image too small or not a multiple of 2048 bytes";
    return view;
  }
  for (size_t s = 16; (s + 1) * kSector <= d.size(); ++s) {
    size_t vd = s * kSector;
    if (std::string(reinterpret_cast<const char*>(&d[vd + 1]), 5) != "CD001") {
      view.error = "volume descriptor without CD001";
      return view;
    }
    uint8_t type = d[vd];
    if (type == 255) break;
    if (type != 1 && type != 2) continue;
    IsoVolume vol;
    vol.type = type;
    if (type == 2) {
      vol.volume_id = trim_right(ucs2be_to_ascii(&d[vd + 40], 32));
      vol.escapes = std::string(reinterpret_cast<const char*>(&d[vd + 88]), 3);
    } else {
      vol.volume_id = trim_right(std::string(reinterpret_cast<const char*>(&d[vd + 40]), 32));
    }
    // Creation, modification, expiration, effective dates (17 bytes each)
    // and the root directory record's recording time.
    view.time_ranges.emplace_back(vd + 813, vd + 813 + 4 * 17);
    view.time_ranges.emplace_back(vd + 156 + 18, vd + 156 + 25);
    uint32_t root_lba = le32(d, vd + 156 + 2);
    uint32_t root_len = le32(d, vd + 156 + 10);
    size_t rb = size_t(root_lba) * kSector;
    if (rb + root_len > d.size()) {
      view.error = "root directory beyond the image";
      return view;
    }
    size_t p = rb;
    size_t end = rb + root_len;
    while (p < end) {
      uint8_t len = d[p];
      if (len == 0) {  // records never cross a sector: skip the padding
        p = (p / kSector + 1) * kSector;
        continue;
      }
      if (p + len > end || len < 34) {
        view.error = "bad directory record";
        return view;
      }
      view.time_ranges.emplace_back(p + 18, p + 25);
      uint8_t name_len = d[p + 32];
      size_t su = p + 33 + name_len + ((name_len % 2 == 0) ? 1 : 0);
      IsoDirEntry ent;
      bool dot = name_len == 1 && (d[p + 33] == 0 || d[p + 33] == 1);
      if (type == 2)
        ent.iso_name = ucs2be_to_ascii(&d[p + 33], name_len);
      else
        ent.iso_name.assign(reinterpret_cast<const char*>(&d[p + 33]), name_len);
      parse_susp(d, su, p + len, ent, view, (dot && d[p + 33] == 0) ? &vol : nullptr);
      if (!dot) {
        size_t fb = size_t(le32(d, p + 2)) * kSector;
        size_t fl = le32(d, p + 10);
        if (fb + fl > d.size()) {
          view.error = "file extent beyond the image";
          return view;
        }
        ent.content.assign(reinterpret_cast<const char*>(&d[fb]), fl);
        vol.files.push_back(std::move(ent));
      }
      p += len;
    }
    view.volumes.push_back(std::move(vol));
  }
  return view;
}

}  // namespace foundry::cloudinit::testing
