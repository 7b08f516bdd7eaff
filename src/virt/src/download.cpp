#include "foundry/virt/download.h"

#include <curl/curl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "foundry/common/log.h"

namespace foundry::virt {

namespace {

void init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // sodium_init only fails when no entropy source exists; SHA-256 does
    // not need one.
    if (sodium_init() < 0) spdlog::debug("sodium_init failed; SHA-256 works without it");
  });
}

std::string to_hex(const unsigned char* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s += digits[d[i] >> 4];
    s += digits[d[i] & 15];
  }
  return s;
}

struct Sink {
  int fd = -1;
  crypto_hash_sha256_state sha{};
  uint64_t written = 0;
  int write_errno = 0;
  const ProgressFn* progress = nullptr;
};

// libcurl calls these from C: no exceptions may leave them.
size_t on_data(char* ptr, size_t size, size_t nmemb, void* ud) noexcept {
  auto* s = static_cast<Sink*>(ud);
  size_t len = size * nmemb;
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::write(s->fd, ptr + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      s->write_errno = errno;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    off += static_cast<size_t>(n);
  }
  crypto_hash_sha256_update(&s->sha, reinterpret_cast<const unsigned char*>(ptr), len);
  s->written += len;
  return len;
}

int on_progress(void* ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) noexcept {
  auto* s = static_cast<Sink*>(ud);
  try {
    if (s->progress && *s->progress)
      (*s->progress)(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal > 0 ? dltotal : 0));
  } catch (...) {
    return 1;  // abort the transfer rather than unwind through curl
  }
  return 0;
}

struct CurlFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};

}  // namespace

Status check_download_url(const std::string& url) {
  auto starts = [&](const char* p) { return url.rfind(p, 0) == 0; };
  if (!(starts("http://") || starts("https://") || starts("file://")))
    return fail(Error(ErrorKind::Validation, fmt::format("unsupported URL '{}'", url))
                    .with_hint("use an http://, https:// or file:// URL (or `foundry image import FILE`)"));
  return ok();
}

Result<DownloadResult> download_to_fd(const std::string& url, int fd, const ProgressFn& progress) {
  FOUNDRY_TRY(check_download_url(url));
  init_once();
  std::unique_ptr<CURL, CurlFree> c(curl_easy_init());
  if (!c) return fail(ErrorKind::Storage, "download {}: cannot initialise libcurl", url);
  Sink sink;
  sink.fd = fd;
  sink.progress = &progress;
  crypto_hash_sha256_init(&sink.sha);
  char errbuf[CURL_ERROR_SIZE] = {};
  CURL* h = c.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &sink);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "foundry/0.1");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled mirror should not hang forever: under 1 KiB/s for 60 s aborts.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    Error err(ErrorKind::Storage, fmt::format("download {}: {}", url, why));
    err.with_detail(fmt::format("libcurl: {} (code {})", curl_easy_strerror(rc), static_cast<int>(rc)));
    if (rc == CURLE_WRITE_ERROR && sink.write_errno) err.with_errno(sink.write_errno).with_hint("is the temporary directory full? set TMPDIR to a larger one");
    else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT)
      err.with_hint("check the URL and that this machine can reach the server");
    return fail(std::move(err));
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&sink.sha, digest);
  return DownloadResult{sink.written, to_hex(digest, sizeof digest)};
}

Result<std::string> sha256_fd(int fd) {
  init_once();
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<unsigned char> buf(1 << 20);
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Storage, "hash the downloaded file");
    }
    if (n == 0) break;
    crypto_hash_sha256_update(&st, buf.data(), static_cast<unsigned long long>(n));
    off += n;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, digest);
  return to_hex(digest, sizeof digest);
}

}  // namespace foundry::virt
