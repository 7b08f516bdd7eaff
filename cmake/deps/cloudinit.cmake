# libisofs writes the NoCloud seed ISO in-process (Debian libisofs-dev).
pkg_check_modules(LIBISOFS REQUIRED IMPORTED_TARGET libisofs-1)
