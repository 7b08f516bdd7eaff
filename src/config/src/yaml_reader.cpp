#include "yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include <fmt/format.h>

#include "foundry/config/rules.h"

namespace foundry::config::detail {

namespace {

// A VM or config file is a few hundred bytes; anything near this limit is a
// wrong file, and refusing it keeps the parser's time and memory bounded.
constexpr size_t kMaxFileBytes = 1 << 20;

// Past this many, more findings only bury the first ones (which are often
// the cause of the rest).
constexpr size_t kMaxDiagnostics = 100;

bool is_quoted(const YAML::Node& n) { return n.Tag() == "!"; }
bool is_plain(const YAML::Node& n) { return n.Tag() == "?"; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool looks_int(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return all_digits(s);
}

// YAML 1.2 core schema float: [-+]? ( . [0-9]+ | [0-9]+ ( . [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool looks_float(std::string_view s) {
  if (s == ".inf" || s == "-.inf" || s == "+.inf" || s == ".nan" || s == ".NaN" || s == ".Inf") return true;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t i = 0, int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  bool exp = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t d = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++d;
    if (d == 0) return false;
    exp = true;
  }
  return i == s.size() && (dot || exp);
}

bool looks_bool(std::string_view s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE";
}

// YAML 1.1 spellings that yaml-cpp (and PyYAML) read as booleans but YAML 1.2
// does not: accepting them would make the same file mean different things
// to different tools.
bool looks_yaml11_bool(std::string_view s) {
  static constexpr std::string_view kWords[] = {"yes", "Yes", "YES", "no", "No", "NO", "on", "On",
                                                "ON",  "off", "Off", "OFF", "y",  "Y",  "n",  "N"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

std::string cut(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  if (s.size() > kMax) out += "...";
  return out;
}

// Decodes one UTF-8 sequence at s[i]; returns its length, 0 if malformed
// (overlong forms, surrogates and values above U+10FFFF are malformed).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

struct TextProblem {
  Pos pos;
  std::string message;
  std::string hint;
};

// YAML 1.2 allows only printable characters (c-printable) in UTF-8/16/32.
// We accept UTF-8 only and check before yaml-cpp sees the bytes: it would
// otherwise guess an encoding from the first bytes of binary junk.
std::optional<TextProblem> check_text(std::string_view s) {
  if (s.starts_with("\xff\xfe") || s.starts_with("\xfe\xff"))
    return TextProblem{{1, 1}, "the file is UTF-16, not UTF-8", "save it as UTF-8 (iconv -f UTF-16 -t UTF-8)"};
  // Text never holds NUL; junk almost always does. Naming it "binary" says
  // more than the first odd byte would.
  const bool binary = s.find('\0') != std::string_view::npos;
  constexpr std::string_view kBinaryHint = "VM files are UTF-8 text; check that this is the right file";
  int line = 1, col = 1;
  size_t i = 0;
  if (s.starts_with("\xef\xbb\xbf")) i = 3;  // a UTF-8 byte order mark is allowed
  while (i < s.size()) {
    uint32_t cp = 0;
    size_t len = utf8_sequence(s, i, cp);
    bool text_char = len != 0 && (cp >= 0x20 || cp == '\t' || cp == '\n' || cp == '\r') && cp != 0x7f;
    if (binary && !text_char)
      return TextProblem{{line, col},
                         fmt::format("the file is binary data, not text (it contains NUL bytes; first "
                                     "non-text byte 0x{:02x} at offset {})",
                                     static_cast<unsigned char>(s[i]), i),
                         std::string(kBinaryHint)};
    if (len == 0)
      return TextProblem{{line, col},
                         fmt::format("the file is not valid UTF-8 (byte 0x{:02x} at offset {}): binary data or "
                                     "another encoding",
                                     static_cast<unsigned char>(s[i]), i),
                         "VM files are UTF-8 text; convert with iconv or check that this is the right file"};
    bool printable = cp == '\t' || cp == '\n' || cp == '\r' || (cp >= 0x20 && cp <= 0x7e) || cp == 0x85 ||
                     (cp >= 0xa0 && cp != 0xfffe && cp != 0xffff);
    if (!printable)
      return TextProblem{{line, col}, fmt::format("the file contains the control character U+{:04X}", cp),
                         "remove it; YAML allows only printable characters, tabs and line breaks"};
    if (cp == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    i += len;
  }
  return std::nullopt;
}

std::string_view line_at(std::string_view text, int line0) {
  size_t start = 0;
  for (int l = 0; l < line0; ++l) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::string syntax_hint(std::string_view text, const YAML::Mark& m, const std::string& msg) {
  auto line = m.line >= 0 ? line_at(text, m.line) : std::string_view{};
  size_t indent = line.find_first_not_of(' ');
  if (indent != std::string_view::npos && line[indent] == '\t')
    return "YAML indents with spaces; replace the tabs";
  if (msg.find("illegal map value") != std::string::npos)
    return "a value that contains ': ' must be quoted, or the indentation is off";
  if (msg.find("end of map flow not found") != std::string::npos) return "a '{' is not closed with '}'";
  if (msg.find("end of sequence flow not found") != std::string::npos) return "a '[' is not closed with ']'";
  if (msg.find("end of sequence not found") != std::string::npos ||
      msg.find("end of map not found") != std::string::npos)
    return "check the indentation: items of one list or mapping line up";
  if (msg.find("quote") != std::string::npos) return "a quoted string is not closed";
  if (msg.find("alias") != std::string::npos || msg.find("anchor") != std::string::npos)
    return "each *alias needs an &anchor defined before it";
  return "check the indentation and quoting around this place";
}

// The first line at or before `last_line0` (0-based) where a quoted scalar
// opens and does not close. An unclosed quote makes yaml-cpp read on into
// the following lines and fail far below, where nothing is wrong.
std::optional<int> unclosed_quote_line(std::string_view text, int last_line0) {
  int line0 = 0;
  size_t start = 0;
  while (start <= text.size() && line0 <= last_line0) {
    size_t end = text.find('\n', start);
    std::string_view l = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    char quote = 0;
    for (size_t i = 0; i < l.size(); ++i) {
      char c = l[i];
      if (quote == '"') {
        if (c == '\\') ++i;
        else if (c == '"') quote = 0;
      } else if (quote == '\'') {
        if (c == '\'' && i + 1 < l.size() && l[i + 1] == '\'') ++i;
        else if (c == '\'') quote = 0;
      } else {
        bool token_start = i == 0 || std::string_view(" \t[{,:-?").find(l[i - 1]) != std::string_view::npos;
        if (c == '#' && token_start) break;
        // A quote inside a plain scalar (don't, 5'11") is just a character.
        if ((c == '"' || c == '\'') && token_start) quote = c;
      }
    }
    if (quote) return line0;
    if (end == std::string_view::npos) break;
    start = end + 1;
    ++line0;
  }
  return std::nullopt;
}

struct DocumentLayout {
  std::optional<Pos> first_content;  // first character that is not a comment, marker or directive
  bool null_literal = false;         // the only content is ~ / null
  int second_document_line = 0;      // 1-based; 0 = there is one document at most
};

bool is_marker(std::string_view line, std::string_view m) {
  return line.starts_with(m) && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

// Where documents start and end, from the text alone. YAML 1.2 lets "---"
// and "..." at the start of a line mean nothing but document markers, even
// inside scalars, so this needs no parser.
DocumentLayout scan_documents(std::string_view text) {
  DocumentLayout out;
  bool content = false;  // the current document has content
  bool ended = false;    // "..." closed the current document
  int documents = 0;
  int line_no = 0;
  std::string first_text;
  size_t start = 0;
  while (start < text.size()) {
    ++line_no;
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view rest = line;
    int col = 1;
    if (is_marker(line, "---")) {
      if (content || ended || documents > 0) {
        out.second_document_line = line_no;
        return out;
      }
      ++documents;
      rest = line.substr(3);
      col = 4;
    } else if (is_marker(line, "...")) {
      ended = true;
      continue;
    } else if (!content && line.starts_with('%')) {
      continue;  // %YAML / %TAG directive
    }
    if (line_no == 1 && rest.starts_with("\xef\xbb\xbf")) rest.remove_prefix(3);  // UTF-8 byte order mark
    size_t i = rest.find_first_not_of(" \t\r");
    if (i == std::string_view::npos || rest[i] == '#') continue;
    if (ended) {
      out.second_document_line = line_no;
      return out;
    }
    if (!content) {
      content = true;
      if (documents == 0) documents = 1;
      out.first_content = Pos{line_no, col + static_cast<int>(i)};
      size_t e = rest.find_last_not_of(" \t\r");
      first_text = rest.substr(i, e - i + 1);
    } else {
      first_text.clear();  // more than one line of content
    }
  }
  out.null_literal = first_text == "~" || first_text == "null" || first_text == "Null" || first_text == "NULL";
  return out;
}

const char* plural(size_t n) { return n == 1 ? "" : "s"; }

}  // namespace

Pos pos_of(const YAML::Node& n, Pos fallback) {
  auto m = n.Mark();
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return Pos{m.line + 1, m.column + 1};
}

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out = parent;
  out += '.';
  out += key;
  return out;
}

std::string index_path(const std::string& parent, size_t i) { return fmt::format("{}[{}]", parent, i); }

const Field* Map::get(std::string_view key) const {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: break;
  }
  const std::string& s = n.Scalar();
  if (is_quoted(n)) return fmt::format("the quoted string \"{}\"", cut(s));
  if (is_plain(n)) {
    if (looks_int(s) || looks_float(s)) return fmt::format("the number {}", cut(s));
    if (looks_bool(s)) return fmt::format("the boolean {}", s);
  }
  return fmt::format("\"{}\"", cut(s));
}

void Reader::error(Pos at, std::string field, std::string message, std::string hint) {
  ++count_;
  if (diags_.size() >= kMaxDiagnostics) return;
  diags_.push_back(Diagnostic{file_, at.line, at.column, std::move(field), std::move(message), std::move(hint)});
}

std::optional<YAML::Node> Reader::parse(std::string_view text, std::string_view what_example) {
  if (text.size() > kMaxFileBytes) {
    error({1, 1}, "", fmt::format("the file is {} bytes; a configuration file is at most {} bytes", text.size(),
                                  kMaxFileBytes),
          "check that this is the right file");
    return std::nullopt;
  }
  if (auto p = check_text(text)) {
    error(p->pos, "", std::move(p->message), std::move(p->hint));
    return std::nullopt;
  }
  // One document per file, found from the text: yaml-cpp 0.7's LoadAll()
  // loops forever on some malformed input (a line starting with ','), so
  // only the first document is parsed, with Load().
  auto layout = scan_documents(text);
  if (layout.second_document_line > 0) {
    error({layout.second_document_line, 1}, "",
          "the file holds more than one YAML document (a second one starts here); it must hold one",
          "put each VM in its own file");
    return std::nullopt;
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    Pos at = e.mark.is_null() ? Pos{1, 1} : Pos{e.mark.line + 1, e.mark.column + 1};
    auto quote = unclosed_quote_line(text, e.mark.is_null() ? INT32_MAX : e.mark.line);
    if (quote && *quote + 1 < at.line) {
      error({*quote + 1, 1}, "",
            fmt::format("YAML syntax error: a quoted string opened on this line is not closed here, so the "
                        "parser read on and failed at line {} ({})",
                        at.line, e.msg),
            "close the quote on the same line");
      return std::nullopt;
    }
    error(at, "", fmt::format("YAML syntax error: {}", e.msg), syntax_hint(text, e.mark, e.msg));
    return std::nullopt;
  }
  if (doc.IsNull()) {
    if (!layout.first_content) {
      error({1, 1}, "", "the file is empty (no YAML content, only comments or blank lines)",
            fmt::format("start from {}", what_example));
    } else if (layout.null_literal) {
      error(*layout.first_content, "", "the document is null: there is nothing in it",
            fmt::format("start from {}", what_example));
    } else {
      // yaml-cpp 0.7 turns some malformed input (a leading ',') into a null
      // document instead of an error; the content is where it gave up.
      error(*layout.first_content, "", "YAML syntax error: this is not the start of a YAML value",
            "a document starts with `key: value` lines");
    }
    return std::nullopt;
  }
  return doc;
}

std::optional<Map> Reader::mapping(const Value& v, std::span<const std::string_view> known, std::string_view what) {
  const auto& n = v.node;
  if (!n.IsMap()) {
    std::string field = v.path;
    if (n.IsNull()) {
      error(v.pos, field, "has no value", "give it its keys, indented below it, or remove the line");
    } else if (n.IsSequence() && n.size() == 1 && n[0].IsMap()) {
      error(v.pos, field, "expected a mapping, got a list",
            fmt::format("{} is a single mapping: remove the '- ' in front of its first key", what));
    } else {
      error(v.pos, field, fmt::format("expected a mapping (key: value lines), got {}", describe(n)),
            v.path.empty() ? "a VM file is a mapping: name: ..., vcpus: ..., memory_gib: ..."
                           : "write its keys on their own lines, indented below it");
    }
    return std::nullopt;
  }
  Map m;
  m.pos = v.pos;
  m.path = v.path;
  for (auto it = n.begin(); it != n.end(); ++it) {
    // Copies, not references: `it->first` lives in a proxy that dies at the
    // end of the expression (found by the fuzzer under ASan).
    const YAML::Node k = it->first;
    Pos kpos = pos_of(k, v.pos);
    if (!k.IsScalar()) {
      error(kpos, v.path, fmt::format("a key must be a plain word, got {}", describe(k)),
            "write keys as `name: value`");
      continue;
    }
    const std::string& key = k.Scalar();
    auto known_it = std::find(known.begin(), known.end(), key);
    if (known_it == known.end()) {
      std::string hint;
      if (auto near = closest_match(key, known)) {
        hint = fmt::format("did you mean {}?", *near);
      } else {
        std::string all;
        for (auto kk : known) all += (all.empty() ? "" : ", ") + std::string(kk);
        hint = fmt::format("known keys here: {}", all);
      }
      error(kpos, join_path(v.path, cut(key)), fmt::format("unknown key \"{}\"", cut(key)), std::move(hint));
      continue;
    }
    if (const Field* first = m.get(*known_it)) {
      error(kpos, join_path(v.path, key),
            fmt::format("duplicate key \"{}\" (first at line {})", key, first->key_pos.line),
            "a key may appear once in a mapping; remove one of them");
      continue;
    }
    const YAML::Node val = it->second;
    // `key:` with no value: yaml-cpp marks the null at the next token, which
    // may be lines below; the key is where the user looks.
    Pos vpos = val.IsNull() ? kpos : pos_of(val, kpos);
    m.fields.push_back(Field{*known_it, kpos, Value{val, vpos, join_path(v.path, key)}});
  }
  return m;
}

void Reader::require(const Map& m, std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    if (m.get(k)) continue;
    std::string where = m.path.empty() ? "the file" : m.path;
    error(m.pos, join_path(m.path, k), fmt::format("required key \"{}\" is missing from {}", k, where),
          fmt::format("add `{}: ...`", k));
  }
}

std::optional<std::string> Reader::string(const Value& v) {
  if (v.node.IsScalar()) return v.node.Scalar();
  if (v.node.IsNull())
    error(v.pos, v.path, "has no value", "give it a value or remove the line");
  else
    error(v.pos, v.path, fmt::format("expected a string, got {}", describe(v.node)),
          v.node.IsSequence() ? "write a single value, not a list" : "write a single value on the same line");
  return std::nullopt;
}

std::optional<uint64_t> Reader::positive(const Value& v, uint64_t max, std::string_view example) {
  const auto& n = v.node;
  if (!n.IsScalar()) {
    if (n.IsNull())
      error(v.pos, v.path, "has no value", fmt::format("give a number, e.g. {}", example));
    else
      error(v.pos, v.path, fmt::format("expected a whole number, got {}", describe(n)),
            fmt::format("write e.g. {}", example));
    return std::nullopt;
  }
  const std::string& s = n.Scalar();
  if (!is_plain(n) && n.Tag() != "tag:yaml.org,2002:int") {
    if (is_quoted(n) && (looks_int(s) || looks_float(s)))
      error(v.pos, v.path, fmt::format("expected a number, got the quoted string \"{}\"", cut(s)),
            "remove the quotes: a number is written without them");
    else
      error(v.pos, v.path, fmt::format("expected a whole number, got {}", describe(n)),
            fmt::format("write e.g. {}", example));
    return std::nullopt;
  }
  if (all_digits(s)) {
    if (s.size() > 1 && s[0] == '0') {
      size_t nz = s.find_first_not_of('0');
      std::string_view stripped = nz == std::string::npos ? std::string_view("0") : std::string_view(s).substr(nz);
      error(v.pos, v.path, fmt::format("{} has a leading zero", cut(s)),
            fmt::format("write {} (YAML 1.1 readers take a leading 0 as octal)", cut(stripped)));
      return std::nullopt;
    }
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || ptr != s.data() + s.size() || value > max) {
      error(v.pos, v.path, fmt::format("{} is too large: at most {}", cut(s), max));
      return std::nullopt;
    }
    if (value == 0) {
      error(v.pos, v.path, "must be greater than 0", fmt::format("write e.g. {}", example));
      return std::nullopt;
    }
    return value;
  }
  if (!s.empty() && s[0] == '-' && (looks_int(s) || looks_float(s))) {
    error(v.pos, v.path, fmt::format("must be greater than 0, got {}", cut(s)),
          fmt::format("write a positive whole number, e.g. {}", example));
  } else if (looks_float(s)) {
    error(v.pos, v.path, fmt::format("must be a whole number, got {}", cut(s)),
          fmt::format("round it, e.g. {}", example));
  } else if (looks_bool(s) || looks_yaml11_bool(s)) {
    error(v.pos, v.path, fmt::format("expected a whole number, got the boolean {}", s),
          fmt::format("write e.g. {}", example));
  } else {
    error(v.pos, v.path, fmt::format("expected a whole number, got \"{}\"", cut(s)),
          fmt::format("write digits only, e.g. {}", example));
  }
  return std::nullopt;
}

std::optional<bool> Reader::boolean(const Value& v) {
  const auto& n = v.node;
  if (!n.IsScalar()) {
    if (n.IsNull())
      error(v.pos, v.path, "has no value", "write true or false, or remove the line");
    else
      error(v.pos, v.path, fmt::format("expected true or false, got {}", describe(n)));
    return std::nullopt;
  }
  const std::string& s = n.Scalar();
  bool plain = is_plain(n) || n.Tag() == "tag:yaml.org,2002:bool";
  if (plain && looks_bool(s)) return s[0] == 't' || s[0] == 'T';
  if (is_quoted(n) && (looks_bool(s) || looks_yaml11_bool(s))) {
    error(v.pos, v.path, fmt::format("expected a boolean, got the quoted string \"{}\"", s),
          "remove the quotes: write true or false");
  } else if (plain && looks_yaml11_bool(s)) {
    bool t = s[0] == 'y' || s[0] == 'Y' || s == "on" || s == "On" || s == "ON";
    error(v.pos, v.path, fmt::format("expected true or false, got {}", s),
          fmt::format("write {} (YAML 1.1 words such as yes/no/on/off mean different things to different tools)",
                      t ? "true" : "false"));
  } else {
    error(v.pos, v.path, fmt::format("expected true or false, got {}", describe(n)));
  }
  return std::nullopt;
}

std::optional<size_t> Reader::choice(const Value& v, std::span<const std::string_view> choices) {
  std::string all;
  for (auto c : choices) all += (all.empty() ? "" : ", ") + std::string(c);
  if (!v.node.IsScalar()) {
    if (v.node.IsNull())
      error(v.pos, v.path, "has no value", fmt::format("write one of: {}", all));
    else
      error(v.pos, v.path, fmt::format("expected one of {}, got {}", all, describe(v.node)));
    return std::nullopt;
  }
  const std::string& s = v.node.Scalar();
  for (size_t i = 0; i < choices.size(); ++i)
    if (choices[i] == s) return i;
  auto near = closest_match(s, choices);
  error(v.pos, v.path, fmt::format("\"{}\" is not one of {}", cut(s), all),
        near ? fmt::format("did you mean {}?", *near) : fmt::format("write one of: {}", all));
  return std::nullopt;
}

std::optional<std::vector<Value>> Reader::sequence(const Value& v, std::string_view example) {
  const auto& n = v.node;
  if (!n.IsSequence()) {
    if (n.IsNull())
      error(v.pos, v.path, "has no value",
            fmt::format("list its items below it, or remove the line; e.g. {}", example));
    else if (n.IsMap())
      error(v.pos, v.path, "expected a list, got a mapping",
            "start each item with '- '");
    else
      error(v.pos, v.path, fmt::format("expected a list, got {}", describe(n)),
            fmt::format("write it as a list, e.g. {}", example));
    return std::nullopt;
  }
  std::vector<Value> items;
  items.reserve(n.size());
  size_t i = 0;
  for (auto it = n.begin(); it != n.end(); ++it, ++i) {
    YAML::Node item = *it;
    items.push_back(Value{item, pos_of(item, v.pos), index_path(v.path, i)});
  }
  return items;
}

Error Reader::to_error(ErrorKind kind) && {
  std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  Error e(kind, fmt::format("{}: {} problem{}", file_, count_, plural(count_)));
  if (count_ > diags_.size())
    e.with_hint(fmt::format("only the first {} are listed; fix those and run again", diags_.size()));
  for (auto& d : diags_) e.add_diagnostic(std::move(d));
  diags_.clear();
  count_ = 0;
  return e;
}

}  // namespace foundry::config::detail
