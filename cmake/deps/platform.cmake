# Platform manufacturing (src/platform): libsodium for SHA-256, which derives
# disk, partition and file-system identifiers from an image seed. A prefix of
# its own, so another area's pkg_check_modules(libsodium) cannot collide.
pkg_check_modules(FOUNDRY_PLATFORM_SODIUM REQUIRED IMPORTED_TARGET libsodium)
# OpenSSL's libcrypto for the cluster's identity made at build time: the CA
# and node certificates (Ed25519, X.509) and the WireGuard keys (X25519).
# libsodium has X25519 but no X.509; one library does both.
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
