// Downloads over HTTP(S) with libcurl (fetch/http.h) into a cache: keyed by URL and expected sha256, bytes
// written to a .part file renamed only after size and sha256 match, retries with backoff,
// HTTP_PROXY / HTTPS_PROXY / NO_PROXY, N downloads at once, progress on a terminal.
#pragma once

#include "fetch/cache.h"

#include <kbuild/types.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kbuild {

struct FetchOptions {
    std::filesystem::path cache_dir;           // downloads go to <cache_dir>/downloads
    int jobs = 4;                              // downloads at once in fetch_all
    int attempts = 4;                          // tries per URL before giving up
    std::chrono::milliseconds backoff{500};    // first retry delay, doubled each time
    std::chrono::milliseconds timeout{30000};  // connect, and each read with no byte
    bool progress = false;                     // redraw a progress line on stderr (a tty)
};

// What to download. sha256 and sha512 empty: not known (metadata such as Release, a Flatcar image), so the
// cached file is revalidated (ETag, If-Modified-Since) rather than trusted. size < 0: not known.
struct FetchRequest {
    std::string url;
    std::string sha256;
    std::int64_t size = -1;
    std::string sha512;  // checked too when set (a Release may list only SHA512)
    // The caller leases the download (cache.h) for as long as it uses the file; otherwise the
    // fetcher keeps it from eviction for the fetcher's lifetime (a crawl's indexes, a plugin's).
    bool leased_by_caller = false;

    // Whether the bytes are known in advance (a cached file under its name is then trusted).
    bool digest_known() const { return !sha256.empty() || !sha512.empty(); }
};

// One result of fetch_all: the file, or the failure that stopped it, thrown again by file().
class FetchOutcome {
public:
    FetchRequest request;
    bool ok() const { return !failure_; }
    // The downloaded file; throws the Error that stopped its download.
    const FetchedFile& file() const {
        if (failure_) std::rethrow_exception(failure_);
        return file_;
    }

private:
    friend class Fetcher;
    FetchedFile file_;
    std::exception_ptr failure_;
};

class Fetcher {
public:
    explicit Fetcher(FetchOptions options);
    ~Fetcher();
    Fetcher(const Fetcher&) = delete;
    Fetcher& operator=(const Fetcher&) = delete;

    // Downloads one URL (or returns the cached file). Thread-safe. Throws kbuild::Error with
    // one line naming the URL and the cause, e.g.
    //   "http://.../x.deb: sha256 mismatch (expected 796a..., got 1f0c...)".
    FetchedFile fetch(const FetchRequest& request);

    // Downloads every request, options.jobs at once; one failing does not stop the others.
    std::vector<FetchOutcome> fetch_all(const std::vector<FetchRequest>& requests);

    // The cached path a request maps to (whether or not it is there yet).
    std::filesystem::path cache_path(const FetchRequest& request) const;

    const FetchOptions& options() const { return options_; }

private:
    class Progress;

    FetchedFile fetch_one(const FetchRequest& request);
    FetchedFile download(const FetchRequest& request, const std::filesystem::path& final_path);
    FetchedFile attempt(const FetchRequest& request, const std::filesystem::path& final_path);

    // Keeps a download from eviction while this fetcher lives (FetchRequest::leased_by_caller).
    void pin(const std::filesystem::path& entry);

    FetchOptions options_;
    std::unique_ptr<Progress> progress_;
    std::optional<Cache> cache_;  // none without a cache directory
    std::mutex pins_mutex_;
    std::map<std::filesystem::path, Cache::Lease> pins_;
};

}  // namespace kbuild
