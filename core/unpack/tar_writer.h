// Writes tar archives (POSIX pax, libarchive) one entry at a time, to a file (gzip-compressed
// for bundles) or to a sink (a build context or a root file system streamed to the Docker
// daemon), so a large tree is never whole in memory.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

struct archive;

namespace kbuild {

struct TarEntry {
    std::string name;
    mode_t mode = 0;  // type and permissions: S_IFREG | 0644
    std::time_t mtime = 0;
    long mtime_nsec = 0;
    std::int64_t uid = 0;
    std::int64_t gid = 0;
    std::string owner;  // user and group names; empty: none written
    std::string group;
    std::string symlink;    // a symbolic link's target
    std::string hardlink;   // an earlier entry this one is another name of
    std::int64_t size = 0;  // bytes of a regular file's contents
};

class TarWriter {
public:
    // Takes the archive's bytes; throws to stop the archive, which then never ends.
    using Sink = std::function<void(const char* bytes, std::size_t count)>;

    enum class Compression { none, gzip };

    // To a file; gzip without a time in its header, so the same entries give the same bytes.
    TarWriter(const std::filesystem::path& file, Compression compression);
    // To a sink, in blocks of 512 bytes (no padding to 10 KiB at the end).
    explicit TarWriter(Sink sink);
    // An archive not finished is abandoned: nothing more reaches its sink, so it never ends
    // with the end blocks that would make a cut archive read as a whole, smaller one.
    ~TarWriter();
    TarWriter(const TarWriter&) = delete;
    TarWriter& operator=(const TarWriter&) = delete;

    // One entry with its contents (regular files: `data`, whose size is the entry's).
    void add(TarEntry entry, const std::string& data = "");

    // The tree under `root` from disk, in name order (the same tree makes the same stream),
    // each entry named relative to root: modes, times and symbolic links kept, a file with
    // several names written once and linked after, device nodes and sockets left out. Owners
    // are kept with `keep_owners`, else 0. A file is read as it is written: one that grew
    // meanwhile is cut at its size when listed, one that shrank fails the archive.
    void add_tree(const std::filesystem::path& root, bool keep_owners);

    // Writes the end of the archive; returns how many entries it holds.
    std::int64_t finish();

private:
    void add_path(const std::filesystem::path& path, const std::string& name, bool keep_owners);
    void add_directory_contents(const std::filesystem::path& dir, const std::string& name, bool keep_owners);
    void write_header(const TarEntry& entry);
    void write_data(const char* bytes, std::size_t count);
    void write_file_contents(const std::filesystem::path& path, std::int64_t size);
    [[noreturn]] void fail(const std::string& subject);
    static long write_callback(struct archive* writer, void* self, const void* buffer, std::size_t length);

    std::string subject_;  // what errors name: the file, or "tar stream"
    std::unique_ptr<struct archive, int (*)(struct archive*)> archive_;
    Sink sink_;
    std::exception_ptr sink_error_;
    std::map<std::pair<dev_t, ino_t>, std::string> first_names_;
    std::int64_t entries_ = 0;
    bool finished_ = false;
    bool abandoned_ = false;
};

}  // namespace kbuild
