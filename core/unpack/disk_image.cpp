#include "unpack/disk_image.h"

#include "unpack/byte_source.h"
#include "util/fd.h"
#include "util/strings.h"

#include <kbuild/error.hpp>

#include <ext2fs/ext2fs.h>
#include <boost/crc.hpp>

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

constexpr std::uint64_t kSector = 512;
constexpr std::uint16_t kExtMagic = 0xEF53;

std::uint16_t le16(const unsigned char* p) {
    return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
std::uint32_t le32(const unsigned char* p) {
    return static_cast<std::uint32_t>(le16(p)) | static_cast<std::uint32_t>(le16(p + 2)) << 16;
}
std::uint64_t le64(const unsigned char* p) {
    return static_cast<std::uint64_t>(le32(p)) | static_cast<std::uint64_t>(le32(p + 4)) << 32;
}

std::uint32_t crc32(const unsigned char* data, std::size_t size) {
    boost::crc_32_type crc;
    crc.process_bytes(data, size);
    return crc.checksum();
}

std::vector<unsigned char> read_exactly(ByteSource& image, std::uint64_t offset, std::size_t size,
                                        const std::string& what) {
    std::vector<unsigned char> bytes(size);
    if (image.read(offset, bytes.data(), size) != size)
        throw Error(image.name() + ": " + what + " (byte " + std::to_string(offset) + ") is past the image's end");
    return bytes;
}

// The size of the ext2/3/4 file system whose superblock starts at `sb`, 0 when it is none.
std::uint64_t ext_size(const unsigned char* sb) {
    if (le16(sb + 56) != kExtMagic) return 0;
    const std::uint32_t log_block = le32(sb + 24);
    if (log_block > 6) return 0;
    const std::uint64_t block = 1024ull << log_block;
    std::uint64_t blocks = le32(sb + 4);
    if (le32(sb + 0x60) & 0x80) blocks |= static_cast<std::uint64_t>(le32(sb + 0x150)) << 32;  // 64bit
    return blocks * block;
}

bool holds_ext(ByteSource& image, std::uint64_t offset, std::uint64_t* size = nullptr) {
    std::array<unsigned char, 1024> sb{};
    if (image.read(offset + 1024, sb.data(), sb.size()) != sb.size()) return false;
    const std::uint64_t bytes = ext_size(sb.data());
    if (size) *size = bytes;
    return bytes != 0;
}

struct Partition {
    int number;
    std::uint64_t offset, length;
};

std::vector<Partition> gpt_partitions(ByteSource& image) {
    const auto header = read_exactly(image, kSector, kSector, "the GPT header");
    const std::string name = image.name();
    const std::uint32_t header_size = le32(&header[12]);
    if (header_size < 92 || header_size > kSector)
        throw Error(name + ": GPT header size " + std::to_string(header_size) + " is not valid");
    auto copy = header;
    std::memset(&copy[16], 0, 4);
    if (crc32(copy.data(), header_size) != le32(&header[16])) throw Error(name + ": the GPT header fails its CRC32");
    const std::uint64_t backup_lba = le64(&header[32]);
    const std::uint64_t last_usable = le64(&header[48]);
    const std::uint64_t entries_lba = le64(&header[72]);
    const std::uint32_t count = le32(&header[80]);
    const std::uint32_t entry_size = le32(&header[84]);
    if (entry_size < 128 || entry_size > 4096 || count > 4096)
        throw Error(name + ": GPT of " + std::to_string(count) + " entries of " + std::to_string(entry_size) +
                    " bytes is not valid");
    if (last_usable >= backup_lba)
        throw Error(name + ": GPT's last usable LBA " + std::to_string(last_usable) +
                    " is not before the disk's last LBA " + std::to_string(backup_lba));
    const auto entries =
        read_exactly(image, entries_lba * kSector, static_cast<std::size_t>(count) * entry_size, "the GPT entries");
    if (crc32(entries.data(), entries.size()) != le32(&header[88]))
        throw Error(name + ": the GPT partition entries fail their CRC32");

    std::vector<Partition> partitions;
    for (std::uint32_t i = 0; i < count; ++i) {
        const unsigned char* e = &entries[static_cast<std::size_t>(i) * entry_size];
        if (std::all_of(e, e + 16, [](unsigned char c) { return c == 0; })) continue;  // unused
        const std::uint64_t first = le64(e + 32), last = le64(e + 40);
        const std::string which = "GPT partition " + std::to_string(i + 1) + " (LBA " + std::to_string(first) + "-" +
                                  std::to_string(last) + ")";
        if (first > last) throw Error(name + ": " + which + " ends before it starts");
        if (last > last_usable)
            throw Error(name + ": " + which + " ends past the disk's last usable LBA " + std::to_string(last_usable));
        partitions.push_back({static_cast<int>(i + 1), first * kSector, (last - first + 1) * kSector});
    }
    return partitions;
}

// The ext file system's own size, checked against the room it has.
ImageFilesystem filesystem_at(ByteSource& image, std::uint64_t offset, std::uint64_t room, std::string where) {
    std::uint64_t size = 0;
    holds_ext(image, offset, &size);
    if (room && size > room)
        throw Error(image.name() + ": the file system in " + where + " is " + std::to_string(size) +
                    " bytes, larger than its partition (" + std::to_string(room) + ")");
    return {offset, room ? room : size, std::move(where)};
}

}  // namespace

ImageFilesystem find_filesystem(ByteSource& image) {
    const std::string name = image.name();
    if (holds_ext(image, 0)) return filesystem_at(image, 0, 0, "the whole image");

    std::array<unsigned char, kSector> mbr{};
    const std::size_t got = image.read(0, mbr.data(), mbr.size());
    if (got < kSector || mbr[510] != 0x55 || mbr[511] != 0xAA)
        throw Error(name + ": no partition table and no ext2/3/4 file system");

    std::vector<Partition> partitions;
    bool protective = false;
    for (int i = 0; i < 4; ++i) protective |= mbr[446 + i * 16 + 4] == 0xEE;
    std::array<unsigned char, 8> signature{};
    image.read(kSector, signature.data(), signature.size());
    const bool gpt = std::memcmp(signature.data(), "EFI PART", 8) == 0;
    if (protective && !gpt) throw Error(name + ": a protective MBR but no GPT header");
    const std::string table = gpt ? "GPT" : "MBR";
    if (gpt) {
        partitions = gpt_partitions(image);
    } else {
        for (int i = 0; i < 4; ++i) {
            const unsigned char* e = &mbr[446 + i * 16];
            if (e[4] == 0) continue;
            partitions.push_back({i + 1, le32(e + 8) * kSector, le32(e + 12) * kSector});
        }
    }
    for (const auto& p : partitions)
        if (holds_ext(image, p.offset))
            return filesystem_at(image, p.offset, p.length, table + " partition " + std::to_string(p.number));
    throw Error(name + ": no ext2/3/4 file system in its " + std::to_string(partitions.size()) + " " + table +
                " partition" + (partitions.size() == 1 ? "" : "s"));
}

namespace {

// ---- libext2fs reading through a ByteSource: an io_manager of our own ----------------------

struct Channel {
    ByteSource* image;
    ImageFilesystem filesystem;
    std::string error;  // what failed last, for the message libext2fs cannot carry
};

std::mutex channels_mutex;
std::map<std::string, Channel*> channels;  // by the name handed to ext2fs_open2

errcode_t channel_read(io_channel io, unsigned long long block, int count, void* data) {
    auto& channel = *static_cast<Channel*>(io->private_data);
    const std::uint64_t size =
        count < 0 ? static_cast<std::uint64_t>(-count) : static_cast<std::uint64_t>(count) * io->block_size;
    const std::uint64_t pos = block * static_cast<std::uint64_t>(io->block_size);
    const ImageFilesystem& fs = channel.filesystem;
    if (pos + size > fs.length) {
        channel.error = channel.image->name() + ": the file system reads byte " + std::to_string(pos + size) + " of " +
                        fs.where + ", which has " + std::to_string(fs.length);
        return EXT2_ET_SHORT_READ;
    }
    try {
        const std::size_t got = channel.image->read(fs.offset + pos, data, size);
        if (got != size) {
            channel.error = channel.image->name() + ": " + fs.where + " reaches past the image's end (byte " +
                            std::to_string(fs.offset + got + pos) + ")";
            return EXT2_ET_SHORT_READ;
        }
    } catch (const std::exception& e) {
        channel.error = e.what();
        return EXT2_ET_SHORT_READ;
    }
    return 0;
}

io_manager image_io_manager();

errcode_t channel_open(const char* name, int flags, io_channel* out) {
    if (flags & IO_FLAG_RW) return EXT2_ET_RO_FILSYS;
    Channel* channel = nullptr;
    {
        std::lock_guard lock(channels_mutex);
        const auto it = channels.find(name ? name : "");
        if (it == channels.end()) return EXT2_ET_BAD_DEVICE_NAME;
        channel = it->second;
    }
    auto* io = new struct_io_channel{};
    io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    io->manager = image_io_manager();
    io->name = const_cast<char*>(name);
    io->block_size = 1024;
    io->refcount = 1;
    io->private_data = channel;
    io->align = 0;
    *out = io;
    return 0;
}

errcode_t channel_close(io_channel io) {
    if (--io->refcount > 0) return 0;
    delete io;
    return 0;
}

errcode_t channel_set_blksize(io_channel io, int size) {
    io->block_size = size;
    return 0;
}

errcode_t channel_read32(io_channel io, unsigned long block, int count, void* data) {
    return channel_read(io, block, count, data);
}

errcode_t channel_write(io_channel, unsigned long, int, const void*) {
    return EXT2_ET_RO_FILSYS;
}
errcode_t channel_write64(io_channel, unsigned long long, int, const void*) {
    return EXT2_ET_RO_FILSYS;
}
errcode_t channel_flush(io_channel) {
    return 0;
}
errcode_t channel_set_option(io_channel, const char*, const char*) {
    return EXT2_ET_INVALID_ARGUMENT;
}

io_manager image_io_manager() {
    static struct_io_manager manager = [] {
        struct_io_manager m{};
        m.magic = EXT2_ET_MAGIC_IO_MANAGER;
        m.name = "kbuild image";
        m.open = channel_open;
        m.close = channel_close;
        m.set_blksize = channel_set_blksize;
        m.read_blk = channel_read32;
        m.write_blk = channel_write;
        m.flush = channel_flush;
        m.set_option = channel_set_option;
        m.read_blk64 = channel_read;
        m.write_blk64 = channel_write64;
        return m;
    }();
    return &manager;
}

// ---- Paths inside the image ------------------------------------------------------------------

using Components = std::vector<std::string>;

Components split(const std::string& path) {
    Components parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t slash = std::min(path.find('/', start), path.size());
        std::string part = path.substr(start, slash - start);
        if (!part.empty() && part != ".") parts.push_back(std::move(part));
        start = slash + 1;
    }
    return parts;
}

std::string join(const Components& parts, std::size_t count = std::string::npos) {
    std::string path;
    for (std::size_t i = 0; i < std::min(count, parts.size()); ++i) path += (i ? "/" : "") + parts[i];
    return path;
}

bool is_glob(const std::string& part) {
    return part.find_first_of("*?[") != std::string::npos;
}

class ImageReader {
public:
    ImageReader(const fs::path& image, fs::path dest)
        : source_(open_byte_source(image.string())), dest_(std::move(dest)) {
        channel_.image = source_.get();
        channel_.filesystem = find_filesystem(*source_);
        static std::atomic<unsigned> counter{0};
        io_name_ = "kbuild-image-" + std::to_string(counter++);
        {
            std::lock_guard lock(channels_mutex);
            channels[io_name_] = &channel_;
        }
        static std::once_flag tables;
        std::call_once(tables, [] { initialize_ext2_error_table(); });
        const errcode_t err = ext2fs_open2(io_name_.c_str(), nullptr, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
                                           image_io_manager(), &fs_);
        if (err) {
            fs_ = nullptr;
            unregister();
            fail(err, "cannot open the ext file system in " + channel_.filesystem.where);
        }
        stats_.where = channel_.filesystem.where;
    }
    ~ImageReader() {
        if (fs_) ext2fs_close_free(&fs_);
        unregister();
    }
    ImageReader(const ImageReader&) = delete;
    ImageReader& operator=(const ImageReader&) = delete;

    void extract(const std::string& pattern) {
        for (const auto& path : expand({}, split(pattern))) {
            const Resolved found = resolve(path, /*follow_last=*/false);
            if (!found.ino) continue;
            stats_.matched.push_back(join(path));
            copy_subtree(found);
            if (LINUX_S_ISLNK(inode(found.ino).i_mode)) {
                const Resolved target = resolve(path, /*follow_last=*/true);
                if (target.ino) copy_subtree(target);
            }
        }
    }

    const ImageExtractStats& stats() const { return stats_; }

private:
    struct Resolved {
        ext2_ino_t ino = 0;  // 0: no such path
        Components real;     // the path with every symlink followed
    };

    [[noreturn]] void fail(errcode_t err, const std::string& what) const {
        if (!channel_.error.empty()) throw Error(channel_.error);
        throw Error(source_->name() + ": " + what + ": " + error_message(err));
    }

    void unregister() {
        std::lock_guard lock(channels_mutex);
        channels.erase(io_name_);
    }

    ext2_inode inode(ext2_ino_t ino) const {
        ext2_inode node{};
        if (const errcode_t err = ext2fs_read_inode(fs_, ino, &node)) fail(err, "inode " + std::to_string(ino));
        return node;
    }

    ext2_ino_t lookup(ext2_ino_t dir, const std::string& name, const Components& at) const {
        ext2_ino_t ino = 0;
        const errcode_t err = ext2fs_lookup(fs_, dir, name.c_str(), static_cast<int>(name.size()), nullptr, &ino);
        if (err == EXT2_ET_FILE_NOT_FOUND) return 0;
        if (err) fail(err, join(at) + "/" + name);
        return ino;
    }

    std::vector<std::pair<std::string, ext2_ino_t>> list(ext2_ino_t dir, const Components& at) const {
        std::vector<std::pair<std::string, ext2_ino_t>> entries;
        auto each = [](ext2_ino_t, int, ext2_dir_entry* dirent, int, int, char*, void* priv) -> int {
            const int length = ext2fs_dirent_name_len(dirent);
            std::string name(dirent->name, static_cast<std::size_t>(length));
            if (name != "." && name != ".." && dirent->inode)
                static_cast<std::vector<std::pair<std::string, ext2_ino_t>>*>(priv)->emplace_back(std::move(name),
                                                                                                  dirent->inode);
            return 0;
        };
        if (const errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, each, &entries))
            fail(err, "directory /" + join(at));
        return entries;
    }

    std::string link_target(ext2_ino_t ino, ext2_inode& node, const Components& at) const {
        const std::size_t size = EXT2_I_SIZE(&node);
        if (size == 0 || size > 4096)
            throw Error(source_->name() + ": /" + join(at) + ": symlink of " + std::to_string(size) + " bytes");
        std::string target(size, '\0');
        if (node.i_flags & EXT4_INLINE_DATA_FL) {
            std::vector<char> buf(size + 64);
            std::size_t got = buf.size();
            if (const errcode_t err = ext2fs_inline_data_get(fs_, ino, &node, buf.data(), &got))
                fail(err, "/" + join(at));
            target.assign(buf.data(), std::min(got, size));
        } else if (ext2fs_is_fast_symlink(&node)) {
            target.assign(reinterpret_cast<const char*>(node.i_block), size);
        } else {
            read_file(ino, at, [&](const char* data, std::size_t length, std::uint64_t offset) {
                std::memcpy(target.data() + offset, data, std::min(length, size - offset));
            });
        }
        return target;
    }

    // Where a link's target leads, lexically, from the directory holding it; throws when it
    // climbs above the image's root.
    Components follow(const Components& link, const std::string& target) const {
        Components result(link.begin(), link.end() - 1);
        if (!target.empty() && target[0] == '/') result.clear();
        for (const auto& part : split(target)) {
            if (part != "..") {
                result.push_back(part);
            } else if (result.empty()) {
                throw Error(source_->name() + ": /" + join(link) + ": symlink to " + target +
                            " leads out of the image");
            } else {
                result.pop_back();
            }
        }
        return result;
    }

    Resolved resolve(Components path, bool follow_last) {
        for (int links = 0;;) {
            ext2_ino_t ino = EXT2_ROOT_INO;
            Components real;
            bool restarted = false;
            for (std::size_t i = 0; i < path.size(); ++i) {
                // follow() normalizes link targets and patterns are refused with "..", so a
                // path here never holds one.
                if (path[i] == "..") throw Error(source_->name() + ": /" + join(path) + ": '..' in a path");
                const ext2_ino_t child = lookup(ino, path[i], real);
                if (!child) return {};
                real.push_back(path[i]);
                ext2_inode node = inode(child);
                const bool last = i + 1 == path.size();
                if (LINUX_S_ISLNK(node.i_mode) && (!last || follow_last)) {
                    if (++links > 40) throw Error(source_->name() + ": /" + join(path) + ": too many symlinks");
                    link_on_the_way(child, node, real);
                    Components next = follow(real, link_target(child, node, real));
                    next.insert(next.end(), path.begin() + static_cast<std::ptrdiff_t>(i) + 1, path.end());
                    path = std::move(next);
                    restarted = true;
                    break;
                }
                if (!last && !LINUX_S_ISDIR(node.i_mode)) return {};
                ino = child;
            }
            if (!restarted) return {ino, real};
        }
    }

    // Every pattern component's glob expanded against the image's directories.
    std::vector<Components> expand(const Components& done, const Components& rest) {
        std::size_t i = 0;
        while (i < rest.size() && !is_glob(rest[i])) ++i;
        Components prefix = done;
        prefix.insert(prefix.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(i));
        if (i == rest.size()) return {prefix};
        const Resolved dir = resolve(prefix, /*follow_last=*/true);
        if (!dir.ino || !LINUX_S_ISDIR(inode(dir.ino).i_mode)) return {};
        std::vector<Components> found;
        const Components after(rest.begin() + static_cast<std::ptrdiff_t>(i) + 1, rest.end());
        auto entries = list(dir.ino, dir.real);
        std::sort(entries.begin(), entries.end());
        for (const auto& [name, ino] : entries) {
            if (fnmatch(rest[i].c_str(), name.c_str(), FNM_PERIOD) != 0) continue;
            Components with = prefix;
            with.push_back(name);
            for (auto& match : expand(with, after)) found.push_back(std::move(match));
        }
        return found;
    }

    fs::path dest_of(const Components& real) const { return dest_ / join(real); }

    void make_parents(const Components& real) const {
        std::error_code ec;
        fs::create_directories(dest_of(Components(real.begin(), real.end() - 1)), ec);
        if (ec) throw Error(dest_of(real).parent_path().string() + ": " + ec.message());
    }

    void link_on_the_way(ext2_ino_t ino, ext2_inode& node, const Components& real) {
        if (!links_made_.insert(join(real)).second) return;
        const std::string target = link_target(ino, node, real);
        follow(real, target);  // refuses one leading out
        make_link(real, target);
    }

    void make_link(const Components& real, const std::string& target) {
        make_parents(real);
        const fs::path where = dest_of(real);
        ::unlink(where.c_str());
        if (::symlink(target.c_str(), where.c_str()) != 0)
            throw Error(where.string() + ": cannot create symlink: " + errno_text(errno));
        ++stats_.entries;
    }

    template <class Sink>
    void read_file(ext2_ino_t ino, const Components& at, Sink&& sink) const {
        ext2_file_t file = nullptr;
        if (const errcode_t err = ext2fs_file_open(fs_, ino, 0, &file)) fail(err, "/" + join(at));
        std::unique_ptr<std::remove_pointer_t<ext2_file_t>, errcode_t (*)(ext2_file_t)> closer(file, ext2fs_file_close);
        std::vector<char> buffer(1 << 20);
        std::uint64_t offset = 0;
        for (;;) {
            unsigned int got = 0;
            if (const errcode_t err = ext2fs_file_read(file, buffer.data(), static_cast<unsigned>(buffer.size()), &got))
                fail(err, "/" + join(at));
            if (got == 0) break;
            sink(buffer.data(), got, offset);
            offset += got;
        }
    }

    // A subtree once, however many patterns or links lead to it.
    void copy_subtree(const Resolved& found) {
        for (const auto& done : copied_)
            if (found.real.size() >= done.size() && std::equal(done.begin(), done.end(), found.real.begin())) return;
        copied_.push_back(found.real);
        std::set<ext2_ino_t> directories;
        copy_entry(found.ino, found.real, directories);
    }

    // A damaged image may link a directory below itself, or twice: each directory is copied
    // once, and no deeper than any real tree goes.
    static constexpr std::size_t kMaxDepth = 256;

    void copy_entry(ext2_ino_t ino, const Components& real, std::set<ext2_ino_t>& directories) {
        ext2_inode node = inode(ino);
        const fs::path where = dest_of(real);
        if (LINUX_S_ISLNK(node.i_mode)) {
            const std::string target = link_target(ino, node, real);
            follow(real, target);
            if (links_made_.insert(join(real)).second) make_link(real, target);
        } else if (LINUX_S_ISDIR(node.i_mode)) {
            if (!directories.insert(ino).second)
                throw Error(source_->name() + ": /" + join(real) + ": directory inode " + std::to_string(ino) +
                            " is linked more than once (a damaged file system)");
            if (real.size() > kMaxDepth)
                throw Error(source_->name() + ": /" + join(real).substr(0, 200) + "...: deeper than " +
                            std::to_string(kMaxDepth) + " directories");
            make_parents(real);
            std::error_code ec;
            fs::create_directory(where, ec);
            if (ec) throw Error(where.string() + ": " + ec.message());
            ::chmod(where.c_str(), (node.i_mode & 0777) | S_IRWXU);
            ++stats_.entries;
            auto entries = list(ino, real);
            for (const auto& [name, child] : entries) {
                Components below = real;
                below.push_back(name);
                copy_entry(child, below, directories);
            }
        } else if (LINUX_S_ISREG(node.i_mode)) {
            make_parents(real);
            ::unlink(where.c_str());
            const UniqueFd file(
                ::open(where.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, node.i_mode & 0777));
            if (!file) throw Error(where.string() + ": " + errno_text(errno));
            const int fd = file.get();
            read_file(ino, real, [&](const char* data, std::size_t length, std::uint64_t) {
                for (std::size_t done = 0; done < length;) {
                    const ssize_t n = ::write(fd, data + done, length - done);
                    if (n < 0) throw Error(where.string() + ": " + errno_text(errno));
                    done += static_cast<std::size_t>(n);
                }
                stats_.bytes += static_cast<std::int64_t>(length);
            });
            const timespec times[2] = {{static_cast<time_t>(node.i_atime), 0}, {static_cast<time_t>(node.i_mtime), 0}};
            ::futimens(fd, times);
            ++stats_.entries;
        }
        // Devices, fifos and sockets are no part of a build tree.
    }

    std::unique_ptr<ByteSource> source_;
    fs::path dest_;
    Channel channel_{};
    std::string io_name_;
    ext2_filsys fs_ = nullptr;
    ImageExtractStats stats_;
    std::set<std::string> links_made_;
    std::vector<Components> copied_;
};

}  // namespace

ImageExtractStats extract_from_image(const fs::path& image, const fs::path& dest,
                                     const std::vector<std::string>& patterns) {
    std::error_code ec;
    fs::create_directories(dest, ec);
    if (ec) throw Error(dest.string() + ": " + ec.message());
    ImageReader reader(image, dest);
    for (const auto& pattern : patterns) {
        for (const auto& part : split(pattern))
            if (part == "..") throw Error(image.string() + ": pattern " + pattern + " holds '..'");
        reader.extract(pattern);
    }
    return reader.stats();
}

}  // namespace kbuild
