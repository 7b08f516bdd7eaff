#include "foundry/platform/apt_sources.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <system_error>

#include "foundry/common/file.h"

namespace foundry::platform {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// One-line option names and their deb822 field names (sources.list(5)).
const std::map<std::string, std::string, std::less<>>& one_line_option_names() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"arch", "Architectures"},
      {"lang", "Languages"},
      {"target", "Targets"},
      {"pdiffs", "PDiffs"},
      {"by-hash", "By-Hash"},
      {"allow-insecure", "Allow-Insecure"},
      {"allow-weak", "Allow-Weak"},
      {"allow-downgrade-to-insecure", "Allow-Downgrade-To-Insecure"},
      {"trusted", "Trusted"},
      {"signed-by", "Signed-By"},
      {"check-valid-until", "Check-Valid-Until"},
      {"valid-until-min", "Valid-Until-Min"},
      {"valid-until-max", "Valid-Until-Max"},
      {"check-date", "Check-Date"},
      {"date-max-future", "Date-Max-Future"},
      {"inrelease-path", "InRelease-Path"},
      {"snapshot", "Snapshot"},
  };
  return m;
}

}  // namespace

Result<std::vector<AptSource>> parse_deb822_sources(std::string_view text, const std::string& file) {
  std::vector<AptSource> out;
  AptSource cur;
  bool in_stanza = false;
  bool enabled = true;
  int stanza_line = 0;
  std::string last_key;
  auto finish = [&]() -> Status {
    if (!in_stanza) return ok();
    in_stanza = false;
    if (!enabled) {
      cur = AptSource{};
      enabled = true;
      return ok();
    }
    std::string where = fmt::format("{}:{}", file, stanza_line);
    if (cur.types.empty() || cur.uris.empty() || cur.suites.empty())
      return fail(Error(ErrorKind::Config, fmt::format("{}: a sources stanza needs Types, URIs and Suites", where))
                      .with_hint("see sources.list(5), section DEB822-STYLE FORMAT"));
    cur.origin = where;
    out.push_back(std::move(cur));
    cur = AptSource{};
    return ok();
  };
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && line.front() == '#') continue;
    if (trim(line).empty()) {
      FOUNDRY_TRY(finish());
      last_key.clear();
      if (nl == text.size()) break;
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (last_key.empty())
        return fail(ErrorKind::Config, "{}:{}: continuation line without a field", file, lineno);
      // Multi-line values (an embedded Signed-By key) are kept verbatim.
      auto lk = lower(last_key);
      if (lk == "types" || lk == "uris" || lk == "suites" || lk == "components") {
        auto more = split_ws(line);
        auto& dst = lk == "types" ? cur.types : lk == "uris" ? cur.uris : lk == "suites" ? cur.suites : cur.components;
        dst.insert(dst.end(), more.begin(), more.end());
      } else if (!cur.options.empty()) {
        cur.options.back().second += "\n";
        cur.options.back().second += line;
      }
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return fail(ErrorKind::Config, "{}:{}: expected 'Field: value', got '{}'", file, lineno, line);
    if (!in_stanza) {
      in_stanza = true;
      stanza_line = lineno;
    }
    std::string key(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    last_key = key;
    auto lk = lower(key);
    if (lk == "types") cur.types = split_ws(value);
    else if (lk == "uris") cur.uris = split_ws(value);
    else if (lk == "suites") cur.suites = split_ws(value);
    else if (lk == "components") cur.components = split_ws(value);
    else if (lk == "enabled") enabled = lower(value) != "no";
    else cur.options.emplace_back(key, std::string(value));
    if (nl == text.size()) break;
  }
  FOUNDRY_TRY(finish());
  return out;
}

Result<std::vector<AptSource>> parse_one_line_sources(std::string_view text, const std::string& file) {
  std::vector<AptSource> out;
  int lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    std::string where = fmt::format("{}:{}", file, lineno);
    auto bad = [&](std::string_view why) {
      return fail(Error(ErrorKind::Config, fmt::format("{}: {}", where, why))
                      .with_hint("the format is 'deb [option=value ...] URI SUITE [COMPONENT ...]' (sources.list(5))"));
    };
    AptSource s;
    s.origin = where;
    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) return bad("incomplete entry");
    s.types.emplace_back(line.substr(0, sp));
    std::string_view rest = trim(line.substr(sp));
    if (!rest.empty() && rest.front() == '[') {
      auto close = rest.find(']');
      if (close == std::string_view::npos) return bad("unterminated '[' options");
      for (const auto& opt : split_ws(rest.substr(1, close - 1))) {
        auto eq = opt.find('=');
        if (eq == std::string::npos || eq == 0) return bad(fmt::format("option '{}' is not name=value", opt));
        std::string name = opt.substr(0, eq);
        std::string val = opt.substr(eq + 1);
        if (name.back() == '+' || name.back() == '-')
          return bad(fmt::format("option '{}' uses += or -=, which Foundry does not translate; pass --sources", opt));
        auto it = one_line_option_names().find(lower(name));
        std::string field = it != one_line_option_names().end() ? it->second : name;
        if (field != "Signed-By") std::replace(val.begin(), val.end(), ',', ' ');
        s.options.emplace_back(field, val);
      }
      rest = trim(rest.substr(close + 1));
    }
    auto words = split_ws(rest);
    if (words.size() < 2) return bad("expected a URI and a suite");
    s.uris.push_back(words[0]);
    s.suites.push_back(words[1]);
    s.components.assign(words.begin() + 2, words.end());
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<AptSource>> read_apt_sources(const std::string& etc_apt) {
  namespace fs = std::filesystem;
  std::vector<AptSource> all;
  std::error_code ec;
  std::string main_list = etc_apt + "/sources.list";
  if (fs::exists(main_list, ec)) {
    auto text = FOUNDRY_TRY(read_file(main_list));
    auto v = FOUNDRY_TRY(parse_one_line_sources(text, main_list));
    all.insert(all.end(), v.begin(), v.end());
  }
  std::string dir = etc_apt + "/sources.list.d";
  std::vector<std::string> names;
  if (fs::is_directory(dir, ec)) {
    for (const auto& ent : fs::directory_iterator(dir, ec)) {
      std::string n = ent.path().filename().string();
      // apt's rule (apt.conf(5) Dir::Ignore-Files-Silently and the "invalid
      // filename extension" notice): only [A-Za-z0-9_.-] names ending in
      // .list or .sources are read.
      bool valid = !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
      bool list = n.size() > 5 && n.ends_with(".list");
      bool sources = n.size() > 8 && n.ends_with(".sources");
      if (valid && (list || sources)) names.push_back(n);
    }
    if (ec) return fail(Error(ErrorKind::Config, fmt::format("cannot list {}: {}", dir, ec.message())));
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string path = dir + "/" + n;
    auto text = FOUNDRY_TRY(read_file(path));
    auto v = n.ends_with(".list") ? FOUNDRY_TRY(parse_one_line_sources(text, path))
                                  : FOUNDRY_TRY(parse_deb822_sources(text, path));
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

std::vector<AptSource> select_sources_for_suite(const std::vector<AptSource>& all, const std::string& suite) {
  auto binary = [](const AptSource& s) { return contains(s.types, "deb"); };
  auto for_suite = [](const std::string& s, const std::string& release) {
    return s == release || s.rfind(release + "-", 0) == 0;
  };
  std::vector<AptSource> out;
  for (const auto& s : all) {
    if (!binary(s)) continue;
    AptSource c = s;
    c.types = {"deb"};
    c.suites.clear();
    for (const auto& su : s.suites)
      if (for_suite(su, suite)) c.suites.push_back(su);
    if (!c.suites.empty()) out.push_back(std::move(c));
  }
  if (!out.empty()) return out;

  // The machine runs another release: its release name is the plain suite
  // name (no '-' and no '/') that its Debian entries list.
  std::string host_release;
  for (const auto& s : all) {
    if (!binary(s)) continue;
    for (const auto& su : s.suites)
      if (su.find_first_of("-/") == std::string::npos && !su.empty()) {
        host_release = su;
        break;
      }
    if (!host_release.empty()) break;
  }
  if (host_release.empty()) return out;
  for (const auto& s : all) {
    if (!binary(s)) continue;
    AptSource c = s;
    c.types = {"deb"};
    c.suites.clear();
    for (const auto& su : s.suites)
      if (for_suite(su, host_release)) c.suites.push_back(suite + su.substr(host_release.size()));
    if (!c.suites.empty()) out.push_back(std::move(c));
  }
  return out;
}

std::string to_deb822(const std::vector<AptSource>& sources) {
  std::string out;
  for (size_t i = 0; i < sources.size(); ++i) {
    const auto& s = sources[i];
    if (i) out += "\n";
    out += "Types: " + join(s.types, " ") + "\n";
    out += "URIs: " + join(s.uris, " ") + "\n";
    out += "Suites: " + join(s.suites, " ") + "\n";
    if (!s.components.empty()) out += "Components: " + join(s.components, " ") + "\n";
    for (const auto& [k, v] : s.options) out += k + ": " + v + "\n";
  }
  return out;
}

}  // namespace foundry::platform
