# Third-party libraries, all from Debian 12 packages (scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(tl-expected REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(pugixml REQUIRED)

# Each area adds what it needs in cmake/deps/<area>.cmake.
file(GLOB foundry_dep_files ${CMAKE_CURRENT_LIST_DIR}/deps/*.cmake)
foreach(f IN LISTS foundry_dep_files)
  include(${f})
endforeach()
