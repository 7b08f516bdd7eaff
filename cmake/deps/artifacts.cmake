# Platform artifact writers (src/platform/src/artifacts*.cpp): the Firecracker
# kit needs the uncompressed kernel out of the bzImage, whose payload is xz
# (Debian) or gzip; liblzma and zlib decompress it in process instead of
# piping through xz(1)/gzip(1), which handle the trailing size field badly.
pkg_check_modules(FOUNDRY_PLATFORM_LZMA REQUIRED IMPORTED_TARGET liblzma)
find_package(ZLIB REQUIRED)
