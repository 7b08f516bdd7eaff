#include "virt_cli.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace foundry::cli {

namespace {
// Display width of UTF-8 text: counts code points, not bytes.
size_t width(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}
}  // namespace

Result<config::FoundryConfig> site_config(const Globals& g, config::ConfigValues flags) {
  if (!g.connect.empty()) flags.uri = g.connect;
  if (!g.storage_path.empty()) flags.storage_path = g.storage_path;
  return config::resolve_config(flags, config::ConfigEnvironment::from_process());
}

Result<std::string> libvirt_uri(const Globals& g) { return FOUNDRY_TRY(site_config(g)).uri; }

Result<virt::StorageConfig> storage_config(const Globals& g) {
  return virt::StorageConfig::from(FOUNDRY_TRY(site_config(g)));
}

Result<virt::Connection> connect(const Globals& g) { return virt::Connection::open(FOUNDRY_TRY(libvirt_uri(g))); }

std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", n);
  if (v == static_cast<double>(static_cast<uint64_t>(v))) return fmt::format("{} {}", static_cast<uint64_t>(v), units[u]);
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string Table::render() const {
  std::vector<size_t> w;
  for (const auto& r : rows_) {
    if (w.size() < r.size()) w.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  }
  std::string out;
  for (const auto& r : rows_) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - width(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

void set_description(CLI::App* cmd, const std::string& text) {
  std::string indented = "  ";
  for (char ch : text) {
    indented += ch;
    if (ch == '\n') indented += "  ";
  }
  // Overwrites: a subcommand starts with a copy of its parent's footer.
  cmd->footer("DESCRIPTION:\n" + indented + "\n");
}

void add_footer(CLI::App* cmd, const std::string& text) {
  std::string cur = cmd->get_footer();
  if (!cur.empty() && cur.back() != '\n') cur += '\n';
  if (!cur.empty() && cur.size() >= 2 && cur.substr(cur.size() - 2) != "\n\n") cur += '\n';
  // Sections inside one text are separated the same way.
  std::string t;
  for (size_t i = 0; i < text.size(); ++i) {
    bool heading = (i == 0 || text[i - 1] == '\n') && i > 0 && std::isupper(static_cast<unsigned char>(text[i])) &&
                   text.find(":\n", i) == text.find('\n', i) - 1;
    if (heading && !(t.size() >= 2 && t.substr(t.size() - 2) == "\n\n")) t += '\n';
    t += text[i];
  }
  cmd->footer(cur + t);
}

void step(const Globals& g, std::string_view what) {
  if (g.output == OutputFormat::Json) return;
  std::printf("✓ %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stdout);
}

void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  bool complete = total > 0 && done >= total;
  if (drawn_ && !complete && now - last_ms_ < 100) return;
  last_ms_ = now;
  drawn_ = true;
  std::string line;
  if (total > 0) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * kWidth);
    filled = std::clamp(filled, 0, kWidth);
    line = fmt::format("\r{:<9} [{}{}] {:3d}%  {} / {}", label_, std::string(static_cast<size_t>(filled), '='),
                       std::string(static_cast<size_t>(kWidth - filled), ' '),
                       static_cast<int>(static_cast<double>(done) * 100.0 / static_cast<double>(total)),
                       human_bytes(done), human_bytes(total));
  } else {
    line = fmt::format("\r{:<9} {}", label_, human_bytes(done));
  }
  std::fprintf(stderr, "%s\x1b[K", line.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) {
    std::fputs("\n", stderr);
    drawn_ = false;
  }
}

nlohmann::json to_json(const virt::PoolSummary& p) {
  return {{"name", p.name},
          {"uuid", p.uuid},
          {"type", p.type},
          {"state", std::string(virt::to_string(p.state))},
          {"active", p.active},
          {"persistent", p.persistent},
          {"autostart", p.autostart},
          {"capacity", p.capacity},
          {"allocation", p.allocation},
          {"available", p.available},
          {"path", p.path},
          {"source", p.source},
          {"volumes", p.volume_count < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.volume_count)},
          {"default", p.is_default}};
}

nlohmann::json to_json(const virt::VolumeDetails& v) {
  nlohmann::json j = {{"name", v.name},         {"pool", v.pool},         {"path", v.path},
                      {"format", v.format},     {"capacity", v.capacity}, {"allocation", v.allocation},
                      {"backing_path", v.backing_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.backing_path)}};
  auto parsed = virt::VolumeName::parse(v.name);
  j["vm"] = parsed ? nlohmann::json(parsed->vm) : nlohmann::json(nullptr);
  j["role"] = parsed ? nlohmann::json(std::string(virt::to_string(parsed->role))) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json to_json(const virt::ImageInfo& i) {
  nlohmann::json users = nlohmann::json::array();
  for (const auto& u : i.users)
    users.push_back({{"pool", u.pool}, {"volume", u.volume}, {"vm", u.vm.empty() ? nlohmann::json(nullptr) : nlohmann::json(u.vm)}});
  return {{"name", i.name},
          {"pool", i.pool},
          {"path", i.path},
          {"format", std::string(virt::to_string(i.format))},
          {"libvirt_format", i.libvirt_format},
          {"capacity", i.capacity},
          {"allocation", i.allocation},
          {"used_by", users}};
}

}  // namespace foundry::cli
