#include "unpack/tar_writer.h"

#include "unpack/archive_handle.h"

#include <kbuild/types.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace kbuild {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int code) {
    return std::generic_category().message(code);
}

struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

struct FileDescriptor {
    int fd = -1;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

TarWriter::TarWriter(const fs::path& file, Compression compression)
    : subject_(file.string()), archive_(archive_write_new(), archive_write_free) {
    if (!archive_) throw Error("libarchive: out of memory");
    archive_write_set_format_pax_restricted(archive_.get());
    if (compression == Compression::gzip) {
        archive_write_add_filter_gzip(archive_.get());
        archive_write_set_filter_option(archive_.get(), "gzip", "timestamp", nullptr);
    }
    if (archive_write_open_filename(archive_.get(), file.c_str()) != ARCHIVE_OK) fail(subject_);
}

TarWriter::TarWriter(Sink sink)
    : subject_("tar stream"), archive_(archive_write_new(), archive_write_free), sink_(std::move(sink)) {
    if (!archive_) throw Error("libarchive: out of memory");
    archive_write_set_format_pax_restricted(archive_.get());
    archive_write_set_bytes_in_last_block(archive_.get(), 1);
    if (archive_write_open(archive_.get(), this, nullptr, &TarWriter::write_callback, nullptr) != ARCHIVE_OK)
        fail(subject_);
}

TarWriter::~TarWriter() {
    if (!finished_) abandoned_ = true;
    archive_.reset();
}

long TarWriter::write_callback(struct archive* writer, void* self, const void* buffer, std::size_t length) {
    auto* tar = static_cast<TarWriter*>(self);
    if (tar->abandoned_) return -1;
    try {
        tar->sink_(static_cast<const char*>(buffer), length);
    } catch (...) {
        tar->sink_error_ = std::current_exception();
        archive_set_error(writer, EPIPE, "the archive's reader stopped");
        return -1;
    }
    return static_cast<long>(length);
}

void TarWriter::fail(const std::string& subject) {
    if (sink_error_) std::rethrow_exception(sink_error_);
    throw Error(subject + ": " + archive_message(archive_.get()));
}

void TarWriter::write_header(const TarEntry& entry) {
    std::unique_ptr<archive_entry, EntryFree> header(archive_entry_new());
    if (!header) throw Error("libarchive: out of memory");
    archive_entry_set_pathname(header.get(), entry.name.c_str());
    archive_entry_set_mode(header.get(), entry.mode);
    archive_entry_set_mtime(header.get(), entry.mtime, entry.mtime_nsec);
    archive_entry_set_uid(header.get(), entry.uid);
    archive_entry_set_gid(header.get(), entry.gid);
    if (!entry.owner.empty()) archive_entry_set_uname(header.get(), entry.owner.c_str());
    if (!entry.group.empty()) archive_entry_set_gname(header.get(), entry.group.c_str());
    if (!entry.symlink.empty()) archive_entry_set_symlink(header.get(), entry.symlink.c_str());
    if (!entry.hardlink.empty()) archive_entry_set_hardlink(header.get(), entry.hardlink.c_str());
    archive_entry_set_size(header.get(), S_ISREG(entry.mode) && entry.hardlink.empty() ? entry.size : 0);
    if (archive_write_header(archive_.get(), header.get()) < ARCHIVE_WARN)
        fail(subject_ == "tar stream" ? entry.name : subject_);
    ++entries_;
}

void TarWriter::write_data(const char* bytes, std::size_t count) {
    if (count > 0 && archive_write_data(archive_.get(), bytes, count) != static_cast<la_ssize_t>(count)) fail(subject_);
}

void TarWriter::add(TarEntry entry, const std::string& data) {
    if (S_ISREG(entry.mode)) entry.size = static_cast<std::int64_t>(data.size());
    write_header(entry);
    if (S_ISREG(entry.mode)) write_data(data.data(), data.size());
}

void TarWriter::add_tree(const fs::path& root, bool keep_owners) {
    struct stat status {};
    if (::lstat(root.c_str(), &status) != 0) throw Error(root.string() + ": " + errno_text(errno));
    if (!S_ISDIR(status.st_mode)) throw Error(root.string() + ": not a directory");
    add_directory_contents(root, "", keep_owners);
}

void TarWriter::add_directory_contents(const fs::path& dir, const std::string& name, bool keep_owners) {
    std::error_code error;
    std::vector<fs::path> children;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
        children.push_back(it->path());
    if (error) throw Error(dir.string() + ": cannot list: " + error.message());
    std::sort(children.begin(), children.end());
    for (const auto& child : children)
        add_path(child, name.empty() ? child.filename().string() : name + "/" + child.filename().string(), keep_owners);
}

void TarWriter::add_path(const fs::path& path, const std::string& name, bool keep_owners) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) throw Error(path.string() + ": " + errno_text(errno));
    const mode_t type = status.st_mode & S_IFMT;
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFIFO) return;

    TarEntry entry;
    entry.name = name;
    entry.mode = status.st_mode;
    entry.mtime = status.st_mtim.tv_sec;
    entry.mtime_nsec = status.st_mtim.tv_nsec;
    entry.uid = keep_owners ? status.st_uid : 0;
    entry.gid = keep_owners ? status.st_gid : 0;
    if (type == S_IFLNK) {
        std::error_code error;
        entry.symlink = fs::read_symlink(path, error).string();
        if (error) throw Error(path.string() + ": cannot read the link: " + error.message());
    } else if (type == S_IFREG) {
        entry.size = status.st_size;
        if (status.st_nlink > 1) {
            const auto [it, first] = first_names_.emplace(std::make_pair(status.st_dev, status.st_ino), name);
            if (!first) entry.hardlink = it->second;
        }
    }
    write_header(entry);
    if (type == S_IFREG && entry.hardlink.empty()) write_file_contents(path, status.st_size);
    if (type == S_IFDIR) add_directory_contents(path, name, keep_owners);
}

// Writes what the header announced: a file that grew meanwhile is cut there; one that shrank
// fails the archive, rather than become zeros.
void TarWriter::write_file_contents(const fs::path& path, std::int64_t size) {
    FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
    if (file.fd < 0) throw Error(path.string() + ": cannot read: " + errno_text(errno));
    std::vector<char> buffer(256 * 1024);
    for (std::int64_t left = size; left > 0;) {
        const auto want =
            static_cast<std::size_t>(std::min<std::int64_t>(left, static_cast<std::int64_t>(buffer.size())));
        const ssize_t got = ::read(file.fd, buffer.data(), want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw Error(path.string() + ": cannot read: " + errno_text(errno));
        if (got == 0) throw Error(path.string() + ": shrank while being written");
        if (archive_write_data(archive_.get(), buffer.data(), static_cast<size_t>(got)) < 0) fail(path.string());
        left -= got;
    }
}

std::int64_t TarWriter::finish() {
    if (archive_write_close(archive_.get()) != ARCHIVE_OK) fail(subject_);
    finished_ = true;
    return entries_;
}

}  // namespace kbuild
