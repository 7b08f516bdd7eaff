#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "fixtures.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/common/file.h"
#include "iso_reader.h"

using namespace foundry;
using namespace foundry::cloudinit;
using foundry::cloudinit::testing::parse_iso;
using foundry::cloudinit::testing::seed_vm;
namespace fs = std::filesystem;

namespace {

Documents seed_docs() {
  GenerateOptions o;
  o.source_date_epoch = 1730534400;
  return generate(seed_vm(), o).value();
}

std::vector<uint8_t> seed_iso(int64_t ts) {
  auto r = build_cloud_init_iso(seed_docs(), ts);
  EXPECT_TRUE(r) << r.error().to_string() << " / " << r.error().detail();
  return r ? *r : std::vector<uint8_t>{};
}

// Restores TZ on scope exit so one test cannot leak a time zone into another.
class TzGuard {
 public:
  explicit TzGuard(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~TzGuard() {
    if (old_.empty())
      ::unsetenv("TZ");
    else
      ::setenv("TZ", old_.c_str(), 1);
    ::tzset();
  }

 private:
  std::string old_;
};

}  // namespace

TEST(CloudInitIso, VolumeIdJolietRockRidgeAndTheThreeFiles) {
  Documents d = seed_docs();
  auto iso = seed_iso(1730534400);
  auto view = parse_iso(iso);
  ASSERT_TRUE(view.error.empty()) << view.error;

  const auto* pvd = view.primary();
  ASSERT_NE(pvd, nullptr);
  EXPECT_EQ(pvd->volume_id, "cidata");
  EXPECT_TRUE(pvd->root_has_sp) << "no SUSP SP entry: Rock Ridge missing";
  EXPECT_TRUE(pvd->root_has_rr_er) << "no ER entry for RRIP";
  ASSERT_EQ(pvd->files.size(), 3u);
  const char* names[] = {"meta-data", "network-config", "user-data"};
  // Level 3 ECMA-119 identifiers: d-characters, forced dot, version.
  const char* iso_names[] = {"META_DATA.;1", "NETWORK_CONFIG.;1", "USER_DATA.;1"};
  const std::string* contents[] = {&d.meta_data, &d.network_config, &d.user_data};
  for (int i = 0; i < 3; ++i) {
    const auto& f = pvd->files[i];
    EXPECT_EQ(f.rr_name, names[i]);  // sorted by name
    EXPECT_EQ(f.iso_name, iso_names[i]);
    EXPECT_EQ(f.content, *contents[i]);
    EXPECT_TRUE(f.has_px && f.has_tf);
    EXPECT_EQ(f.mode, S_IFREG | 0644u) << std::oct << f.mode;
    EXPECT_EQ(f.uid, 0u);
    EXPECT_EQ(f.gid, 0u);
  }

  const auto* joliet = view.joliet();
  ASSERT_NE(joliet, nullptr) << "no Joliet supplementary volume descriptor";
  EXPECT_TRUE(joliet->escapes == "%/@" || joliet->escapes == "%/C" || joliet->escapes == "%/E")
      << joliet->escapes;
  EXPECT_EQ(joliet->volume_id, "cidata");
  ASSERT_EQ(joliet->files.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(joliet->files[i].iso_name, names[i]);  // no ";1", like genisoimage
    EXPECT_EQ(joliet->files[i].content, *contents[i]);
  }
}

TEST(CloudInitIso, SameInputSameBytes) {
  auto a = seed_iso(0);
  auto b = seed_iso(0);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  // The builder's time zone does not leak in.
  TzGuard tz("America/New_York");
  EXPECT_EQ(seed_iso(0), a);
}

TEST(CloudInitIso, EveryTimestampIsTheGivenInstant) {
  // If libisofs put the wall clock anywhere, one of these fields would show
  // it: all of them must read 2024-11-02 08:00:00 GMT.
  auto iso = seed_iso(1730534400);
  auto view = parse_iso(iso);
  ASSERT_TRUE(view.error.empty()) << view.error;
  const std::vector<uint8_t> short_form{124, 11, 2, 8, 0, 0, 0};  // years since 1900, ..., GMT+0
  const std::string long_form("2024110208000000\0", 17);
  const std::string unset("0000000000000000\0", 17);
  size_t fields = 0;
  for (auto [b, e] : view.time_ranges) {
    if (e - b == 4 * 17) {  // creation, modification, expiration, effective
      for (int k = 0; k < 4; ++k) {
        std::string f(reinterpret_cast<const char*>(&iso[b + 17 * k]), 17);
        EXPECT_TRUE(f == long_form || (k == 2 && f == unset)) << "date " << k << " at " << b;
        ++fields;
      }
      continue;
    }
    ASSERT_EQ((e - b) % 7, 0u) << "range at " << b;
    for (size_t o = b; o < e; o += 7) {
      EXPECT_EQ(std::vector<uint8_t>(iso.begin() + o, iso.begin() + o + 7), short_form)
          << "time at byte " << o;
      ++fields;
    }
  }
  EXPECT_GT(fields, 20u);
}

TEST(CloudInitIso, FileOrderOfTheCallerDoesNotMatter) {
  std::vector<IsoEntry> one{{"a", "1"}, {"b", "22"}, {"c", "333"}};
  std::vector<IsoEntry> two{{"c", "333"}, {"a", "1"}, {"b", "22"}};
  EXPECT_EQ(build_iso(one).value(), build_iso(two).value());
}

TEST(CloudInitIso, ADifferentEpochChangesOnlyTimeFields) {
  auto a = seed_iso(0);
  auto b = seed_iso(1730534400);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_NE(a, b);
  auto view = parse_iso(a);
  ASSERT_TRUE(view.error.empty()) << view.error;
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    ++differing;
    EXPECT_TRUE(view.in_time_field(i)) << "byte " << i << " (sector " << i / 2048 << ", offset "
                                       << i % 2048 << ") differs outside any time field";
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(differing, 0u);
}

TEST(CloudInitIso, TheEpochIsWhatTheVolumeDescriptorSays) {
  auto iso = seed_iso(1730534400);  // 2024-11-02 08:00:00 UTC
  ASSERT_GE(iso.size(), 17u * 2048);
  std::string created(reinterpret_cast<const char*>(&iso[16 * 2048 + 813]), 16);
  EXPECT_EQ(created, "2024110208000000");
  EXPECT_EQ(iso[16 * 2048 + 813 + 16], 0) << "time zone offset must be GMT";
}

TEST(CloudInitIso, RefusesBadInput) {
  auto r = build_iso({{"a", "1"}, {"a", "2"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("given twice"), std::string::npos);
  r = build_iso({{"dir/file", "1"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("dir/file"), std::string::npos);
  r = build_iso({{"", "1"}});
  ASSERT_FALSE(r);
  IsoOptions late;
  late.timestamp = 5869583999 + 1;  // 2156-01-01
  r = build_iso({{"a", "1"}}, late);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Config);
  EXPECT_NE(r.error().hint().find("SOURCE_DATE_EPOCH"), std::string::npos);
  IsoOptions negative;
  negative.timestamp = -1;
  EXPECT_FALSE(build_iso({{"a", "1"}}, negative));
  IsoOptions last;
  last.timestamp = 5869583999;
  EXPECT_TRUE(build_iso({{"a", "1"}}, last));
}

TEST(CloudInitIso, EmptyAndLargeFiles) {
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = char('a' + (i / 4096) % 26);
  auto r = build_iso({{"empty", ""}, {"big", big}});
  ASSERT_TRUE(r) << r.error().to_string();
  auto view = parse_iso(*r);
  ASSERT_TRUE(view.error.empty()) << view.error;
  ASSERT_EQ(view.primary()->files.size(), 2u);
  EXPECT_EQ(view.primary()->files[0].rr_name, "big");
  EXPECT_EQ(view.primary()->files[0].content, big);
  EXPECT_EQ(view.primary()->files[1].content, "");
}

TEST(CloudInitIso, WriteIsoFileIsAtomicAndExact) {
  fs::path dir = fs::temp_directory_path() / ("foundry-iso-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { fs::remove_all(p); }
  } cleanup{dir};
  auto iso = seed_iso(0);
  std::string path = (dir / "my-vm_cloudinit.iso").string();
  ASSERT_TRUE(write_iso_file(path, iso));
  auto back = read_file(path).value();
  EXPECT_EQ(std::vector<uint8_t>(back.begin(), back.end()), iso);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  auto bad = write_iso_file((dir / "missing" / "x.iso").string(), iso);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("x.iso"), std::string::npos) << bad.error().to_string();
}
