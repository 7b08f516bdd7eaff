#include "output.h"

namespace foundry::cli {

nlohmann::json diagnostics_json(const Error& e) {
  auto arr = nlohmann::json::array();
  for (const auto& d : e.diagnostics())
    arr.push_back({{"file", d.file},
                   {"line", d.line},
                   {"column", d.column},
                   {"field", d.field},
                   {"message", d.message},
                   {"hint", d.hint}});
  if (arr.empty()) arr.push_back({{"message", e.to_string()}, {"hint", e.hint()}});
  return arr;
}

}  // namespace foundry::cli
