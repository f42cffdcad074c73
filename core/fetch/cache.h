// kbuild's cache directory as entries that can be used, listed and evicted:
//   downloads/<key>  one download (fetch.h)        trees/<name>     an unpacked kernel tree
//   prepared/<name>  a source kernel made ready     (and work/<owner>-<n>: a running build's)
// Each entry has a lock file, locks/<kind>/<name>: held shared while the entry is used (by any
// thread of any kbuild process sharing the cache), its mtime the entry's last use, its text the
// entry's size once known. Eviction takes the lock exclusively, so an entry in use is never
// evicted, and goes least recently used first.
//
// Names a process gives to what it makes (<name>.part-<owner>-<n>, work/<owner>-<n>) carry its
// owner, kbuild's process id; each process holds live/<owner> locked for its lifetime, so the
// leftovers of a killed run are told from a running one's by that lock alone, across processes
// and containers sharing the cache.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kbuild {

// A name unique to this process and call: "<pid>-<n>", the owner first.
std::string owned_suffix();

// "20G", "512M", "1.5T", "4096" (bytes; K, M, G, T are powers of 1024) -> bytes. Throws
// kbuild::Error naming the text.
std::uint64_t parse_size(const std::string& text);
// 1536 -> "1.5 KiB".
std::string size_text(std::uint64_t bytes);

// Disk use of a file or a directory's whole content, links not followed: what removing it frees.
std::uint64_t disk_use(const std::filesystem::path& path);

class Cache {
public:
    // Holds live/<pid> for this process (once per cache directory, for the process's life).
    explicit Cache(std::filesystem::path dir);

    // While held, the entry (a directory under the cache: trees/<name>, downloads/<key>, ...)
    // is not evicted. Taking it marks the entry used now. Movable.
    class Lease {
    public:
        Lease() = default;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&& other) noexcept;
        ~Lease();
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        // Records the entry's size (once it is complete), so listing and eviction need not walk it.
        void set_size(std::uint64_t bytes) const;

    private:
        friend class Cache;
        int fd_ = -1;
    };
    // Whether or not the entry exists yet: a lease taken before it is made keeps it.
    Lease lease(const std::filesystem::path& entry) const;

    struct Entry {
        std::filesystem::path path;
        std::string kind;  // downloads, trees, prepared
        std::uint64_t bytes = 0;
        std::int64_t last_used = 0;  // seconds since the epoch
        bool in_use = false;
    };
    // Every entry, least recently used first.
    std::vector<Entry> entries() const;

    struct Pruned {
        std::vector<Entry> evicted;
        std::uint64_t freed = 0, kept = 0;  // bytes
        int in_use = 0;                     // entries that would have gone but were in use
        // With remove_now false: where the evicted entries were renamed to, for the caller to
        // remove (a tree takes seconds); a run killed first leaves them to remove_leftovers.
        std::vector<std::filesystem::path> doomed;
    };
    // Evicts entries no one uses, least recently used first, until the entries hold at most
    // max_bytes (0: every entry no one uses). One prune at a time per cache.
    Pruned prune(std::uint64_t max_bytes, bool remove_now = true) const;

    // Removes what killed kbuild processes left: partial trees and downloads, work directories,
    // half-evicted entries. Never what a live process (this one included) owns. Returns how many.
    int remove_leftovers() const;

    const std::filesystem::path& dir() const { return dir_; }

private:
    std::filesystem::path lock_path(const std::filesystem::path& entry) const;

    std::filesystem::path dir_;
};

// Whether a kbuild process whose owner id is `owner` still runs with this cache (live/<owner>
// is locked): what may and may not be removed as a leftover.
bool owner_alive(const std::filesystem::path& cache_dir, const std::string& owner);

}  // namespace kbuild
