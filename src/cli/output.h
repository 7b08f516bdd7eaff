// Output helpers not tied to one command group.
#pragma once

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"

namespace foundry::cli {

// An error's diagnostics as JSON objects {file,line,column,field,message,hint}
// (one object with the message when it has none), for `-o json` reports.
nlohmann::json diagnostics_json(const Error& e);

}  // namespace foundry::cli
