// Downloads with libcurl into a file descriptor, hashing as the bytes arrive.
#pragma once

#include <cstdint>
#include <string>

#include "foundry/common/error.h"
#include "foundry/virt/libvirt.h"

namespace foundry::virt {

struct DownloadResult {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex of everything written
};

// Only http://, https:// and file:// URLs are accepted (ErrorKind::Validation
// otherwise); redirects are followed to http(s) only. HTTP errors, timeouts
// and short writes are ErrorKind::Storage with the URL and curl's message.
Status check_download_url(const std::string& url);
Result<DownloadResult> download_to_fd(const std::string& url, int fd, const ProgressFn& progress = {});

// SHA-256 of a whole file descriptor from offset 0 (pread; offset unchanged).
Result<std::string> sha256_fd(int fd);

}  // namespace foundry::virt
