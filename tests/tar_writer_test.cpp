// The one tar writer (bundles, trees streamed to Docker): a tree read back entry by entry, an
// abandoned stream that never ends, a sink's failure named.
#include "unpack/tar_writer.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <map>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

struct Read {
    std::string type;  // "file", "dir", "symlink", "hardlink"
    std::string data;  // contents, or the link's target
    int perm = 0;
};

// Every entry of a tar in memory, by name.
std::map<std::string, Read> read_tar(const std::string& bytes) {
    std::map<std::string, Read> entries;
    archive* reader = archive_read_new();
    archive_read_support_format_tar(reader);
    EXPECT_EQ(archive_read_open_memory(reader, bytes.data(), bytes.size()), ARCHIVE_OK);
    archive_entry* entry = nullptr;
    while (archive_read_next_header(reader, &entry) == ARCHIVE_OK) {
        Read read;
        read.perm = static_cast<int>(archive_entry_perm(entry));
        if (archive_entry_hardlink(entry)) {
            read.type = "hardlink";
            read.data = archive_entry_hardlink(entry);
        } else if (archive_entry_filetype(entry) == AE_IFLNK) {
            read.type = "symlink";
            read.data = archive_entry_symlink(entry);
        } else if (archive_entry_filetype(entry) == AE_IFDIR) {
            read.type = "dir";
        } else {
            read.type = "file";
            char buffer[4096];
            for (la_ssize_t got; (got = archive_read_data(reader, buffer, sizeof buffer)) > 0;)
                read.data.append(buffer, static_cast<std::size_t>(got));
        }
        std::string name = archive_entry_pathname(entry);
        if (name.size() > 1 && name.back() == '/') name.pop_back();  // a directory's
        entries[name] = read;
    }
    archive_read_free(reader);
    return entries;
}

TEST(TarWriter, ATreeStreamsInNameOrderWithLinksAndModes) {
    test::TempDir dir;
    const fs::path root = dir / "root";
    fs::create_directories(root / "b/empty");
    test::write_file(root / "a.txt", "alpha\n");
    fs::permissions(root / "a.txt", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_hard_link(root / "a.txt", root / "b/a-again");
    fs::create_symlink("../a.txt", root / "b/link");
    ::mkfifo((root / "fifo").c_str(), 0644);
    ::mknod((root / "socketlike").c_str(), S_IFSOCK | 0644, 0);

    std::string bytes;
    TarWriter tar([&](const char* data, std::size_t count) { bytes.append(data, count); });
    tar.add_tree(root, false);
    EXPECT_EQ(tar.finish(), 6);  // a.txt, b, b/a-again, b/empty, b/link, fifo

    const auto entries = read_tar(bytes);
    EXPECT_EQ(entries.at("a.txt").data, "alpha\n");
    EXPECT_EQ(entries.at("a.txt").perm, 0600);
    EXPECT_EQ(entries.at("b").type, "dir");
    EXPECT_EQ(entries.at("b/empty").type, "dir");
    EXPECT_EQ(entries.at("b/a-again").type, "hardlink");
    EXPECT_EQ(entries.at("b/a-again").data, "a.txt");
    EXPECT_EQ(entries.at("b/link").type, "symlink");
    EXPECT_EQ(entries.at("b/link").data, "../a.txt");
    EXPECT_EQ(entries.count("socketlike"), 0u);
    // Blocks of 512 bytes, the last two of zeros: a whole archive.
    EXPECT_EQ(bytes.size() % 512, 0u);
    EXPECT_EQ(bytes.substr(bytes.size() - 1024), std::string(1024, '\0'));
}

TEST(TarWriter, AnAbandonedStreamNeverEnds) {
    std::string bytes;
    {
        TarWriter tar([&](const char* data, std::size_t count) { bytes.append(data, count); });
        TarEntry entry;
        entry.name = "first";
        entry.mode = S_IFREG | 0644;
        tar.add(entry, std::string(100000, 'x'));
    }  // destroyed unfinished, as when a later file cannot be read
    ASSERT_GE(bytes.size(), 1024u);
    EXPECT_NE(bytes.substr(bytes.size() - 1024), std::string(1024, '\0'));
}

TEST(TarWriter, ASinksFailureIsThrown) {
    TarWriter tar([](const char*, std::size_t) { throw Error("the reader went away"); });
    TarEntry entry;
    entry.name = "big";
    entry.mode = S_IFREG | 0644;
    try {
        tar.add(entry, std::string(1 << 20, 'x'));
        tar.finish();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "the reader went away");
    }
}

}  // namespace
