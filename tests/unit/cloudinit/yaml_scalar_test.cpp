#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "foundry/cloudinit/cloudinit.h"

using foundry::cloudinit::yaml_quoted;
using foundry::cloudinit::yaml_scalar;

namespace {

// Reads `text` back as the value of a block mapping and as an item of a flow
// sequence, the two places our documents put scalars.
void expect_round_trip(const std::string& s) {
  const std::string v = yaml_scalar(s);
  YAML::Node block, flow;
  try {
    block = YAML::Load("k: " + v + "\n");
    flow = YAML::Load("k: [" + v + ", x]\n");
  } catch (const YAML::Exception& e) {
    FAIL() << "'" << s << "' written as <" << v << "> does not parse: " << e.what();
  }
  ASSERT_TRUE(block["k"].IsScalar()) << s << " -> " << v;
  EXPECT_EQ(block["k"].as<std::string>(), s) << "written as <" << v << ">";
  ASSERT_TRUE(flow["k"].IsSequence() && flow["k"].size() == 2) << s << " -> " << v;
  EXPECT_EQ(flow["k"][0].as<std::string>(), s) << "written as <" << v << ">";
}

}  // namespace

TEST(YamlScalar, PlainWhereTheSeedWritesPlain) {
  for (std::string s : {"my-vm", "my-vm.example.com", "10.55.22.22/24", "8.8.8.8", "10.55.22.1",
                        "ssh-ed25519 AAAA...", "ssh-rsa AAAAB3NzaC1yc2E user@host",
                        "my-vm-1730534400", "a#b", "a-b_c.d"})
    EXPECT_EQ(yaml_scalar(s), s);
}

TEST(YamlScalar, QuotedWhereAReaderWouldSeeSomethingElse) {
  for (std::string s :
       {"",      "yes",   "No",   "ON",    "off",  "y",     "n",          "true",
        "False", "null",  "Null", "~",     "=",    "<<",    "0",          "123",
        "007",   "-1",    "+1",   "1.5",   ".5",   "1e5",   "1_000",      "0x1F",
        "0o17",  "0b101", ".inf", "-.Inf", ".NaN", "12:30", "2024-01-01", "be:ef:0a:37:16:16",
        "- a",   "-",     "?",    ":",     ": a",  "a: b",  "a:",         "#x",
        "a #b",  "[x]",   "{x}",  "a,b",   "a]",   "*a",    "&a",         "!a",
        "|",     ">",     "'a",   "\"a",   "%a",   "@a",    "`a",         " a",
        "a ",    "a\tb",  "a\nb", "é",     "...",  "---"})
    EXPECT_EQ(yaml_scalar(s).front(), '"') << "'" << s << "' should be quoted";
}

TEST(YamlScalar, QuotedEscapes) {
  EXPECT_EQ(yaml_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(yaml_quoted("t\tn\nr\r"), R"("t\tn\nr\r")");
  EXPECT_EQ(yaml_quoted(std::string("\x01\x7f", 2)), R"("\x01\x7F")");
  EXPECT_EQ(yaml_quoted("\u2028\u2029\u0085\uFEFF"), R"("\L\P\N\uFEFF")");
  EXPECT_EQ(yaml_quoted("José ☃"), "\"José ☃\"");
}

TEST(YamlScalar, AwkwardValuesRoundTrip) {
  for (std::string s : {"",
                        "yes",
                        "a: b",
                        "a #b",
                        "[x]",
                        "- a",
                        "\"q\" and \\b",
                        "José ☃ \U0001F600",
                        "a\nb",
                        "\t",
                        "x\u2028y",
                        "ssh-ed25519 AAAA user@host: #1 [a], {b}",
                        "2001:db8::1",
                        "...",
                        "---",
                        "!tag",
                        "&anchor",
                        "*alias",
                        "|",
                        ">",
                        "%",
                        "@",
                        "`",
                        "'",
                        "a'b",
                        "a ",
                        " a",
                        "~"})
    expect_round_trip(s);
}

TEST(YamlScalar, EveryPrintableAsciiStringOfUpToTwoCharactersRoundTrips) {
  std::vector<std::string> all;
  for (int a = 0x20; a < 0x7f; ++a) {
    all.push_back(std::string(1, char(a)));
    for (int b = 0x20; b < 0x7f; ++b) all.push_back(std::string{char(a), char(b)});
  }
  // One document per context keeps this fast; when it fails, the per-string
  // check below names the culprit.
  std::string doc = "block:\n";
  for (const auto& s : all) doc += "  - " + yaml_scalar(s) + "\n";
  doc += "flow: [";
  for (size_t i = 0; i < all.size(); ++i) doc += (i ? ", " : "") + yaml_scalar(all[i]);
  doc += "]\n";
  bool whole_ok = true;
  try {
    YAML::Node y = YAML::Load(doc);
    for (const char* ctx : {"block", "flow"}) {
      size_t i = 0;
      for (const auto& item : y[ctx])
        whole_ok = whole_ok && i < all.size() && item.as<std::string>() == all[i++];
      whole_ok = whole_ok && i == all.size();
    }
  } catch (const YAML::Exception&) {
    whole_ok = false;
  }
  if (whole_ok) return;
  for (const auto& s : all) {
    expect_round_trip(s);
    if (::testing::Test::HasFailure()) return;
  }
  FAIL() << "the combined document did not round-trip, but every string alone did";
}
