// Storage against libvirt's in-process test driver (test:///default): no
// daemon, no root, and every connection starts from the same fresh state, so
// each test opens exactly one connection.
//
// What the test driver lacks: virStorageVolUpload ("not supported by the
// connection driver"), and it touches no files. Tests that need bytes to
// arrive use a recording uploader (the StorageManager seam); the real stream
// upload is covered by tests/e2e/virt against a real libvirtd.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/common/unique_fd.h"
#include "foundry/virt/download.h"
#include "foundry/virt/image.h"
#include "foundry/virt/storage.h"
#include "test_support.h"

namespace foundry::virt {
namespace {

namespace fs = std::filesystem;
using foundry::testing::HttpServer;
using foundry::testing::TempDir;

std::string qcow2_bytes(uint64_t virtual_size, size_t total = 4096) {
  std::string h(total, '\0');
  h[0] = 'Q';
  h[1] = 'F';
  h[2] = 'I';
  h[3] = '\xfb';
  h[7] = 3;
  for (int i = 0; i < 8; ++i) h[24 + i] = static_cast<char>((virtual_size >> (56 - 8 * i)) & 0xff);
  for (size_t i = 512; i < total; ++i) h[i] = static_cast<char>(i * 7);  // recognisable payload
  return h;
}

std::string raw_bootable(size_t total = 8192) {
  std::string d(total, '\x01');
  d[510] = '\x55';
  d[511] = '\xaa';
  return d;
}

class TestDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Connection::open("test:///default");
    ASSERT_TRUE(c) << c.error().to_string();
    conn_.emplace(std::move(*c));
    cfg_.base_path = "/foundry-test";
    sm_.emplace(*conn_, cfg_);
    // The test driver has no upload: record what would have been streamed.
    sm_->set_uploader([this](Connection&, Volume& vol, const ReadFn& read, uint64_t total, const ProgressFn& progress) -> Status {
      if (fail_upload_) return fail(ErrorKind::Storage, "injected upload failure");
      std::string got;
      char buf[1000];
      for (;;) {
        auto n = read(buf, sizeof buf);
        if (!n) return fail(std::move(n).error());
        if (*n == 0) break;
        got.append(buf, *n);
        if (progress) progress(got.size(), total);
      }
      uploads_[vol.name()] = got;
      return ok();
    });
  }

  std::vector<std::string> volume_names(const std::string& pool) {
    std::vector<std::string> out;
    auto vols = sm_->list_volumes(pool);
    EXPECT_TRUE(vols) << vols.error().to_string();
    if (vols)
      for (auto& v : *vols) out.push_back(v.name);
    return out;
  }

  StorageConfig cfg_;
  std::optional<Connection> conn_;
  std::optional<StorageManager> sm_;
  std::map<std::string, std::string> uploads_;
  bool fail_upload_ = false;
};

// ---------------------------------------------------------------- pools

TEST_F(TestDriver, DefaultPoolsAreCreatedOnFirstUse) {
  ASSERT_FALSE(*conn_->find_pool("foundry-images"));
  ASSERT_TRUE(sm_->ensure_image_pool());
  ASSERT_TRUE(sm_->ensure_vm_pool());
  auto pools = sm_->list_pools();
  ASSERT_TRUE(pools) << pools.error().to_string();
  std::map<std::string, PoolSummary> by_name;
  for (auto& p : *pools) by_name[p.name] = p;
  ASSERT_TRUE(by_name.count("foundry-images"));
  ASSERT_TRUE(by_name.count("foundry-vms"));
  const auto& img = by_name["foundry-images"];
  EXPECT_EQ(img.type, "dir");
  EXPECT_EQ(img.path, "/foundry-test/images");
  EXPECT_TRUE(img.active);
  EXPECT_TRUE(img.autostart);
  EXPECT_TRUE(img.persistent);
  EXPECT_TRUE(img.is_default);
  EXPECT_EQ(by_name["foundry-vms"].path, "/foundry-test/vms");
  EXPECT_FALSE(by_name["default-pool"].is_default);
}

TEST_F(TestDriver, EnsureStartsAnInactiveDefaultPoolAndIsIdempotent) {
  auto p = sm_->ensure_vm_pool();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->stop());
  EXPECT_FALSE(*p->is_active());
  auto again = sm_->ensure_pool("foundry-vms");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_TRUE(*again->is_active());
  EXPECT_EQ(again->uuid(), p->uuid());
}

TEST_F(TestDriver, PoolNamesAndPathComeFromTheConfig) {
  StorageConfig cfg;
  cfg.image_pool = "img-x";
  cfg.vm_pool = "vms-x";
  cfg.base_path = "/srv/x";
  StorageManager sm(*conn_, cfg);
  ASSERT_TRUE(sm.ensure_image_pool());
  auto d = sm.pool_details("img-x");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->summary.path, "/srv/x/images");
  EXPECT_TRUE(sm.is_default_pool("img-x"));
  EXPECT_TRUE(sm.is_default_pool("foundry-vms"));  // the literal defaults stay protected
}

TEST_F(TestDriver, EnsureOfAnUnknownCustomPoolSuggestsPoolAdd) {
  auto r = sm_->ensure_pool("nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Storage);
  EXPECT_NE(r.error().hint().find("foundry pool add nope"), std::string::npos);
}

TEST_F(TestDriver, AddDirPoolDefinesStartsAndAutostarts) {
  PoolSpec s;
  s.name = "ssd";
  s.path = "/mnt/ssd/foundry";
  auto r = sm_->add_pool(s);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->name, "ssd");
  EXPECT_EQ(r->type, "dir");
  EXPECT_TRUE(r->active);
  EXPECT_TRUE(r->autostart);
  EXPECT_EQ(r->volume_count, 0);
  auto again = sm_->add_pool(s);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind(), ErrorKind::Validation);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
}

TEST_F(TestDriver, AddNetfsPoolWithoutAutostart) {
  PoolSpec s;
  s.name = "bulk";
  s.type = PoolType::Netfs;
  s.hosts = {{"nas.example.com", 0}};
  s.source_path = "/export/vms";
  s.path = "/mnt/bulk";
  AddPoolOptions o;
  o.autostart = false;
  auto r = sm_->add_pool(s, o);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->type, "netfs");
  EXPECT_EQ(r->source, "nas.example.com:/export/vms");
  EXPECT_FALSE(r->autostart);
}

TEST_F(TestDriver, AddRefusesInvalidSpecsBeforeTouchingLibvirt) {
  PoolSpec s;
  s.name = "nopath";
  auto r = sm_->add_pool(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_FALSE(*conn_->find_pool("nopath"));
}

TEST_F(TestDriver, DeleteRefusesTheDefaultPoolsEvenWithForce) {
  ASSERT_TRUE(sm_->ensure_image_pool());
  for (bool force : {false, true}) {
    auto r = sm_->delete_pool("foundry-images", force);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
    EXPECT_NE(r.error().message().find("default Foundry pool"), std::string::npos);
  }
  EXPECT_FALSE(sm_->delete_pool("foundry-vms", true));
  EXPECT_TRUE(*conn_->find_pool("foundry-images"));
}

TEST_F(TestDriver, DeleteRefusesANonEmptyPoolUnlessForced) {
  PoolSpec s;
  s.name = "scratch";
  s.path = "/scratch";
  ASSERT_TRUE(sm_->add_pool(s));
  ASSERT_TRUE(sm_->create_blank("scratch", "a.qcow2", 1 << 20));
  ASSERT_TRUE(sm_->create_blank("scratch", "b.raw", 1 << 20, VolumeFormat::Raw));
  auto r = sm_->delete_pool("scratch", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Storage);
  EXPECT_NE(r.error().message().find("holds 2 volumes (a.qcow2, b.raw)"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().hint().find("--force"), std::string::npos);
  EXPECT_TRUE(*conn_->find_pool("scratch"));
  EXPECT_EQ(volume_names("scratch").size(), 2u);

  auto forced = sm_->delete_pool("scratch", true);
  ASSERT_TRUE(forced) << forced.error().to_string();
  EXPECT_FALSE(*conn_->find_pool("scratch"));
}

TEST_F(TestDriver, DeleteAnEmptyPoolAndAMissingOne) {
  PoolSpec s;
  s.name = "tmp";
  s.path = "/tmp-pool";
  ASSERT_TRUE(sm_->add_pool(s));
  ASSERT_TRUE(sm_->delete_pool("tmp", false));
  EXPECT_FALSE(*conn_->find_pool("tmp"));
  auto r = sm_->delete_pool("tmp", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Storage);
  EXPECT_NE(r.error().message().find("does not exist"), std::string::npos);
}

TEST_F(TestDriver, RefreshReportsVolumesAndStartsAnInactivePool) {
  auto p = sm_->ensure_vm_pool();
  ASSERT_TRUE(p);
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "x_data-vdb", 1 << 30));
  auto r = sm_->refresh_pool("foundry-vms");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->volume_count, 1);
  PoolSpec s;
  s.name = "cold";
  s.path = "/cold";
  ASSERT_TRUE(sm_->add_pool(s));
  ASSERT_TRUE((*conn_->find_pool("cold"))->stop());
  auto cold = sm_->refresh_pool("cold");
  ASSERT_TRUE(cold) << cold.error().to_string();
  EXPECT_TRUE(cold->active);
  EXPECT_FALSE(sm_->refresh_pool("missing"));
}

TEST_F(TestDriver, PoolDetailsListVolumesSorted) {
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "web_boot", 2 << 20));
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "app_boot", 1 << 20));
  auto d = sm_->pool_details("foundry-vms");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->volumes.size(), 2u);
  EXPECT_EQ(d->volumes[0].name, "app_boot");
  EXPECT_EQ(d->volumes[1].name, "web_boot");
  EXPECT_EQ(d->volumes[1].capacity, 2u << 20);
  EXPECT_EQ(d->volumes[1].format, "qcow2");
  EXPECT_EQ(d->volumes[1].pool, "foundry-vms");
}

// ---------------------------------------------------------------- volumes

TEST_F(TestDriver, OverlayIsQcow2BackedByTheBaseAndGrown) {
  ASSERT_TRUE(sm_->ensure_image_pool());
  auto base = sm_->create_blank("foundry-images", "debian-12.qcow2", 2ull << 30);
  ASSERT_TRUE(base);
  auto ov = sm_->create_overlay("foundry-vms", VolumeName::boot("web"), *base, 20ull << 30);
  ASSERT_TRUE(ov) << ov.error().to_string();
  auto d = ov->details();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->name, "web_boot");
  EXPECT_EQ(d->format, "qcow2");
  EXPECT_EQ(d->capacity, 20ull << 30);
  EXPECT_EQ(d->backing_path, "/foundry-test/images/debian-12.qcow2");
  EXPECT_EQ(d->backing_format, "qcow2");
  // An explicit base format wins over what the volume XML says.
  auto raw_ov = sm_->create_overlay("foundry-vms", "db_boot", *base, 20ull << 30, VolumeFormat::Raw);
  ASSERT_TRUE(raw_ov);
  EXPECT_EQ(raw_ov->details()->backing_format, "raw");
}

TEST_F(TestDriver, OverlaySmallerThanItsBaseIsRefused) {
  ASSERT_TRUE(sm_->ensure_vm_pool());
  auto base = sm_->create_blank("foundry-images", "big.qcow2", 10ull << 30);
  ASSERT_TRUE(base);
  auto ov = sm_->create_overlay("foundry-vms", "x_boot", *base, 5ull << 30);
  ASSERT_FALSE(ov);
  EXPECT_EQ(ov.error().kind(), ErrorKind::Validation);
  EXPECT_NE(ov.error().message().find("smaller than its base"), std::string::npos);
  EXPECT_TRUE(volume_names("foundry-vms").empty());
}

TEST_F(TestDriver, VolumeNamesAreNotReused) {
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "x_data-vdb", 1 << 20));
  auto dup = sm_->create_blank("foundry-vms", "x_data-vdb", 1 << 20);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind(), ErrorKind::Validation);
  EXPECT_NE(dup.error().to_string().find("exists already"), std::string::npos);
  EXPECT_FALSE(sm_->create_blank("foundry-vms", "zero", 0));
  EXPECT_FALSE(sm_->create_blank("foundry-vms", "a/b", 1));
}

TEST_F(TestDriver, DeleteVolumeReportsWhetherItExisted) {
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "x_boot", 1 << 20));
  EXPECT_EQ(*sm_->delete_volume("foundry-vms", "x_boot"), true);
  EXPECT_EQ(*sm_->delete_volume("foundry-vms", "x_boot"), false);
  EXPECT_EQ(*sm_->delete_volume("no-such-pool", "x_boot"), false);
}

TEST_F(TestDriver, CreateFromBytesUploadsExactlyTheData) {
  std::string iso(300000, '\0');
  for (size_t i = 0; i < iso.size(); ++i) iso[i] = static_cast<char>(i % 251);
  uint64_t last_done = 0, last_total = 0;
  auto v = sm_->create_from_bytes("foundry-vms", VolumeName::cloudinit("web"), iso,
                                  [&](uint64_t d, uint64_t t) { last_done = d, last_total = t; });
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(uploads_["web_cloudinit"], iso);
  EXPECT_EQ(last_done, iso.size());
  EXPECT_EQ(last_total, iso.size());
  auto d = v->details();
  EXPECT_EQ(d->capacity, iso.size());
  EXPECT_EQ(d->format, "raw");
}

TEST_F(TestDriver, AFailedUploadLeavesNoVolume) {
  fail_upload_ = true;
  auto v = sm_->create_from_bytes("foundry-vms", "web_cloudinit", "data");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().to_string().find("injected upload failure"), std::string::npos);
  EXPECT_TRUE(volume_names("foundry-vms").empty());
}

TEST_F(TestDriver, TheRealStreamUploadFailsCleanlyWhereTheDriverHasNone) {
  StorageManager plain(*conn_, cfg_);  // default uploader: virStorageVolUpload
  auto v = plain.create_from_bytes("foundry-vms", "web_cloudinit", std::string(4096, 'x'));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().kind(), ErrorKind::Storage);
  EXPECT_NE(v.error().to_string().find("upload"), std::string::npos);
  EXPECT_NE(v.error().detail().find("not supported"), std::string::npos) << v.error().to_string() << " / " << v.error().detail();
  EXPECT_TRUE(volume_names("foundry-vms").empty());
}

// ---------------------------------------------------------------- images

TEST_F(TestDriver, ImportQcow2UploadsTheFileUnderItsName) {
  TempDir t;
  auto data = qcow2_bytes(2ull << 30, 64 * 1024);
  auto path = t.file("debian-12-genericcloud.qcow2", data);
  ImageStore images(*sm_);
  std::vector<std::string> phases;
  auto info = images.import_file(path, "debian-12.qcow2", [&](std::string_view p, uint64_t, uint64_t total) {
    if (phases.empty() || phases.back() != p) phases.emplace_back(p);
    EXPECT_EQ(total, data.size());
  });
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->name, "debian-12.qcow2");
  EXPECT_EQ(info->pool, "foundry-images");
  EXPECT_EQ(info->format, ImageFormat::Qcow2);
  EXPECT_EQ(info->path, "/foundry-test/images/debian-12.qcow2");
  EXPECT_EQ(uploads_["debian-12.qcow2"], data);
  EXPECT_EQ(phases, std::vector<std::string>{"upload"});
  // Found with and without the extension.
  EXPECT_TRUE(images.resolve("debian-12"));
  EXPECT_TRUE(images.resolve("debian-12.qcow2"));
  EXPECT_FALSE(images.resolve("debian-12.raw"));
}

TEST_F(TestDriver, ImportBootableRawAndDefaultName) {
  TempDir t;
  auto path = t.file("appliance.raw", raw_bootable());
  ImageStore images(*sm_);
  auto info = images.import_file(path, "");
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->name, "appliance.raw");
  EXPECT_EQ(info->format, ImageFormat::Raw);
  EXPECT_EQ(uploads_["appliance.raw"], raw_bootable());
}

TEST_F(TestDriver, ImportRefusalsLeaveNothingBehind) {
  TempDir t;
  struct Case {
    std::string file, content, name, needle;
    ErrorKind kind;
  };
  std::string qcow = qcow2_bytes(1 << 30);
  std::string overlay = qcow;
  overlay[15] = 1;  // backing_file_offset != 0
  std::vector<Case> cases = {
      {"blank.raw", std::string(4096, '\0'), "blank.raw", "not a bootable disk image", ErrorKind::Validation},
      {"data.bin", "just some text", "data.raw", "not a bootable disk image", ErrorKind::Validation},
      {"fedora.qcow2", qcow, "fedora-43.raw", "format mismatch", ErrorKind::Validation},
      {"ubuntu.raw", raw_bootable(), "ubuntu.qcow2", "format mismatch", ErrorKind::Validation},
      {"misnamed.raw", qcow, "misnamed.qcow2", "format mismatch", ErrorKind::Validation},
      {"fedora2.qcow2", qcow, "fedora-43", "must have a .qcow2 or .raw extension", ErrorKind::Validation},
      {"fedora3.qcow2", qcow, "fedora-43.img", "must have a .qcow2 or .raw extension", ErrorKind::Validation},
      {"overlay.qcow2", overlay, "overlay.qcow2", "backing file", ErrorKind::Validation},
  };
  ImageStore images(*sm_);
  for (const auto& c : cases) {
    auto path = t.file(c.file, c.content);
    auto r = images.import_file(path, c.name);
    ASSERT_FALSE(r) << c.file;
    EXPECT_EQ(r.error().kind(), c.kind) << c.file;
    EXPECT_NE(r.error().to_string().find(c.needle), std::string::npos) << r.error().to_string();
    EXPECT_FALSE(r.error().hint().empty()) << c.file;
  }
  auto missing = images.import_file(t.path.string() + "/absent.qcow2", "absent.qcow2");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind(), ErrorKind::Config);
  EXPECT_EQ(missing.error().sys_errno(), ENOENT);
  EXPECT_TRUE(uploads_.empty());
  auto pool = conn_->find_pool("foundry-images");
  if (*pool) {
    EXPECT_TRUE(volume_names("foundry-images").empty());
  }
}

TEST_F(TestDriver, ImportRefusesATakenName) {
  TempDir t;
  auto path = t.file("a.qcow2", qcow2_bytes(1 << 30));
  ImageStore images(*sm_);
  ASSERT_TRUE(images.import_file(path, "a.qcow2"));
  auto again = images.import_file(path, "a.qcow2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind(), ErrorKind::Validation);
  EXPECT_NE(again.error().message().find("exists already"), std::string::npos);
}

TEST_F(TestDriver, ImageDeleteIsRefusedWhileAVmDiskUsesIt) {
  TempDir t;
  ImageStore images(*sm_);
  ASSERT_TRUE(images.import_file(t.file("d.qcow2", qcow2_bytes(1 << 30)), "debian-12.qcow2"));
  auto base = images.resolve("debian-12");
  ASSERT_TRUE(base);
  ASSERT_TRUE(sm_->create_overlay("foundry-vms", VolumeName::boot("web"), *base, 10ull << 30, VolumeFormat::Qcow2));
  PoolSpec s;
  s.name = "ssd";
  s.path = "/ssd";
  ASSERT_TRUE(sm_->add_pool(s));
  ASSERT_TRUE(sm_->create_overlay("ssd", VolumeName::boot("db"), *base, 10ull << 30, VolumeFormat::Qcow2));

  auto info = images.info("debian-12");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->users.size(), 2u);
  EXPECT_EQ(info->users[0].vm, "web");
  EXPECT_EQ(info->users[0].pool, "foundry-vms");
  EXPECT_EQ(info->users[1].vm, "db");
  EXPECT_EQ(info->users[1].volume, "db_boot");

  auto listed = images.list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].users.size(), 2u);

  auto r = images.remove("debian-12", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Storage);
  EXPECT_NE(r.error().message().find("VM web (foundry-vms/web_boot)"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("VM db (ssd/db_boot)"), std::string::npos);
  EXPECT_TRUE(images.resolve("debian-12.qcow2"));

  ASSERT_TRUE(sm_->delete_volume("foundry-vms", "web_boot"));
  ASSERT_TRUE(sm_->delete_volume("ssd", "db_boot"));
  ASSERT_TRUE(images.remove("debian-12", false));
  EXPECT_FALSE(images.resolve("debian-12"));
}

TEST_F(TestDriver, ImageDeleteForceIgnoresUsers) {
  TempDir t;
  ImageStore images(*sm_);
  ASSERT_TRUE(images.import_file(t.file("d.qcow2", qcow2_bytes(1 << 30)), "d.qcow2"));
  ASSERT_TRUE(sm_->create_overlay("foundry-vms", "w_boot", *images.resolve("d"), 1 << 30));
  ASSERT_TRUE(images.remove("d.qcow2", true));
  EXPECT_FALSE(images.resolve("d.qcow2"));
  auto missing = images.remove("d.qcow2", false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind(), ErrorKind::Storage);
  EXPECT_NE(missing.error().message().find("not found"), std::string::npos);
}

TEST_F(TestDriver, ImageListWithoutThePoolIsEmptyAndCreatesNothing) {
  ImageStore images(*sm_);
  auto l = images.list();
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->empty());
  EXPECT_FALSE(*conn_->find_pool("foundry-images"));
}

// ---------------------------------------------------------------- pull

TEST_F(TestDriver, PullFromAFileUrl) {
  TempDir t, tmp;
  auto data = qcow2_bytes(3ull << 30, 100000);
  auto path = t.file("fedora-43.qcow2", data);
  ImageStore images(*sm_);
  PullOptions o;
  o.temp_dir = tmp.path.string();
  std::vector<std::string> phases;
  auto info = images.pull("file://" + path, "", o, [&](std::string_view p, uint64_t, uint64_t) {
    if (phases.empty() || phases.back() != p) phases.emplace_back(p);
  });
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->name, "fedora-43.qcow2");
  EXPECT_EQ(uploads_["fedora-43.qcow2"], data);
  EXPECT_EQ(phases, (std::vector<std::string>{"download", "upload"}));
  EXPECT_TRUE(fs::is_empty(tmp.path));  // the temporary download was unlinked
}

TEST_F(TestDriver, PullOverHttpWithMatchingAndMismatchingChecksums) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 is needed for the test HTTP server";
  TempDir www, tmp;
  auto data = qcow2_bytes(1ull << 30, 200000);
  auto path = www.file("debian-12.qcow2", data);
  HttpServer server(www.path.string());
  ASSERT_GT(server.port(), 0) << "python3 -m http.server did not start";

  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto sum = sha256_fd(fd.get());
  ASSERT_TRUE(sum);
  ImageStore images(*sm_);
  PullOptions o;
  o.temp_dir = tmp.path.string();

  // Wrong checksum: refused, nothing uploaded, no volume, no temp file.
  std::string wrong = *sum;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  o.sha256 = wrong;
  auto bad = images.pull(server.url("debian-12.qcow2"), "debian-12.qcow2", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), ErrorKind::Validation);
  EXPECT_NE(bad.error().message().find("checksum mismatch"), std::string::npos);
  EXPECT_NE(bad.error().message().find(*sum), std::string::npos);
  EXPECT_TRUE(uploads_.empty());
  EXPECT_FALSE(*conn_->find_pool("foundry-images"));
  EXPECT_TRUE(fs::is_empty(tmp.path));

  o.sha256 = *sum;
  auto good = images.pull(server.url("debian-12.qcow2"), "debian-12.qcow2", o);
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ(uploads_["debian-12.qcow2"], data);
  EXPECT_TRUE(fs::is_empty(tmp.path));

  auto missing = images.pull(server.url("absent.qcow2"), "absent.qcow2", o);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind(), ErrorKind::Storage);
  EXPECT_NE(missing.error().message().find("404"), std::string::npos) << missing.error().message();
}

TEST_F(TestDriver, PullChecksFormatAndNameAfterDownloading) {
  TempDir t, tmp;
  auto path = t.file("blank.img", std::string(4096, '\0'));
  ImageStore images(*sm_);
  PullOptions o;
  o.temp_dir = tmp.path.string();
  auto r = images.pull("file://" + path, "blank.raw", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Validation);
  EXPECT_NE(r.error().to_string().find("not a bootable disk image"), std::string::npos);
  auto noext = images.pull("file://" + path, "", o);  // name "blank.img"
  ASSERT_FALSE(noext);
  EXPECT_NE(noext.error().message().find("must have a .qcow2 or .raw extension"), std::string::npos);
  auto scheme = images.pull("ftp://127.0.0.1/x.qcow2", "x.qcow2", o);
  ASSERT_FALSE(scheme);
  EXPECT_EQ(scheme.error().kind(), ErrorKind::Validation);
  auto gone = images.pull("file://" + t.path.string() + "/absent.qcow2", "absent.qcow2", o);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::Storage);
  EXPECT_TRUE(uploads_.empty());
  EXPECT_TRUE(fs::is_empty(tmp.path));
}

// ---------------------------------------------------------------- status

TEST_F(TestDriver, StatusGroupsVolumesByVmAndReportsPoolNumbers) {
  TempDir t;
  ImageStore images(*sm_);
  ASSERT_TRUE(images.import_file(t.file("d.qcow2", qcow2_bytes(1 << 30)), "debian-12.qcow2"));
  auto base = images.resolve("debian-12");
  ASSERT_TRUE(sm_->create_overlay("foundry-vms", "web_boot", *base, 20ull << 30));
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "web_data-vdb", 100ull << 30));
  ASSERT_TRUE(sm_->create_from_bytes("foundry-vms", "web_cloudinit", std::string(2048, 'c')));
  ASSERT_TRUE(sm_->create_overlay("foundry-vms", "db_boot", *base, 10ull << 30));
  ASSERT_TRUE(sm_->create_blank("foundry-vms", "not-a-vm-volume", 1 << 20));

  auto st = sm_->status();
  ASSERT_TRUE(st) << st.error().to_string();
  ASSERT_EQ(st->vms.size(), 2u);
  EXPECT_EQ(st->vms[0].vm, "db");
  EXPECT_EQ(st->vms[0].volumes.size(), 1u);
  EXPECT_EQ(st->vms[1].vm, "web");
  EXPECT_EQ(st->vms[1].volumes.size(), 3u);
  EXPECT_EQ(st->vms[1].capacity, (20ull << 30) + (100ull << 30) + 2048);

  // Pool numbers are libvirt's own, volume counts match.
  for (const auto& p : st->pools) {
    auto pool = sm_->get_pool(p.summary.name);
    ASSERT_TRUE(pool);
    virStoragePoolInfo raw{};
    ASSERT_EQ(virStoragePoolGetInfo(pool->get(), &raw), 0);
    EXPECT_EQ(p.summary.capacity, raw.capacity) << p.summary.name;
    EXPECT_EQ(p.summary.allocation, raw.allocation) << p.summary.name;
    EXPECT_EQ(p.summary.available, raw.available) << p.summary.name;
    EXPECT_EQ(p.summary.volume_count, static_cast<int>(p.volumes.size()));
    uint64_t alloc = 0;
    for (const auto& v : p.volumes) alloc += v.allocation;
    // The test driver accounts a pool's allocation as the sum of its volumes.
    EXPECT_EQ(p.summary.allocation, alloc) << p.summary.name;
  }
  uint64_t web_alloc = 0;
  for (const auto& v : st->vms[1].volumes) web_alloc += v.allocation;
  EXPECT_EQ(st->vms[1].allocation, web_alloc);
}

}  // namespace
}  // namespace foundry::virt
