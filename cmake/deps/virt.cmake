pkg_check_modules(LIBVIRT REQUIRED IMPORTED_TARGET libvirt)
# image pull: downloads (http, https, file URLs) and SHA-256 of what arrives.
find_package(CURL REQUIRED)
pkg_check_modules(VIRT_SODIUM REQUIRED IMPORTED_TARGET libsodium)
