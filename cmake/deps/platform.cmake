# Platform manufacturing (src/platform): libsodium for SHA-256, which derives
# disk, partition and file-system identifiers from an image seed. A prefix of
# its own, so another area's pkg_check_modules(libsodium) cannot collide.
pkg_check_modules(FOUNDRY_PLATFORM_SODIUM REQUIRED IMPORTED_TARGET libsodium)
