#include "foundry/platform/apt_sources.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

using namespace foundry::platform;

namespace {

// A throwaway /etc/apt look-alike.
class TempEtcApt {
 public:
  TempEtcApt() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/foundry-apt-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    std::filesystem::create_directories(dir_ + "/sources.list.d");
  }
  ~TempEtcApt() { std::filesystem::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ + "/" + rel) << text; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

constexpr const char* kDebianSources = R"(Types: deb
# a comment inside a stanza
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://example.invalid/disabled
Suites: bookworm
Enabled: no
)";

}  // namespace

TEST(AptSources, ParsesDeb822) {
  auto r = parse_deb822_sources(kDebianSources, "debian.sources");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);  // the disabled stanza is dropped
  const auto& a = (*r)[0];
  EXPECT_EQ(a.types, std::vector<std::string>{"deb"});
  EXPECT_EQ(a.uris, std::vector<std::string>{"http://deb.debian.org/debian"});
  EXPECT_EQ(a.suites, (std::vector<std::string>{"bookworm", "bookworm-updates"}));
  EXPECT_EQ(a.components, std::vector<std::string>{"main"});
  ASSERT_EQ(a.options.size(), 1u);
  EXPECT_EQ(a.options[0].first, "Signed-By");
  EXPECT_EQ(a.origin, "debian.sources:1");
  EXPECT_EQ((*r)[1].types, (std::vector<std::string>{"deb", "deb-src"}));
  EXPECT_EQ((*r)[1].origin, "debian.sources:8");
}

TEST(AptSources, KeepsAnEmbeddedKeyVerbatim) {
  const char* text =
      "Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n"
      "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n";
  auto r = parse_deb822_sources(text, "k.sources");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  auto out = to_deb822(*r);
  EXPECT_NE(out.find("Signed-By: \n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"), std::string::npos) << out;
  // Round trip.
  auto again = parse_deb822_sources(out, "again");
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[0].options, (*r)[0].options);
}

TEST(AptSources, Deb822ErrorsNameTheLine) {
  auto r = parse_deb822_sources("Types: deb\nthis is not a field\n", "bad.sources");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("bad.sources:2"), std::string::npos);
  auto m = parse_deb822_sources("Types: deb\nURIs: http://x\n", "m.sources");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("needs Types, URIs and Suites"), std::string::npos);
}

TEST(AptSources, ParsesOneLineFormatWithOptions) {
  auto r = parse_one_line_sources(
      "# comment\n"
      "deb [arch=amd64,i386 signed-by=/k.gpg] http://mirror/debian bookworm main contrib # trailing\n"
      "\n"
      "deb-src http://mirror/debian bookworm main\n",
      "sources.list");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  const auto& a = (*r)[0];
  EXPECT_EQ(a.uris[0], "http://mirror/debian");
  EXPECT_EQ(a.suites[0], "bookworm");
  EXPECT_EQ(a.components, (std::vector<std::string>{"main", "contrib"}));
  ASSERT_EQ(a.options.size(), 2u);
  EXPECT_EQ(a.options[0], (std::pair<std::string, std::string>{"Architectures", "amd64 i386"}));
  EXPECT_EQ(a.options[1], (std::pair<std::string, std::string>{"Signed-By", "/k.gpg"}));
  EXPECT_EQ(a.origin, "sources.list:2");
  EXPECT_EQ((*r)[1].types[0], "deb-src");
}

TEST(AptSources, OneLineErrors) {
  EXPECT_FALSE(parse_one_line_sources("deb\n", "f"));
  EXPECT_FALSE(parse_one_line_sources("deb http://only-a-uri\n", "f"));
  EXPECT_FALSE(parse_one_line_sources("deb [arch=amd64 http://m bookworm main\n", "f"));
  EXPECT_FALSE(parse_one_line_sources("deb [arch+=amd64] http://m bookworm main\n", "f"));
}

TEST(AptSources, SelectsTheSuiteAndDropsSourcePackages) {
  auto all = *parse_deb822_sources(kDebianSources, "d.sources");
  auto more = *parse_one_line_sources("deb https://packages.example/apt cloud-sdk-bookworm main\n", "x.list");
  all.insert(all.end(), more.begin(), more.end());
  auto sel = select_sources_for_suite(all, "bookworm");
  ASSERT_EQ(sel.size(), 2u);
  EXPECT_EQ(sel[1].types, std::vector<std::string>{"deb"});
  EXPECT_EQ(sel[1].suites, std::vector<std::string>{"bookworm-security"});
  // "cloud-sdk-bookworm" is another repository's suite, not bookworm's.
  for (const auto& s : sel) EXPECT_EQ(s.uris[0].find("packages.example"), std::string::npos);
}

TEST(AptSources, MapsAnotherReleaseOfTheBuildMachine) {
  auto all = *parse_one_line_sources(
      "deb http://mirror.local/debian trixie main\n"
      "deb http://mirror.local/debian trixie-updates main\n"
      "deb http://mirror.local/security trixie-security main\n",
      "sources.list");
  auto sel = select_sources_for_suite(all, "bookworm");
  ASSERT_EQ(sel.size(), 3u);
  EXPECT_EQ(sel[0].suites[0], "bookworm");
  EXPECT_EQ(sel[0].uris[0], "http://mirror.local/debian");
  EXPECT_EQ(sel[1].suites[0], "bookworm-updates");
  EXPECT_EQ(sel[2].suites[0], "bookworm-security");
  EXPECT_TRUE(select_sources_for_suite({}, "bookworm").empty());
}

TEST(AptSources, ReadsFilesInAptOrderAndIgnoresOthers) {
  TempEtcApt etc;
  etc.write("sources.list", "deb http://first/debian bookworm main\n");
  etc.write("sources.list.d/b.sources", "Types: deb\nURIs: http://third/debian\nSuites: bookworm\n");
  etc.write("sources.list.d/a.list", "deb http://second/debian bookworm main\n");
  etc.write("sources.list.d/c.list.disabled", "deb http://ignored/debian bookworm main\n");
  etc.write("sources.list.d/d.sources.save", "garbage");
  auto r = read_apt_sources(etc.dir());
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].uris[0], "http://first/debian");
  EXPECT_EQ((*r)[1].uris[0], "http://second/debian");
  EXPECT_EQ((*r)[2].uris[0], "http://third/debian");
}

TEST(AptSources, MissingFilesAreNoSourcesAndBadFilesAreErrors) {
  TempEtcApt etc;
  auto r = read_apt_sources(etc.dir());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  etc.write("sources.list.d/bad.list", "deb\n");
  auto b = read_apt_sources(etc.dir());
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("bad.list:1"), std::string::npos);
}
