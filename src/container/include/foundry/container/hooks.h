// OCI lifecycle hooks: programs run at fixed points with the container's
// state JSON on their stdin.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "foundry/common/error.h"
#include "foundry/container/spec.h"

namespace foundry::container {

// Runs each hook in order and stops at the first failure. `phase` names the
// hook list in errors ("hooks.createRuntime[1]"). A hook that exits non-zero,
// is killed, or outlives its timeout is an error carrying its stderr.
Status run_hooks(const std::vector<Hook>& hooks, std::string_view phase, const std::string& state_json);

// Like run_hooks, but every hook runs and failures are only logged (the
// spec's rule for poststart and poststop). Returns the failure messages.
std::vector<std::string> run_hooks_best_effort(const std::vector<Hook>& hooks, std::string_view phase,
                                               const std::string& state_json);

nlohmann::json hooks_to_json(const Hooks& h);
Hooks hooks_from_json(const nlohmann::json& j);

}  // namespace foundry::container
