// Two stages. A producer thread decompresses the payload (a .deb's data.tar.*, an rpm's cpio,
// or the file itself) into 1 MiB blocks; the calling thread reads tar or cpio entries out of
// those blocks with libarchive, checks each, and writes it with archive_write_disk.
#include "unpack/extract.h"  // kbuild's; <archive.h> is libarchive's

#include "unpack/archive_handle.h"

#include "util/fd.h"
#include "util/strings.h"

#include <kbuild/decompress.hpp>
#include <kbuild/types.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace kbuild {

ReadArchive new_reader() {
    ReadArchive reader(archive_read_new());
    if (!reader) throw Error("libarchive: out of memory");
    return reader;
}

void support_compressions(struct archive* a) {
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lzma(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_lz4(a);
}

std::string archive_message(struct archive* a) {
    const char* text = archive_error_string(a);
    std::string line = text != nullptr && *text != '\0' ? text : "unknown libarchive error";
    for (char& c : line) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
}
namespace {

// Big blocks: fewer read() calls and fewer trips through the decompression filters.
constexpr std::size_t kBlockSize = 1 << 20;
// Decompressed blocks queued between the two stages: enough to absorb a burst of small files.
constexpr std::size_t kBlocksInFlight = 8;

// Security is enforced by TreeWriter before libarchive sees an entry. NOABSOLUTEPATHS cannot be
// used because every pathname is rewritten to an absolute one under the target;
// SECURE_SYMLINKS is left out because libarchive would lstat every component of that absolute
// path for every entry, which TreeWriter does once per directory (see TreeWriter::check_parents).
// No ARCHIVE_EXTRACT_OWNER: a header tree belongs to whoever unpacks it.
constexpr int kDiskFlags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT;

[[noreturn]] void fail(const std::string& archive_name, struct archive* a) {
    throw Error(archive_name + ": " + archive_message(a));
}

// The payload, still compressed: a .deb's data.tar.* (or control.tar.*) member read out of the
// ar archive, or the whole file after an rpm's headers (libarchive's rpm filter strips those).
class CompressedPayload {
public:
    // `container` reads `file` and is positioned at the entry whose data is the payload.
    CompressedPayload(UniqueFd file, ReadArchive container) : file_(std::move(file)), container_(std::move(container)) {
        pending_size_ = read_block(&pending_);  // read ahead, to see the magic number
    }

    // The first block's bytes (read ahead), to tell its compression.
    std::string_view lead() const {
        return pending_size_ > 0
                   ? std::string_view(static_cast<const char*>(pending_), static_cast<std::size_t>(pending_size_))
                   : std::string_view();
    }

    // The next block, valid until the next call; 0 at the end, negative on error (see error()).
    // Blocks come straight out of the container's buffer, uncopied.
    la_ssize_t read(const void** buffer) {
        if (!has_pending_) return read_block(buffer);
        has_pending_ = false;
        *buffer = pending_;
        return pending_size_;
    }

    std::string error() const { return archive_message(container_.get()); }

private:
    la_ssize_t read_block(const void** buffer) {
        std::size_t size = 0;
        la_int64_t offset = 0;
        const int status = archive_read_data_block(container_.get(), buffer, &size, &offset);
        if (status == ARCHIVE_EOF) return 0;
        if (status < ARCHIVE_WARN) return ARCHIVE_FATAL;
        return static_cast<la_ssize_t>(size);
    }

    UniqueFd file_;  // first: closed after container_ is freed
    ReadArchive container_;
    const void* pending_ = nullptr;
    la_ssize_t pending_size_ = 0;
    bool has_pending_ = true;
};

// Turns the compressed payload into the tar or cpio stream.
class PayloadDecompressor {
public:
    virtual ~PayloadDecompressor() = default;
    // Fills `out` up to `capacity` bytes; short only at the end; 0 at the end; negative on
    // error (see error()).
    virtual la_ssize_t read(char* out, std::size_t capacity) = 0;
    virtual std::string error() const = 0;
};

// The payload's blocks as the SDK's decompressors read them.
class PayloadInput : public CompressedInput {
public:
    explicit PayloadInput(CompressedPayload payload) : payload_(std::move(payload)) {}
    std::string_view next() override {
        const void* block = nullptr;
        const la_ssize_t n = payload_.read(&block);
        if (n < 0) throw Error(payload_.error());
        return {static_cast<const char*>(block), static_cast<std::size_t>(n)};
    }

private:
    CompressedPayload payload_;
};

// More threads than blocks do nothing, and a header tree rarely has more than 4 blocks.
std::atomic<unsigned> xz_threads{4};

// gzip, xz and zstd through the SDK's decompressors (kbuild/decompress.hpp), xz on up to 4
// threads: Debian's data.tar.xz is cut into 24 MiB blocks that decode in parallel (dpkg-deb
// does so), which libarchive's single-threaded xz filter cannot.
class LibraryDecompressor : public PayloadDecompressor {
public:
    LibraryDecompressor(Compression kind, CompressedPayload payload) {
        DecompressOptions options;
        options.xz_threads = xz_threads.load();
        // No name: the archive's is put before the cause where the error is reported.
        decompressor_ = make_decompressor(kind, std::make_unique<PayloadInput>(std::move(payload)), "", options);
    }

    la_ssize_t read(char* out, std::size_t capacity) override {
        try {
            return static_cast<la_ssize_t>(decompressor_->read(out, capacity));
        } catch (const std::exception& e) {
            error_ = e.what();
            return ARCHIVE_FATAL;
        }
    }

    std::string error() const override { return error_; }

private:
    std::unique_ptr<kbuild::Decompressor> decompressor_;
    std::string error_;
};

la_ssize_t read_compressed(struct archive* reader, void* payload, const void** buffer) noexcept {
    auto* compressed = static_cast<CompressedPayload*>(payload);
    const la_ssize_t n = compressed->read(buffer);
    if (n < 0) archive_set_error(reader, EIO, "%s", compressed->error().c_str());
    return n;
}

// Any other compression (bzip2, lzma, lz4, or none) with libarchive's filters, in a nested
// reader whose input is the payload.
class FilterDecompressor : public PayloadDecompressor {
public:
    FilterDecompressor(CompressedPayload payload, const std::string& archive_name)
        : payload_(std::move(payload)), reader_(new_reader()) {
        archive_read_support_format_raw(reader_.get());
        support_compressions(reader_.get());
        if (archive_read_open(reader_.get(), &payload_, nullptr, &read_compressed, nullptr) != ARCHIVE_OK) {
            fail(archive_name, reader_.get());
        }
        struct archive_entry* entry = nullptr;
        const int status = archive_read_next_header(reader_.get(), &entry);
        if (status == ARCHIVE_EOF) throw Error(archive_name + ": empty payload");
        if (status < ARCHIVE_WARN) fail(archive_name, reader_.get());
    }

    FilterDecompressor(const FilterDecompressor&) = delete;
    FilterDecompressor& operator=(const FilterDecompressor&) = delete;

    la_ssize_t read(char* out, std::size_t capacity) override {
        return archive_read_data(reader_.get(), out, capacity);
    }

    std::string error() const override { return archive_message(reader_.get()); }

private:
    CompressedPayload payload_;  // first: reader_ reads it until freed
    ReadArchive reader_;
};

// Opens `path`, detecting from its content a .deb (ar), an .rpm, or a plain or compressed
// stream, and returns what yields its payload (tar or cpio) decompressed.
std::unique_ptr<PayloadDecompressor> open_payload(const fs::path& path, DebMember member) {
    const std::string name = path.string();
    // Opened here rather than by libarchive, whose message on failure does not say why.
    UniqueFd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw Error(name + ": cannot open: " + errno_text(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) throw Error(name + ": is a directory");
    ReadArchive file = new_reader();
    archive_read_support_format_ar(file.get());
    archive_read_support_format_raw(file.get());  // anything else is a payload in itself
    archive_read_support_filter_rpm(file.get());  // an rpm's headers, before its payload
    if (archive_read_open_fd(file.get(), fd.get(), kBlockSize) != ARCHIVE_OK) {
        fail(name, file.get());
    }
    struct archive_entry* entry = nullptr;
    int status = archive_read_next_header(file.get(), &entry);
    if (status == ARCHIVE_EOF) throw Error(name + ": empty archive");
    if (status < ARCHIVE_WARN) fail(name, file.get());

    if ((archive_format(file.get()) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_AR) {
        if (member == DebMember::control) {
            throw Error(name + ": not a .deb, so it has no control member");
        }
    } else {
        const std::string wanted = member == DebMember::data ? "data.tar" : "control.tar";
        for (;;) {
            const std::string_view member_name = archive_entry_pathname(entry);
            const bool found = member_name == wanted || (member_name.size() > wanted.size() + 1 &&
                                                         member_name.compare(0, wanted.size() + 1, wanted + ".") == 0);
            if (found) break;
            status = archive_read_next_header(file.get(), &entry);
            if (status == ARCHIVE_EOF) {
                throw Error(name + ": no " + wanted + " member in this .deb");
            }
            if (status < ARCHIVE_WARN) fail(name, file.get());
        }
    }

    CompressedPayload payload(std::move(fd), std::move(file));
    const Compression kind = detect_compression(payload.lead());
    if (kind == Compression::gzip || kind == Compression::xz || kind == Compression::zstd)
        return std::make_unique<LibraryDecompressor>(kind, std::move(payload));
    return std::make_unique<FilterDecompressor>(std::move(payload), name);
}

// The decompressed payload, produced on a thread of its own so that decompression (most of the
// CPU time for xz) overlaps with writing files, as dpkg-deb's decompressor process overlaps
// with its tar process. The consumer reads it through a libarchive read callback.
class PayloadStream {
public:
    explicit PayloadStream(std::unique_ptr<PayloadDecompressor> decompressor) : decompressor_(std::move(decompressor)) {
        producer_ = std::thread([this] { produce(); });
    }

    ~PayloadStream() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancelled_ = true;
        }
        changed_.notify_all();
        producer_.join();
    }

    PayloadStream(const PayloadStream&) = delete;
    PayloadStream& operator=(const PayloadStream&) = delete;

    // The next block, valid until the next call; size 0 at the end. False when the producer
    // failed: error() says why.
    bool next(const char** data, std::size_t* size) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (current_.bytes) spare_.push_back(std::move(current_));
        changed_.wait(lock, [this] { return !ready_.empty() || finished_; });
        if (!ready_.empty()) {
            current_ = std::move(ready_.front());
            ready_.pop_front();
            lock.unlock();
            changed_.notify_all();
            *data = current_.bytes.get();
            *size = current_.size;
            return true;
        }
        *data = nullptr;
        *size = 0;
        return error_.empty();
    }

    // Reads what is left (tar's end padding) so that a corrupt compressed stream is noticed
    // even after the last entry; false when the producer failed.
    bool drain() {
        const char* data = nullptr;
        std::size_t size = 0;
        while (next(&data, &size)) {
            if (size == 0) return true;
        }
        return false;
    }

    const std::string& error() const { return error_; }  // set before finished_, read after

private:
    struct Block {
        std::unique_ptr<char[]> bytes;
        std::size_t size = 0;
    };

    void produce() {
        for (;;) {
            Block block = take_spare();
            const la_ssize_t n = decompressor_->read(block.bytes.get(), kBlockSize);
            std::unique_lock<std::mutex> lock(mutex_);
            if (n <= 0) {
                if (n < 0) error_ = decompressor_->error();
                finished_ = true;
                lock.unlock();
                changed_.notify_all();
                return;
            }
            block.size = static_cast<std::size_t>(n);
            changed_.wait(lock, [this] { return cancelled_ || ready_.size() < kBlocksInFlight; });
            if (cancelled_) return;
            ready_.push_back(std::move(block));
            lock.unlock();
            changed_.notify_all();
        }
    }

    Block take_spare() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (spare_.empty()) return Block{std::make_unique<char[]>(kBlockSize), 0};
        Block block = std::move(spare_.back());
        spare_.pop_back();
        return block;
    }

    std::unique_ptr<PayloadDecompressor> decompressor_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Block> ready_;
    std::vector<Block> spare_;
    Block current_;  // handed to the consumer; recycled at its next call
    bool finished_ = false;
    bool cancelled_ = false;
    std::string error_;
    std::thread producer_;  // last: starts once everything it touches exists
};

la_ssize_t read_payload(struct archive* reader, void* stream, const void** buffer) noexcept {
    auto* payload = static_cast<PayloadStream*>(stream);
    const char* data = nullptr;
    std::size_t size = 0;
    if (!payload->next(&data, &size)) {
        archive_set_error(reader, EIO, "%s", payload->error().c_str());
        return ARCHIVE_FATAL;
    }
    *buffer = data;
    return static_cast<la_ssize_t>(size);
}

// archive_write_disk reads the process's umask by setting it to 0 and back, in
// archive_write_disk_new and in every archive_write_header. Two extractions on two threads
// could interleave those calls and leave the umask at 0 for good, so they take turns.
std::mutex& umask_mutex() {
    static std::mutex mutex;
    return mutex;
}

WriteArchive new_disk_writer() {
    std::lock_guard<std::mutex> lock(umask_mutex());
    return WriteArchive(archive_write_disk_new());
}

// Writes entries under one root, refusing any that would land outside it.
class TreeWriter {
public:
    TreeWriter(std::string archive_name, const fs::path& root)
        : archive_name_(std::move(archive_name)), disk_(new_disk_writer()) {
        if (!disk_) throw Error("libarchive: out of memory");
        root_prefix_ = root.string();
        if (root_prefix_.back() != '/') root_prefix_ += '/';
        archive_write_disk_set_options(disk_.get(), kDiskFlags);
    }

    // Writes every entry `reader` has.
    void write_all(struct archive* reader) {
        struct archive_entry* entry = nullptr;
        for (;;) {
            const int status = archive_read_next_header(reader, &entry);
            if (status == ARCHIVE_EOF) break;
            if (status < ARCHIVE_WARN) fail(archive_name_, reader);
            write_entry(reader, entry);
        }
        // Applies the modes and times of directories, deferred until their contents exist.
        if (archive_write_close(disk_.get()) < ARCHIVE_WARN) fail(archive_name_, disk_.get());
    }

    const ExtractStats& stats() const { return stats_; }

private:
    void write_entry(struct archive* reader, struct archive_entry* entry) {
        const std::string entry_name = archive_entry_pathname(entry);
        const std::string path = relative_path(entry_name, entry_name, "path");
        if (path.empty()) return;  // "./": the root itself, which exists

        const mode_t type = archive_entry_filetype(entry);
        const char* hardlink = archive_entry_hardlink(entry);
        const bool is_dir = hardlink == nullptr && type == AE_IFDIR;
        // Devices, fifos and sockets: never needed to build against, and a hazard as root.
        if (hardlink == nullptr && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            return;
        }

        check_parents(path, entry_name, "path", is_dir ? Check::with_self : Check::parents);
        const std::string full_path = root_prefix_ + path;
        if (full_path.size() >= PATH_MAX) throw refusal(entry_name, "path too long");
        archive_entry_copy_pathname(entry, full_path.c_str());

        if (hardlink != nullptr) {
            const std::string what = std::string("hard link target ") + hardlink;
            const std::string target = relative_path(hardlink, entry_name, what.c_str());
            if (target.empty()) throw refusal(entry_name, what + " is the target directory");
            check_parents(target, entry_name, what.c_str(), Check::existing_parents);
            archive_entry_copy_hardlink(entry, (root_prefix_ + target).c_str());
        }
        if (is_dir) {
            // Owner rwx, so that later packages can merge into it and the tree can be removed.
            archive_entry_set_perm(entry, archive_entry_perm(entry) | 0700);
        } else {
            forget_dirs_at(path);  // a file or link may replace an empty directory
        }

        int status = ARCHIVE_OK;
        {
            std::lock_guard<std::mutex> lock(umask_mutex());
            status = archive_write_header(disk_.get(), entry);
        }
        if (status < ARCHIVE_WARN) write_failed(entry_name);
        if (type == AE_IFREG && archive_entry_size(entry) > 0) copy_data(reader, entry_name);
        if (archive_write_finish_entry(disk_.get()) < ARCHIVE_WARN) write_failed(entry_name);
        if (is_dir) real_dirs_.insert(path);
        ++stats_.entries;
    }

    void copy_data(struct archive* reader, const std::string& entry_name) {
        const void* block = nullptr;
        std::size_t size = 0;
        la_int64_t offset = 0;
        for (;;) {
            const int status = archive_read_data_block(reader, &block, &size, &offset);
            if (status == ARCHIVE_EOF) return;
            if (status < ARCHIVE_WARN) fail(archive_name_, reader);
            if (archive_write_data_block(disk_.get(), block, size, offset) < ARCHIVE_WARN) {
                write_failed(entry_name);
            }
            stats_.bytes += static_cast<std::int64_t>(size);
        }
    }

    // `name` without "./", "." or empty components; refused when absolute or with "..".
    std::string relative_path(std::string_view name, const std::string& entry_name, const char* what) const {
        if (!name.empty() && name.front() == '/') {
            throw refusal(entry_name, std::string(what) + " is absolute: it escapes the target");
        }
        std::string clean;
        std::size_t start = 0;
        while (start <= name.size()) {
            std::size_t end = name.find('/', start);
            if (end == std::string_view::npos) end = name.size();
            const std::string_view part = name.substr(start, end - start);
            if (part == "..") throw refusal(entry_name, std::string(what) + " escapes the target");
            if (!part.empty() && part != ".") {
                if (!clean.empty()) clean += '/';
                clean.append(part);
            }
            start = end + 1;
        }
        return clean;
    }

    enum class Check {
        parents,           // the directories leading to a new entry
        with_self,         // those and the entry itself, a directory
        existing_parents,  // those leading to a hard link's target, which libarchive won't create
    };

    // Refuses `path` when a directory on the way to it (or the path itself, for a directory) is
    // a symlink on disk: writing through it could land anywhere. A directory found real, or
    // about to be created by libarchive, is remembered, so each is looked at once per archive.
    void check_parents(const std::string& path, const std::string& entry_name, const char* what, Check check) {
        const bool self = check == Check::with_self;
        // Most entries sit in a directory already known: the directories remembered always
        // include all their ancestors, so checking resumes below the deepest one remembered.
        std::size_t end = self ? path.size() : path.rfind('/');
        while (end != std::string::npos && real_dirs_.find(std::string_view(path.data(), end)) == real_dirs_.end()) {
            end = end == 0 ? std::string::npos : path.rfind('/', end - 1);
        }
        if (end == path.size()) return;
        end = path.find('/', end == std::string::npos ? 0 : end + 1);
        for (;;) {
            if (end == std::string::npos) {
                if (!self) return;
                end = path.size();
            }
            const std::string_view dir(path.data(), end);
            if (real_dirs_.find(dir) == real_dirs_.end()) {
                const std::string full = root_prefix_ + std::string(dir);
                struct stat st;
                if (::lstat(full.c_str(), &st) == 0) {
                    if (S_ISLNK(st.st_mode)) {
                        throw refusal(entry_name,
                                      std::string(what) + " passes through the symlink " + std::string(dir));
                    }
                    if (S_ISDIR(st.st_mode)) real_dirs_.emplace(dir);
                } else if (errno == ENOENT) {
                    // Nothing below exists either: libarchive creates these as directories.
                    if (check != Check::existing_parents) remember_dirs_from(path, end, self);
                    return;
                }
            }
            if (end == path.size()) return;
            end = path.find('/', end + 1);
        }
    }

    void remember_dirs_from(const std::string& path, std::size_t end, bool self) {
        for (;;) {
            real_dirs_.emplace(path, 0, end);
            if (end == path.size()) return;
            end = path.find('/', end + 1);
            if (end == std::string::npos) {
                if (!self) return;
                end = path.size();
            }
        }
    }

    void forget_dirs_at(const std::string& path) {
        real_dirs_.erase(path);
        const std::string below = path + '/';
        const std::string past = path + char('/' + 1);
        real_dirs_.erase(real_dirs_.lower_bound(below), real_dirs_.lower_bound(past));
    }

    Error refusal(const std::string& entry_name, const std::string& why) const {
        return Error(archive_name_ + ": " + entry_name + ": " + why);
    }

    [[noreturn]] void write_failed(const std::string& entry_name) const {
        throw refusal(entry_name, archive_message(disk_.get()));
    }

    std::string archive_name_;
    std::string root_prefix_;  // canonical target with a trailing '/'
    WriteArchive disk_;
    // Relative paths known to be real directories; with each, all its ancestors.
    std::set<std::string, std::less<>> real_dirs_;
    ExtractStats stats_;
};

}  // namespace

void set_unpack_threads(unsigned threads) {
    xz_threads = std::max(1u, threads);
}

ExtractStats extract_archive(const fs::path& archive, const fs::path& dest, DebMember member) {
    const std::string name = archive.string();
    std::error_code ec;
    fs::create_directories(dest, ec);
    if (ec) throw Error(dest.string() + ": cannot create: " + ec.message());
    // Canonical: no symlink or ".." in the prefix every entry is written under.
    const fs::path root = fs::canonical(dest, ec);
    if (ec) throw Error(dest.string() + ": " + ec.message());

    PayloadStream payload(open_payload(archive, member));
    ReadArchive entries = new_reader();
    archive_read_support_format_tar(entries.get());
    archive_read_support_format_cpio(entries.get());
    if (archive_read_open(entries.get(), &payload, nullptr, &read_payload, nullptr) != ARCHIVE_OK) {
        fail(name, entries.get());
    }
    TreeWriter writer(name, root);
    writer.write_all(entries.get());
    if (!payload.drain()) throw Error(name + ": " + payload.error());
    return writer.stats();
}

}  // namespace kbuild
