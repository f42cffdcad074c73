#include "fetch/cache.h"

#include "util/error.h"
#include "util/fd.h"
#include "util/file_lock.h"
#include "util/strings.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <regex>
#include <tuple>
#include <utility>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

constexpr const char* kKinds[] = {"downloads", "trees", "prepared"};

std::string my_owner() {
    return std::to_string(::getpid());
}

bool same_file(int fd, const fs::path& path) {
    struct stat held {
    }, named{};
    return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
           held.st_dev == named.st_dev;
}

// Opens `path` (created when missing) and takes the flock; the descriptor, or -1 when `blocking`
// is false and another holds it. Retries when the file was removed or replaced between the open
// and the lock (its remover held it exclusively), so what is locked is always what the path names.
int lock_file(const fs::path& path, int operation, bool blocking = true) {
    for (;;) {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) throw Error(path.string() + ": cannot open: " + errno_text(errno));
        int code;
        while ((code = ::flock(fd, operation | (blocking ? 0 : LOCK_NB))) != 0 && errno == EINTR) {}
        if (code != 0) {
            const int error = errno;
            ::close(fd);
            if (error == EWOULDBLOCK) return -1;
            throw Error(path.string() + ": cannot lock: " + errno_text(error));
        }
        if (same_file(fd, path)) return fd;
        ::close(fd);
    }
}

}  // namespace

std::uint64_t disk_use(const fs::path& path) {
    std::uint64_t bytes = 0;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(path, ec))) return bytes;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (::lstat(it->path().c_str(), &st) == 0) bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
    return bytes;
}

namespace {

std::optional<std::uint64_t> recorded_size(int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return std::nullopt;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (end == text) return std::nullopt;
    return value;
}

void record_size(int fd, std::uint64_t bytes) {
    const std::string text = std::to_string(bytes) + "\n";
    if (::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()))
        (void)!::ftruncate(fd, static_cast<off_t>(text.size()));
}

std::int64_t mtime_of(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_mtime) : 0;
}

void remove_quietly(const fs::path& path) {
    std::error_code ec;
    fs::remove_all(path, ec);
}

}  // namespace

std::string owned_suffix() {
    static std::atomic<unsigned> counter{0};
    return my_owner() + "-" + std::to_string(counter++);
}

std::uint64_t parse_size(const std::string& text) {
    static const std::regex form(R"(\s*([0-9]+(\.[0-9]+)?)\s*([KMGT]?)(i?B)?\s*)", std::regex::icase);
    std::smatch m;
    if (!std::regex_match(text, m, form))
        throw Error("size '" + text + "': not a size (bytes, or a number followed by K, M, G or T)");
    const double number = std::stod(m[1]);
    const std::string unit = m[3].str().empty() ? "" : std::string(1, static_cast<char>(std::toupper(m[3].str()[0])));
    const std::string units = "KMGT";
    const int power = unit.empty() ? 0 : static_cast<int>(units.find(unit[0])) + 1;
    return static_cast<std::uint64_t>(std::llround(number * std::pow(1024.0, power)));
}

std::string size_text(std::uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) value /= 1024, ++unit;
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
    return text;
}

Cache::Cache(fs::path dir) : dir_(std::move(dir)) {
    static std::mutex mutex;
    static std::map<std::string, int> held;  // for the process's life: its live/<pid> locks
    fs::create_directories(dir_ / "live");
    const std::string key = fs::weakly_canonical(dir_).string();
    const fs::path live = dir_ / "live" / my_owner();
    std::lock_guard lock(mutex);
    // Kept while the file is the one locked (a cache removed and made again needs it anew).
    if (const auto it = held.find(key); it != held.end()) {
        if (same_file(it->second, live)) return;
        ::close(it->second);
    }
    held[key] = lock_file(live, LOCK_EX);
}

bool owner_alive(const fs::path& cache_dir, const std::string& owner) {
    if (owner == my_owner()) return true;
    const fs::path live = cache_dir / "live" / owner;
    if (!fs::exists(live)) return false;
    const int fd = lock_file(live, LOCK_EX, /*blocking=*/false);
    if (fd < 0) return true;
    ::unlink(live.c_str());  // held exclusively: no one starting under this id holds it yet
    ::close(fd);
    return false;
}

fs::path Cache::lock_path(const fs::path& entry) const {
    const fs::path relative = entry.lexically_relative(dir_);
    auto part = relative.begin();
    if (relative.empty() || part == relative.end() || *part == "..")
        throw Error(entry.string() + ": not an entry of the cache " + dir_.string());
    const fs::path kind = *part++;
    if (part == relative.end()) throw Error(entry.string() + ": not an entry of the cache " + dir_.string());
    return dir_ / "locks" / kind / part->string();
}

Cache::Lease::Lease(Lease&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Cache::Lease& Cache::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Cache::Lease::~Lease() {
    if (fd_ >= 0) ::close(fd_);
}

void Cache::Lease::set_size(std::uint64_t bytes) const {
    if (fd_ >= 0) record_size(fd_, bytes);
}

Cache::Lease Cache::lease(const fs::path& entry) const {
    const fs::path path = lock_path(entry);
    fs::create_directories(path.parent_path());
    Lease lease;
    lease.fd_ = lock_file(path, LOCK_SH);
    ::futimens(lease.fd_, nullptr);  // used now
    return lease;
}

std::vector<Cache::Entry> Cache::entries() const {
    std::vector<Entry> found;
    for (const char* kind : kKinds) {
        std::error_code ec;
        if (!fs::is_directory(dir_ / kind, ec)) continue;
        fs::create_directories(dir_ / "locks" / kind);  // once per kind, not per entry
        for (const auto& item : fs::directory_iterator(dir_ / kind, ec)) {
            const std::string name = item.path().filename().string();
            if (!item.is_directory() || name.find(".part-") != std::string::npos ||
                name.find(".evict-") != std::string::npos)
                continue;
            Entry entry{item.path(), kind};
            const fs::path lock = lock_path(item.path());
            const bool had_lock = fs::exists(lock);
            const int fd = lock_file(lock, LOCK_EX, /*blocking=*/false);
            entry.in_use = fd < 0;
            if (entry.in_use) {
                // Its lock's mtime is still its last use. Its size is the one its user recorded
                // once it was complete (a tree: as it was renamed into place), or, while it is
                // still growing (a download), what it holds now.
                entry.last_used = mtime_of(lock);
                const UniqueFd reader(::open(lock.c_str(), O_RDONLY | O_CLOEXEC));
                const auto size = reader ? recorded_size(reader.get()) : std::nullopt;
                entry.bytes = size ? *size : disk_use(item.path());
            } else {
                if (!had_lock) {
                    // Used before leases were kept: its own time is its last use.
                    const auto made = fs::last_write_time(item.path(), ec);
                    fs::last_write_time(lock, made, ec);
                }
                entry.last_used = mtime_of(lock);
                const auto size = recorded_size(fd);
                entry.bytes = size ? *size : disk_use(item.path());
                if (!size) {
                    const auto used = fs::last_write_time(lock, ec);
                    record_size(fd, entry.bytes);
                    fs::last_write_time(lock, used, ec);  // recording it is no use
                }
                ::close(fd);
            }
            found.push_back(std::move(entry));
        }
    }
    std::sort(found.begin(), found.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.last_used, a.path) < std::tie(b.last_used, b.path);
    });
    return found;
}

Cache::Pruned Cache::prune(std::uint64_t max_bytes, bool remove_now) const {
    fs::create_directories(dir_ / "locks");
    const FileLock one_at_a_time(dir_ / "locks" / "prune.lock", "cache " + dir_.string());
    Pruned pruned;
    std::vector<Entry> all = entries();
    std::uint64_t total = 0;
    for (const auto& e : all) total += e.bytes;
    for (auto& e : all) {
        if (total <= max_bytes) break;
        const fs::path lock = lock_path(e.path);
        const int fd = lock_file(lock, LOCK_EX, /*blocking=*/false);
        if (fd < 0) {
            ++pruned.in_use;
            continue;
        }
        // Out of its name first: whoever leases it next finds it missing and makes it again.
        const fs::path doomed = e.path.string() + ".evict-" + owned_suffix();
        std::error_code ec;
        fs::rename(e.path, doomed, ec);
        if (!ec) {
            if (e.kind == "trees") fs::remove(e.path.string() + ".unverified.json", ec);
            ::unlink(lock.c_str());
        }
        ::close(fd);
        if (ec) continue;  // gone already
        if (remove_now)
            remove_quietly(doomed);
        else
            pruned.doomed.push_back(doomed);
        total -= e.bytes;
        pruned.freed += e.bytes;
        pruned.evicted.push_back(std::move(e));
    }
    pruned.kept = total;
    return pruned;
}

int Cache::remove_leftovers() const {
    // <name>.part-<owner>-<n>[.log], <name>.evict-<owner>-<n>, work/<owner>-<n>
    static const std::regex owned(R"(.*\.(part|evict)-([0-9]+)-[0-9]+(\.log)?)");
    static const std::regex work(R"(([0-9]+)-[0-9]+)");
    int removed = 0;
    const auto remove_if_dead = [&](const fs::path& path, const std::string& owner) {
        if (owner_alive(dir_, owner)) return;
        remove_quietly(path);
        ++removed;
    };
    std::error_code ec;
    for (const char* kind : kKinds) {
        for (const auto& item : fs::directory_iterator(dir_ / kind, ec)) {
            std::smatch m;
            const std::string name = item.path().filename().string();
            if (std::regex_match(name, m, owned)) {
                remove_if_dead(item.path(), m[2]);
                continue;
            }
            if (std::string(kind) != "downloads" || !item.is_directory()) continue;
            for (const auto& file : fs::directory_iterator(item.path(), ec)) {
                const std::string file_name = file.path().filename().string();
                if (std::regex_match(file_name, m, owned)) remove_if_dead(file.path(), m[2]);
            }
        }
    }
    for (const auto& item : fs::directory_iterator(dir_ / "work", ec)) {
        std::smatch m;
        const std::string name = item.path().filename().string();
        if (std::regex_match(name, m, work)) remove_if_dead(item.path(), m[1]);
    }
    // The live files of owners gone (owner_alive removed them) need nothing more.
    for (const auto& item : fs::directory_iterator(dir_ / "live", ec)) (void)owner_alive(dir_, item.path().filename());
    return removed;
}

}  // namespace kbuild
