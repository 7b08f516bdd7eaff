// The build machine's apt sources, read the way apt reads them, so that an
// image is made from the same mirror (possibly a local, air-gapped one) the
// machine itself uses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "foundry/common/error.h"

namespace foundry::platform {

// One deb822 stanza (or one converted one-line entry).
struct AptSource {
  std::vector<std::string> types;       // "deb", "deb-src"
  std::vector<std::string> uris;
  std::vector<std::string> suites;
  std::vector<std::string> components;
  // Other fields verbatim (Signed-By, Architectures, Trusted, ...), in order;
  // a multi-line value (an embedded key) keeps its continuation lines.
  std::vector<std::pair<std::string, std::string>> options;
  std::string origin;  // "file:line" for messages
};

// Parses a deb822 ".sources" file. Stanzas with "Enabled: no" are dropped.
Result<std::vector<AptSource>> parse_deb822_sources(std::string_view text, const std::string& file);

// Parses one-line "sources.list" format: "deb [opt=v ...] URI SUITE [COMP...]".
Result<std::vector<AptSource>> parse_one_line_sources(std::string_view text, const std::string& file);

// Reads <etc_apt>/sources.list and <etc_apt>/sources.list.d/*.list and
// *.sources in the order apt does (sources.list first, then the directory
// sorted by name); other file names there are ignored, as apt ignores them.
Result<std::vector<AptSource>> read_apt_sources(const std::string& etc_apt = "/etc/apt");

// The binary ("deb") entries usable for `suite`: an entry's suites equal to
// `suite` or starting with "<suite>-" (updates, security, backports) are kept.
// When no entry names the suite (the build machine runs another release), the
// machine's mirrors are reused with its release name replaced by `suite`
// ("trixie-security" -> "bookworm-security"). Empty when nothing fits.
std::vector<AptSource> select_sources_for_suite(const std::vector<AptSource>& all, const std::string& suite);

// deb822 text for a sources file (what the image's apt will use).
std::string to_deb822(const std::vector<AptSource>& sources);

}  // namespace foundry::platform
