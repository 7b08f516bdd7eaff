// Pieces the libvirt command groups (vm, pool, image, storage) share: where
// to connect, where the pools live, tables, sizes, progress and JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "foundry/config/foundry_config.h"
#include "foundry/virt/download.h"
#include "foundry/virt/image.h"
#include "foundry/virt/libvirt.h"
#include "foundry/virt/storage.h"

namespace foundry::cli {

// Foundry's settings for one command, the same way for every libvirt group
// (vm, pool, image, storage): the global --connect / --storage-path and the
// command's own flags (`flags`, e.g. vm create --pool) > FOUNDRY_URI,
// FOUNDRY_VM_POOL, FOUNDRY_IMAGE_POOL, FOUNDRY_STORAGE_PATH >
// ~/.config/foundry/config.yaml > /etc/foundry/config.yaml > defaults
// (config::resolve_config). A broken config file or value exits 1.
Result<config::FoundryConfig> site_config(const Globals& g, config::ConfigValues flags = {});
// The libvirt URI from those layers.
Result<std::string> libvirt_uri(const Globals& g);
// Default pool names and their base path from those layers.
Result<virt::StorageConfig> storage_config(const Globals& g);
// Opens the connection for a command (exit 3 with a hint on failure).
Result<virt::Connection> connect(const Globals& g);

// "0 B", "512 MiB", "1.5 GiB", "100 GiB" (binary units).
std::string human_bytes(uint64_t n);

// Columns separated by two spaces, each as wide as its widest cell, like
// the seed's `foundry list` output. The last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : rows_{std::move(headers)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const;
  void print(FILE* out = stdout) const { std::fputs(render().c_str(), out); }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Man-page style help: set_description() puts an indented DESCRIPTION
// section first in the footer (the one-line summary stays in listings);
// add_footer() appends EXAMPLES / EXIT CODES sections after it.
void set_description(CLI::App* cmd, const std::string& text);
void add_footer(CLI::App* cmd, const std::string& text);

// Prints "✓ what" unless the output is JSON (stdout then holds one JSON document).
void step(const Globals& g, std::string_view what);
void print_json(const nlohmann::json& j);

// A progress bar on stderr, drawn only when stderr is a terminal; redraws at
// most ten times a second.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void update(uint64_t done, uint64_t total);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  int64_t last_ms_ = 0;
};

// JSON forms of the storage reports.
nlohmann::json to_json(const virt::PoolSummary& p);
nlohmann::json to_json(const virt::VolumeDetails& v);
nlohmann::json to_json(const virt::ImageInfo& i);

}  // namespace foundry::cli
