// Internal: reading YAML documents with yaml-cpp into typed values while
// collecting every problem as a Diagnostic (file:line:column, field path,
// message, hint) instead of stopping at the first one.
//
// yaml-cpp is permissive where a configuration file must not be: it keeps
// both entries of a duplicated key (and operator[] silently returns the
// first), reads "yes" as a boolean, and converts "8" (quoted) to a number.
// The Reader walks the node tree itself and checks each scalar's style.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "foundry/common/error.h"
#include "foundry/common/file.h"

namespace foundry::config::detail {

struct Pos {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based; 0 = unknown
};

// yaml-cpp marks are 0-based and -1 when absent.
Pos pos_of(const YAML::Node& n, Pos fallback = {});

// A value to be read, with where it is and how to name it in messages.
struct Value {
  YAML::Node node;
  Pos pos;
  std::string path;  // network_interfaces[1].ip
};

// One key of a mapping, first occurrence.
struct Field {
  std::string_view key;  // from the known-key table
  Pos key_pos;
  Value value;
};

struct Map {
  Pos pos;           // where the mapping starts (missing keys are reported here)
  std::string path;  // "" for the top level
  std::vector<Field> fields;
  const Field* get(std::string_view key) const;
};

std::string join_path(const std::string& parent, std::string_view key);
std::string index_path(const std::string& parent, size_t i);

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  bool has_errors() const { return count_ > 0; }

  void error(Pos at, std::string field, std::string message, std::string hint = {});

  // Parses one YAML document. Problems with the text itself (too large,
  // binary, not UTF-8, syntax, empty, several documents) are reported and
  // give nothing.
  std::optional<YAML::Node> parse(std::string_view text, std::string_view what_example);

  // A mapping with the given known keys. Unknown keys (with a "did you mean"),
  // duplicate keys and non-scalar keys are reported; the known keys present
  // are returned. `what` names the thing for type errors ("the boot disk").
  std::optional<Map> mapping(const Value& v, std::span<const std::string_view> known, std::string_view what);

  // Reports each of `keys` missing from `m`, at the mapping's position.
  void require(const Map& m, std::initializer_list<std::string_view> keys);

  std::optional<std::string> string(const Value& v);
  // A whole number in [1, max]; `example` is used in hints ("vcpus: 4").
  std::optional<uint64_t> positive(const Value& v, uint64_t max, std::string_view example);
  std::optional<bool> boolean(const Value& v);
  // One of `choices`; returns its index.
  std::optional<size_t> choice(const Value& v, std::span<const std::string_view> choices);
  // A list; returns its items as Values.
  std::optional<std::vector<Value>> sequence(const Value& v, std::string_view example);

  // The Error for everything reported: `kind`, "FILE: N problem(s)", the
  // diagnostics sorted by position.
  Error to_error(ErrorKind kind) &&;

 private:
  std::string file_;
  std::vector<Diagnostic> diags_;
  size_t count_ = 0;  // reported, including those past the listing limit
};

// How a node reads in a message: "a list", "the number 4.5", "the quoted string \"8\"".
std::string describe(const YAML::Node& n);

// One YAML document of `text` read by `load(Reader&, const YAML::Node& root)`
// into a T. Problems with the text and every finding of `load` become one
// Error of `kind` listing them all; `example` is the file the hints point to.
template <class T, class Load>
Result<T> load_document(const std::string& text, const std::string& name_for_messages, std::string_view example,
                        ErrorKind kind, Load&& load) {
  Reader r(name_for_messages);
  auto root = r.parse(text, example);
  if (!root) return fail(std::move(r).to_error(kind));
  T value = load(r, *root);
  if (r.has_errors()) return fail(std::move(r).to_error(kind));
  return value;
}

// The file at `path` given to `from_text(text, path)`. A file that cannot be
// read at all is a configuration error (exit 1) that says `what` failed;
// everything about its content is up to `from_text`.
template <class FromText>
auto load_document_file(const std::string& path, std::string_view what, FromText&& from_text)
    -> decltype(from_text(std::string(), path)) {
  auto text = read_file(path);
  if (!text)
    return fail(std::move(text).error().with_hint("check the path and its permissions").wrap(std::string(what)));
  return from_text(*text, path);
}

}  // namespace foundry::config::detail
